/**
 * The migration runner: reads `schema_version`, refuses what it must not touch, and
 * applies pending files one transaction each. Works on an open `node:sqlite`
 * connection; `openStore()` and `migrate()` call it.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import {
  enableWal,
  openConnection,
  tableColumns,
} from "../sqlite/connection.ts";
import { messageOf, MigrationError, StoreError } from "../errors.ts";
import { sqliteErrorCode } from "../sqlite/errors.ts";
import { plainTable } from "../sqlite/untrusted.ts";
import { type Migration, MIGRATIONS } from "./files.ts";

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
 * The shape of protostore's tables by schema version, checked before any write: the
 * version whose file creates each table, whether that file uses CREATE TABLE IF NOT
 * EXISTS (the Go store's files did, so an existing table of that shape is taken over),
 * and the version that added each column.
 */
const TABLE_SHAPES: Record<
  string,
  { created: number; ifNotExists: boolean; columns: Record<string, number> }
> = {
  resources: {
    created: 1,
    ifNotExists: true,
    columns: { kind: 1, id: 1, data: 1, updated_at: 1, schema_id: 3 },
  },
  resource_audit: {
    created: 2,
    ifNotExists: true,
    columns: {
      id: 2,
      kind: 2,
      resource_id: 2,
      data: 2,
      archived_at: 2,
      version_hash: 2,
      tag: 2,
      schema_id: 3,
    },
  },
  resource_audit_orphans: {
    created: 3,
    ifNotExists: false,
    columns: {
      id: 3,
      kind: 3,
      resource_id: 3,
      data: 3,
      archived_at: 3,
      version_hash: 3,
      tag: 3,
      schema_id: 3,
    },
  },
  message_schemas: {
    created: 3,
    ifNotExists: false,
    columns: {
      id: 3,
      type_name: 3,
      digest: 3,
      descriptor_set: 3,
      created_at: 3,
    },
  },
};
/** From this version on, deleting a resource cascades to its history. */
const CASCADE_SINCE = 3;
/** A name 0003 uses while it rebuilds resource_audit; it never exists between files. */
const REBUILD_TABLE = "resource_audit_new";
const LATEST = MIGRATIONS.at(-1)?.version ?? 0;

/**
 * Reads the database's migration state without writing: applied rows, pending files,
 * and every problem that would make the runner refuse (edited files, versions from
 * newer code, an out-of-order file, a crafted or damaged schema).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection } from "../sqlite/connection.ts";
 * import { planMigrations } from "./runner.ts";
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
  if (db.isTransaction) return readPlan(db, migrations);
  db.exec("BEGIN");
  try {
    return readPlan(db, migrations);
  } finally {
    if (db.isTransaction) db.exec("COMMIT");
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
  if (migrations === MIGRATIONS) {
    // Checked at every version, before anything is written (even the switch to WAL): a
    // pending file must not run someone else's triggers, trip over a view, or fail half
    // way on a table that has the right name but not the shape its version implies.
    if (schemaVersion <= LATEST) {
      problems.push(...schemaProblems(db, schemaVersion));
    }
  } else if (problems.length === 0 && pending.length === 0) {
    problems.push(...schemaProblems(db, LATEST));
  }
  return { schemaVersion, applied, pending, problems };
}

/**
 * Applies every pending migration, each file in its own `BEGIN IMMEDIATE` transaction
 * together with its `schema_version` row. The state is re-read under the write lock,
 * so two processes migrating at once apply each file exactly once: the second waits,
 * then finds nothing left. Refusals throw {@linkcode MigrationError} before any write.
 * Returns the files this call applied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection } from "../sqlite/connection.ts";
 * import { applyMigrations } from "./runner.ts";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * assert(applyMigrations(db).length === 3);
 * assert(applyMigrations(db).length === 0);
 * db.close();
 * ```
 */
export function applyMigrations(
  db: DatabaseSync,
  migrations: readonly Migration[] = MIGRATIONS,
): PendingMigration[] {
  refuseProblems(planMigrations(db, migrations));
  const done: PendingMigration[] = [];
  for (const file of migrations) {
    // foreign_keys cannot change inside a transaction: switch it before BEGIN.
    if (file.foreignKeysOff) db.exec("PRAGMA foreign_keys = OFF");
    try {
      db.exec("BEGIN IMMEDIATE");
      try {
        const plan = planMigrations(db, migrations);
        refuseProblems(plan);
        if (!plan.pending.some((p) => p.version === file.version)) {
          db.exec("COMMIT");
          continue;
        }
        applyFile(db, file, migrations);
        db.exec("COMMIT");
        done.push({
          version: file.version,
          name: file.name,
          checksum: file.checksum,
        });
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        if (error instanceof StoreError) throw error;
        throw new MigrationError(
          `migration ${file.name} failed and was rolled back: ${
            messageOf(error)
          }`,
          { cause: error, file: file.name, code: sqliteErrorCode(error) },
        );
      }
    } finally {
      if (file.foreignKeysOff) db.exec("PRAGMA foreign_keys = ON");
    }
  }
  return done;
}

/** One file and its `schema_version` row, inside the caller's transaction. */
function applyFile(
  db: DatabaseSync,
  file: Migration,
  migrations: readonly Migration[],
): void {
  ensureSchemaVersionTable(db, migrations);
  db.exec(file.sql);
  if (file.foreignKeysOff) checkForeignKeys(db, file);
  db.prepare(
    "INSERT INTO schema_version (version, applied_at, name, checksum) VALUES (?, ?, ?, ?)",
  ).run(file.version, new Date().toISOString(), file.name, file.checksum);
}

/** Options of {@linkcode migrateWith}. */
export interface MigrateWithOptions {
  /** Roll the transaction back after `work` instead of committing (a dry run). */
  rollback?: boolean;
}

/**
 * Applies every pending migration and runs `work` in one `BEGIN IMMEDIATE` transaction,
 * so that a caller's write and the migrations it needs commit together or not at all
 * (`import-badger` into a missing or older file). Refusals throw
 * {@linkcode MigrationError} before any write. When a pending file asks for foreign keys
 * off, they are off for the whole transaction (they cannot change inside one) and
 * `PRAGMA foreign_key_check` runs before the commit. The connection must not be in a
 * transaction; WAL is not switched on (do that after, as `prepareDatabase` would).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection } from "../sqlite/connection.ts";
 * import { migrateWith } from "./runner.ts";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * const { applied } = migrateWith(db, () => {
 *   db.prepare("INSERT INTO resources (kind, id, data, updated_at) VALUES ('a', '1', x'', '')").run();
 * });
 * assert.equal(applied.length, 3);
 * db.close();
 * ```
 */
export function migrateWith<T>(
  db: DatabaseSync,
  work: (applied: readonly PendingMigration[]) => T,
  options: MigrateWithOptions = {},
): { applied: PendingMigration[]; result: T } {
  if (db.isTransaction) {
    throw new StoreError(
      "migrateWith cannot run inside an open transaction: it runs its own",
    );
  }
  const before = planMigrations(db);
  refuseProblems(before);
  const pendingFiles = (plan: MigrationPlan) =>
    MIGRATIONS.filter((m) => plan.pending.some((p) => p.version === m.version));
  const foreignKeysOff = pendingFiles(before).some((m) => m.foreignKeysOff);
  if (foreignKeysOff) db.exec("PRAGMA foreign_keys = OFF");
  try {
    db.exec("BEGIN IMMEDIATE");
    try {
      // Re-read under the write lock: another process may have migrated meanwhile.
      const plan = planMigrations(db);
      refuseProblems(plan);
      const applied: PendingMigration[] = [];
      for (const file of pendingFiles(plan)) {
        try {
          applyFile(db, file, MIGRATIONS);
        } catch (error) {
          if (error instanceof StoreError) throw error;
          throw new MigrationError(
            `migration ${file.name} failed, nothing was changed: ${
              messageOf(error)
            }`,
            { cause: error, file: file.name, code: sqliteErrorCode(error) },
          );
        }
        applied.push({
          version: file.version,
          name: file.name,
          checksum: file.checksum,
        });
      }
      if (applied.length > 0) refuseProblems(planMigrations(db));
      const result = work(applied);
      if (foreignKeysOff) {
        const violations = db.prepare("PRAGMA foreign_key_check").all();
        if (violations.length > 0) {
          throw new MigrationError(
            `${violations.length} row(s) would violate foreign keys; rolled back, nothing changed`,
          );
        }
      }
      db.exec(options.rollback ? "ROLLBACK" : "COMMIT");
      return { applied, result };
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  } finally {
    if (foreignKeysOff) db.exec("PRAGMA foreign_keys = ON");
  }
}

/** What {@linkcode prepareDatabase} should do. */
export interface PrepareOptions {
  /** Apply pending migrations (default true); false makes pending ones an error. */
  migrate?: boolean;
  /** The connection is read-only: never write; pending migrations are an error. */
  readOnly?: boolean;
}

/**
 * Brings a freshly opened connection to a usable schema: refuses problems, switches a
 * writable database to WAL, applies pending migrations when allowed. Returns the files
 * applied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection } from "../sqlite/connection.ts";
 * import { prepareDatabase } from "./runner.ts";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * assert(prepareDatabase(db).length === 3);
 * db.close();
 * ```
 */
export function prepareDatabase(
  db: DatabaseSync,
  options: PrepareOptions = {},
): PendingMigration[] {
  const plan = planMigrations(db);
  refuseProblems(plan);
  if (
    plan.pending.length > 0 && (options.readOnly || options.migrate === false)
  ) {
    throw new MigrationError(
      `the database is at schema version ${plan.schemaVersion} and ${plan.pending.length} ` +
        `migration(s) are pending (${
          plan.pending.map((p) => p.name).join(", ")
        }): ` +
        "run `deno run -A cli.ts migrate --db PATH` first",
    );
  }
  if (options.readOnly) return [];
  enableWal(db);
  if (plan.pending.length === 0) return [];
  const applied = applyMigrations(db);
  // A file that rebuilt tables may have left the schema different from what we use.
  refuseProblems(planMigrations(db));
  return applied;
}

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
 * assert(!status.exists && status.pending.length === 3);
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
 * assert(migrate(path, { dryRun: true }).applied.length === 3);
 * assert(migrate(path).schemaVersion === 3);
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
    return { path, dryRun: false, applied, schemaVersion: latest };
  } finally {
    db.close();
  }
}

function refuseProblems(plan: Pick<MigrationPlan, "problems">): void {
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

/**
 * Parses a time as SQLite or protostore wrote it: ISO-8601 with `Z`, or the Go store's
 * `datetime('now')` text (`2026-01-25 10:00:00`, UTC). Returns `null` for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSqliteTime } from "./runner.ts";
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

function ensureSchemaVersionTable(
  db: DatabaseSync,
  migrations: readonly Migration[],
): void {
  db.exec(
    `CREATE TABLE IF NOT EXISTS schema_version (
       version INTEGER PRIMARY KEY,
       applied_at TEXT NOT NULL DEFAULT (datetime('now')),
       name TEXT,
       checksum TEXT)`,
  );
  // The Go store's table has only (version, applied_at): add our columns, and name its rows.
  const columns = tableColumns(db, "schema_version");
  if (!columns.includes("name")) {
    db.exec("ALTER TABLE schema_version ADD COLUMN name TEXT");
  }
  if (!columns.includes("checksum")) {
    db.exec("ALTER TABLE schema_version ADD COLUMN checksum TEXT");
  }
  const nameRow = db.prepare(
    "UPDATE schema_version SET name = ? WHERE version = ? AND name IS NULL",
  );
  for (const m of migrations) nameRow.run(m.name, m.version);
}

function checkForeignKeys(db: DatabaseSync, file: Migration): void {
  const violations = db.prepare("PRAGMA foreign_key_check").all() as {
    table: string;
    parent: string;
  }[];
  if (violations.length > 0) {
    const first = violations[0];
    throw new MigrationError(
      `migration ${file.name} would leave ${violations.length} row(s) violating foreign keys ` +
        `(first: ${first.table} -> ${first.parent}); rolled back, nothing changed`,
      { file: file.name },
    );
  }
}

/**
 * Problems with the schema of a database at `version`: protostore's tables must have
 * the columns of that version (and none a later file adds), tables must not exist
 * before the file that creates them unless it takes them over, the audit cascade must
 * be in place, and there must be no triggers or views: protostore creates none, and
 * writing or migrating through someone else's would be blind trust (a view on a table
 * that a migration rebuilds also makes that migration fail).
 */
function schemaProblems(db: DatabaseSync, version: number): string[] {
  const problems: string[] = [];
  for (const [table, shape] of Object.entries(TABLE_SHAPES)) {
    const columns = tableColumns(db, table);
    const exists = columns.length > 0;
    const shapeAt = Math.max(version, shape.created);
    if (!exists) {
      if (version >= shape.created) {
        problems.push(
          `table ${table} is missing (schema version ${version} has it)`,
        );
      }
      continue;
    }
    if (version < shape.created && !shape.ifNotExists) {
      problems.push(
        `table ${table} exists, but schema version ${version} predates the migration ` +
          "that creates it: the file was not written by protostore",
      );
      continue;
    }
    const expected = Object.entries(shape.columns);
    const missing = expected.filter(([c, since]) =>
      since <= shapeAt && !columns.includes(c)
    ).map(([c]) => c);
    if (missing.length > 0) {
      problems.push(
        `table ${table} lacks column(s) ${missing.join(", ")} ` +
          `(schema version ${version})`,
      );
    }
    const early = expected.filter(([c, since]) =>
      since > shapeAt && columns.includes(c)
    ).map(([c]) => c);
    if (early.length > 0) {
      problems.push(
        `table ${table} already has column(s) ${
          early.join(", ")
        }, which a migration ` +
          `after schema version ${version} adds: the file was not written by protostore`,
      );
    }
  }
  if (
    version >= CASCADE_SINCE && tableColumns(db, "resource_audit").length > 0
  ) {
    const keys = db.prepare(
      `SELECT "table" AS parent, on_delete FROM pragma_foreign_key_list('resource_audit')`,
    ).all() as { parent: string; on_delete: string }[];
    if (
      !keys.some((k) => k.parent === "resources" && k.on_delete === "CASCADE")
    ) {
      problems.push(
        "table resource_audit lacks its foreign key to resources ON DELETE CASCADE: " +
          "deleting a resource would leave its history behind",
      );
    }
  }
  if (tableColumns(db, REBUILD_TABLE).length > 0) {
    problems.push(
      `table ${REBUILD_TABLE} exists: it is not protostore's (migration 0003 uses ` +
        "the name only inside its transaction)",
    );
  }
  const objects = db.prepare(
    `SELECT type, name, tbl_name FROM sqlite_schema
     WHERE type IN ('trigger', 'view') ORDER BY type, name`,
  ).all() as { type: string; name: string; tbl_name: string }[];
  for (const o of objects) {
    problems.push(
      o.type === "trigger"
        ? `trigger ${o.name} on ${o.tbl_name} was not created by protostore; ` +
          "refusing to write through it (drop it if you trust nothing depends on it)"
        : `view ${o.name} was not created by protostore; refusing to migrate or write ` +
          "next to it (a view on protostore's tables breaks migrations that rebuild " +
          "them; drop it)",
    );
  }
  return problems;
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
