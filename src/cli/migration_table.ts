/**
 * The table of applied and pending migrations, as `migrate --status` and `inspect`
 * print it.
 *
 * @module
 */
import type { AppliedMigration } from "../migrate/mod.ts";
import { formatTime, type Output, table } from "./output.ts";

/** A pending migration as the table shows it; the checksum only with `checksums`. */
export interface PendingRow {
  /** Its version. */
  version: number;
  /** Its file name. */
  name: string;
  /** Its SHA-256, when known. */
  checksum?: string;
}

/**
 * VERSION, FILE, STATE, APPLIED (and CHECKSUM, the first 12 hex digits, with
 * `checksums`) of every applied then every pending migration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { migrationTable } from "./migration_table.ts";
 * import { processOutput } from "./output.ts";
 *
 * const text = migrationTable(processOutput(), [], [
 *   { version: 1, name: "0001_resources.sql", checksum: "e4278bc2bcca99" },
 * ], true);
 * assert.match(text, /1 +0001_resources\.sql +pending +- +e4278bc2bcca\n/);
 * ```
 */
export function migrationTable(
  output: Output,
  applied: readonly AppliedMigration[],
  pending: readonly PendingRow[],
  checksums: boolean,
): string {
  const rows = [
    ...applied.map((m) => [
      m.version,
      m.name ?? "(recorded without a name)",
      "applied",
      formatTime(m.appliedAt),
      m.checksum?.slice(0, 12) ?? "-",
    ]),
    ...pending.map((m) => [
      m.version,
      m.name,
      "pending",
      "-",
      m.checksum?.slice(0, 12) ?? "-",
    ]),
  ];
  const header = ["VERSION", "FILE", "STATE", "APPLIED", "CHECKSUM"];
  return checksums
    ? table(output, header, rows)
    : table(output, header.slice(0, 4), rows.map((r) => r.slice(0, 4)));
}
