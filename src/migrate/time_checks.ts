/**
 * The ISO-8601 time checks of migration 0004, seen from protostore's side. Their
 * constraint names speak to the old Go daemon (SQLite puts the name in the error), so a
 * failure in protostore's own writes is reworded here for protostore's callers.
 *
 * @module
 */

/** Text every time check's name holds (see migrations/0004_iso_time_checks_16k_pages.sql). */
const MARK = "is not ISO-8601: this file was upgraded by protostore";

/**
 * When `reason` (a SQLite error message) is a failed time check, the column and what it
 * means for protostore's caller; otherwise `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timeCheckFailure } from "./time_checks.ts";
 *
 * const sqlite = "CHECK constraint failed: resources.updated_at is not ISO-8601: " +
 *   "this file was upgraded by protostore (schema version 4) and …";
 * assert.match(timeCheckFailure(sqlite)!, /resources\.updated_at/);
 * assert.equal(timeCheckFailure("UNIQUE constraint failed: t.x"), undefined);
 * ```
 */
export function timeCheckFailure(reason: string): string | undefined {
  const at = reason.indexOf(MARK);
  if (at < 0) return undefined;
  const column = reason.slice(0, at).trim().split(/\s+/).at(-1);
  return `${column} must be an ISO-8601 UTC time ('2026-01-25T10:00:00.000Z'), ` +
    "and the value written is not an ISO-8601 time (a clock beyond year 9999, or a " +
    "row written with raw SQL)";
}
