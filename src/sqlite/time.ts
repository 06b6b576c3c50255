/**
 * Times as SQLite text: protostore writes ISO-8601 UTC with milliseconds and `Z`; the Go
 * store wrote `datetime('now')` text (`2026-01-25 10:00:00`, UTC). Readers of either
 * (migration status, admin reads) parse them here.
 *
 * @module
 */

/**
 * Parses a time as SQLite or protostore wrote it: ISO-8601 with `Z`, or the Go store's
 * `datetime('now')` text (`2026-01-25 10:00:00`, UTC). Returns `null` for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSqliteTime } from "./time.ts";
 *
 * assert(parseSqliteTime("2026-01-25 10:00:00")?.toISOString() === "2026-01-25T10:00:00.000Z");
 * ```
 */
export function parseSqliteTime(value: unknown): Date | null {
  if (typeof value !== "string") return null;
  const iso = /^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d(\.\d+)?)?$/.test(value)
    ? value.replace(" ", "T") + "Z"
    : value;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}
