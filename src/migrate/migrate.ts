/**
 * Migration on database files, as the CLI and library callers use it: `migrate(path)`
 * applies pending files (or lists them in a dry run), `migrationStatus(path)` reads the
 * state read-only. Both open and close their own connection.
 *
 * @module
 */
import { openConnection } from "../sqlite/connection.ts";
import { messageOf, StoreError } from "../errors.ts";
import { MIGRATIONS } from "./files.ts";
import {
  type MigrationPlan,
  type PendingMigration,
  planMigrations,
  refuseProblems,
} from "./plan.ts";
import { ensurePageSize, prepareDatabase } from "./runner.ts";

/** Options of {@linkcode migrationStatus} and {@linkcode migrate}. */
export interface MigrateOptions {
  /** Show what would run, write nothing (not even a new empty file). */
  dryRun?: boolean;
  /** How long to wait for another process's lock, in ms (default 5000). */
  busyTimeoutMs?: number;
}

/** The outcome of {@linkcode migrate}. */
export interface MigrateResult {
  /** The database file. */
  path: string;
  /** Whether this was a dry run. */
  dryRun: boolean;
  /** The files applied (or, in a dry run, that would be). */
  applied: PendingMigration[];
  /** The schema version after the run (in a dry run: after a real run). */
  schemaVersion: number;
}

/** {@linkcode MigrationPlan} of a database file, as `migrationStatus` reports it. */
export interface MigrationStatus extends MigrationPlan {
  /** The database file. */
  path: string;
  /** False when no file exists yet at `path`. */
  exists: boolean;
}

/**
 * The migration status of a database file: applied (with time and checksum), pending,
 * and problems. Opens the file read-only; a missing file has everything pending.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { migrationStatus } from "@protostore/store";
 *
 * const dir = await Deno.makeTempDir();
 * const status = migrationStatus(`${dir}/new.sqlite`);
 * assert(!status.exists && status.pending[0].name === "0001_resources.sql");
 * ```
 */
export function migrationStatus(
  path: string,
  options: MigrateOptions = {},
): MigrationStatus {
  if (!fileExists(path)) {
    return {
      path,
      exists: false,
      schemaVersion: 0,
      applied: [],
      pending: MIGRATIONS.map(({ version, name, checksum }) => ({
        version,
        name,
        checksum,
      })),
      problems: [],
    };
  }
  const db = openConnection(path, {
    readOnly: true,
    busyTimeoutMs: options.busyTimeoutMs,
  });
  try {
    return { path, exists: true, ...planMigrations(db) };
  } finally {
    db.close();
  }
}

/**
 * Applies pending migrations to the database at `path` (creating it if missing), or with
 * `dryRun` lists what would run and writes nothing. Throws {@linkcode MigrationError}
 * on a refusal or a failing file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { migrate } from "@protostore/store";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * const planned = migrate(path, { dryRun: true }).applied;
 * assert.deepEqual(migrate(path).applied, planned);
 * assert(migrate(path).applied.length === 0);
 * ```
 */
export function migrate(
  path: string,
  options: MigrateOptions = {},
): MigrateResult {
  const latest = MIGRATIONS.at(-1)?.version ?? 0;
  if (options.dryRun) {
    const status = migrationStatus(path, options);
    refuseProblems(status);
    return {
      path,
      dryRun: true,
      applied: status.pending,
      schemaVersion: latest,
    };
  }
  const db = openConnection(path, { busyTimeoutMs: options.busyTimeoutMs });
  try {
    const applied = prepareDatabase(db);
    // Finishes a page-size rebuild that an earlier run could not do (file busy, killed).
    ensurePageSize(db);
    return { path, dryRun: false, applied, schemaVersion: latest };
  } finally {
    db.close();
  }
}

function fileExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw new StoreError(`cannot read ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}
