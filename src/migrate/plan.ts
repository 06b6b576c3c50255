/**
 * The migration plan of an open connection: what `schema_version` records, which files
 * are pending, and every reason to refuse (edited files, versions from newer code,
 * out-of-order files, a schema of the wrong shape). Reads only; the runner and the
 * status listing both start here.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { parseSqliteTime } from "../sqlite/time.ts";
import { plainTable } from "../sqlite/untrusted.ts";
import { messageOf, MigrationError, StoreError } from "../errors.ts";
import {
  failureHint,
  sqliteErrorCode,
  sqliteFailure,
} from "../sqlite/errors.ts";
import { type Migration, MIGRATIONS } from "./files.ts";
import { schemaProblems } from "./shape.ts";

/** A row of `schema_version`. */
export interface AppliedMigration {
  /** The schema version the file brought the database to. */
  version: number;
  /** The file name; `null` for rows written by the Go store before names were recorded. */
  name: string | null;
  /** When it was applied; `null` if the recorded text is not a time. */
  appliedAt: Date | null;
  /** SHA-256 of the file as applied; `null` for rows written by the Go store. */
  checksum: string | null;
}

/** A migration file that has not been applied yet. */
export interface PendingMigration {
  /** The version the file brings the database to. */
  version: number;
  /** The file name, e.g. `0003_cascade_ms_types.sql`. */
  name: string;
  /** SHA-256 of the file, hex. */
  checksum: string;
}

/** What the database holds and what this code would do to it. */
export interface MigrationPlan {
  /** The highest applied version, 0 for an empty database. */
  schemaVersion: number;
  /** Applied migrations, oldest first. */
  applied: AppliedMigration[];
  /** Migrations this code would apply, in order. */
  pending: PendingMigration[];
  /** Reasons the runner refuses to migrate or write; empty when all is well. */
  problems: string[];
}

/**
 * Reads the database's migration state without writing: applied rows, pending files,
 * and every problem that would make the runner refuse (edited files, versions from
 * newer code, an out-of-order file, a crafted or damaged schema).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection } from "../sqlite/connection.ts";
 * import { planMigrations } from "./plan.ts";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * assert(planMigrations(db).pending.length > 0);
 * db.close();
 * ```
 */
export function planMigrations(
  db: DatabaseSync,
  migrations: readonly Migration[] = MIGRATIONS,
): MigrationPlan {
  // One snapshot: another process may migrate between two reads, and a version read
  // before its commit next to tables read after it would look like a crafted file.
  try {
    if (db.isTransaction) return readPlan(db, migrations);
    db.exec("BEGIN");
    try {
      return readPlan(db, migrations);
    } finally {
      if (db.isTransaction) db.exec("COMMIT");
    }
  } catch (error) {
    // Every entry point (openStore, migrate, --status, downgrade) reads the plan
    // first: a damaged page there is a classified StoreError, not a raw SQLite error.
    if (error instanceof StoreError) throw error;
    const code = sqliteErrorCode(error);
    throw sqliteFailure(
      `cannot read the schema and its migration history: ${messageOf(error)}${
        failureHint(code)
      }`,
      error,
    );
  }
}

function readPlan(
  db: DatabaseSync,
  migrations: readonly Migration[],
): MigrationPlan {
  const problems: string[] = [];
  const applied = readApplied(db, problems);
  const known = new Map(migrations.map((m) => [m.version, m]));
  const appliedVersions = new Set(applied.map((a) => a.version));
  const schemaVersion = applied.reduce((max, a) => Math.max(max, a.version), 0);

  for (const row of applied) {
    const file = known.get(row.version);
    if (!file && row.version < 1) {
      problems.push(
        `schema_version holds version ${row.version}, which no migration has: ` +
          "the file was not written by protostore or the Go store",
      );
    } else if (!file) {
      const newest = migrations.at(-1)?.version ?? 0;
      problems.push(
        `the database has schema version ${row.version}, which this protostore does not know ` +
          `(it knows up to ${newest}): newer code wrote it; upgrade protostore`,
      );
    } else if (row.checksum !== null && row.checksum !== file.checksum) {
      problems.push(
        `migration ${file.name} was edited after it was applied (recorded checksum ` +
          `${row.checksum.slice(0, 12)}…, file now ${
            file.checksum.slice(0, 12)
          }…): ` +
          `restore the original file and put changes in a new migration`,
      );
    } else if (row.name !== null && row.name !== file.name) {
      problems.push(
        `schema_version records version ${row.version} as ${row.name}, but this code's file ` +
          `is ${file.name}: the database comes from a different migration history`,
      );
    }
  }
  const pending = migrations
    .filter((m) => !appliedVersions.has(m.version))
    .map(({ version, name, checksum }) => ({ version, name, checksum }));
  for (const file of pending) {
    if (file.version < schemaVersion) {
      problems.push(
        `migration ${file.name} is pending but the database is already at version ` +
          `${schemaVersion}: it cannot be applied out of order`,
      );
    }
  }
  // Checked at every version, before anything is written (even the switch to WAL): a
  // pending file must not run someone else's triggers, trip over a view, or fail half
  // way on a table that has the right name but not the shape its version implies.
  if (schemaVersion <= (migrations.at(-1)?.version ?? 0)) {
    problems.push(...schemaProblems(db, schemaVersion, migrations));
  }
  return { schemaVersion, applied, pending, problems };
}

/**
 * Throws {@linkcode MigrationError} listing `plan.problems`, if there are any.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuseProblems } from "./plan.ts";
 *
 * assert.throws(() => refuseProblems({ problems: ["a view"] }), /refusing to migrate: a view/);
 * ```
 */
export function refuseProblems(plan: Pick<MigrationPlan, "problems">): void {
  if (plan.problems.length > 0) {
    throw new MigrationError(
      `refusing to migrate: ${plan.problems.join("; ")}`,
    );
  }
}

function readApplied(db: DatabaseSync, problems: string[]): AppliedMigration[] {
  // Read only a plain table: a view could be an endless query (a crafted file).
  const table = plainTable(db, "schema_version");
  if (table.state === "refused") {
    problems.push(
      `${table.problem}: the migration history was not read (the file was not ` +
        "written by protostore)",
    );
    return [];
  }
  const columns = table.state === "table" ? table.columns : [];
  if (columns.length === 0) return [];
  if (!columns.includes("version") || !columns.includes("applied_at")) {
    problems.push(
      `schema_version has columns (${
        columns.join(", ")
      }), not (version, applied_at, …): ` +
        "this is not a protostore database",
    );
    return [];
  }
  const name = columns.includes("name") ? "name" : "NULL";
  const checksum = columns.includes("checksum") ? "checksum" : "NULL";
  const rows = db.prepare(
    `SELECT version, applied_at, ${name} AS name, ${checksum} AS checksum
     FROM schema_version ORDER BY version`,
  ).all() as {
    version: unknown;
    applied_at: unknown;
    name: unknown;
    checksum: unknown;
  }[];
  const applied: AppliedMigration[] = [];
  for (const row of rows) {
    if (typeof row.version !== "number" || !Number.isInteger(row.version)) {
      problems.push(
        `schema_version holds a version that is not a whole number: ${row.version}`,
      );
      continue;
    }
    applied.push({
      version: row.version,
      name: typeof row.name === "string" ? row.name : null,
      appliedAt: parseSqliteTime(row.applied_at),
      checksum: typeof row.checksum === "string" ? row.checksum : null,
    });
  }
  return applied;
}
