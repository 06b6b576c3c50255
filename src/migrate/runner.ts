/**
 * The migration runner: applies pending files to an open connection, each in its own
 * `BEGIN IMMEDIATE` transaction with its `schema_version` row and checksum, honours the
 * `foreign-keys-off` directive, and refuses (before any write) what the plan refuses.
 * `openStore()` and `migrate()` call it.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { enableWal, tableColumns } from "../sqlite/connection.ts";
import { messageOf, MigrationError, StoreError } from "../errors.ts";
import { sqliteErrorCode } from "../sqlite/errors.ts";
import { timeCheckFailure } from "./time_checks.ts";
import { type Migration, MIGRATIONS } from "./files.ts";
import {
  type MigrationPlan,
  type PendingMigration,
  planMigrations,
  refuseProblems,
} from "./plan.ts";

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
 * assert(applyMigrations(db).length > 0);
 * assert(applyMigrations(db).length === 0);
 * db.close();
 * ```
 */
export function applyMigrations(
  db: DatabaseSync,
  migrations: readonly Migration[] = MIGRATIONS,
): PendingMigration[] {
  refuseProblems(planMigrations(db, migrations));
  setNewFilePageSize(db, migrations);
  const done: PendingMigration[] = [];
  // The page-size rebuild runs once, after the last file: between two files the write
  // lock is free, and a rebuild there let another migrating process apply the rest.
  let resize: number | undefined;
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
        if (file.pageSize !== undefined) resize = file.pageSize;
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        if (error instanceof StoreError) throw error;
        const reason = messageOf(error);
        const timeCheck = timeCheckFailure(reason);
        throw new MigrationError(
          `migration ${file.name} failed and was rolled back: ${
            timeCheck === undefined
              ? reason
              : `${timeCheck}; a row holds time text that cannot be converted: fix or ` +
                "delete it (sqlite3), then migrate again"
          }`,
          { cause: error, file: file.name, code: sqliteErrorCode(error) },
        );
      }
    } finally {
      if (file.foreignKeysOff) db.exec("PRAGMA foreign_keys = ON");
    }
  }
  if (resize !== undefined) resizePages(db, resize);
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
 *   db.prepare(
 *     "INSERT INTO resources (kind, id, data, updated_at) VALUES ('a', '1', x'', ?)",
 *   ).run(new Date().toISOString());
 * });
 * assert.equal(applied[0].name, "0001_resources.sql");
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
  // Before the first table: a new file gets the page size pending files ask for.
  setNewFilePageSize(db, pendingFiles(before));
  if (foreignKeysOff) db.exec("PRAGMA foreign_keys = OFF");
  let done: { applied: PendingMigration[]; result: T };
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
      done = { applied, result };
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  } finally {
    if (foreignKeysOff) db.exec("PRAGMA foreign_keys = ON");
  }
  if (!options.rollback) {
    // An existing file gets its page size after the commit (VACUUM needs no transaction).
    const size = MIGRATIONS.filter((m) =>
      m.pageSize !== undefined &&
      done.applied.some((a) => a.version === m.version)
    ).at(-1)?.pageSize;
    if (size !== undefined) resizePages(db, size);
  }
  return done;
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
 * assert(prepareDatabase(db)[0].name === "0001_resources.sql");
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
  // Before WAL: a WAL file's page size is fixed.
  setNewFilePageSize(db, MIGRATIONS);
  enableWal(db);
  if (plan.pending.length === 0) return [];
  const applied = applyMigrations(db);
  // A file that rebuilt tables may have left the schema different from what we use.
  refuseProblems(planMigrations(db));
  return applied;
}

/**
 * Gives an existing database the page size its migrations ask for (a file with a
 * `page-size` directive at or below its schema version), rebuilding it with `VACUUM`
 * outside WAL. Best effort: when another connection has the file open (the switch out
 * of WAL needs it alone) or holds a lock, nothing changes and false is returned; the
 * data are the same either way, only the file is larger. `migrate()` calls it on every
 * run, so an interrupted rebuild is finished by the next one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { openConnection } from "../sqlite/connection.ts";
 * import { MIGRATIONS } from "./files.ts";
 * import { ensurePageSize, prepareDatabase } from "./runner.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".sqlite" });
 * const old = new DatabaseSync(path); // a Go v1 file with 4 KiB pages
 * old.exec(`PRAGMA page_size = 4096; ${MIGRATIONS[0].sql}`);
 * old.close();
 * const db = openConnection(path);
 * prepareDatabase(db);
 * assert.equal(ensurePageSize(db), false); // applying the files already rebuilt it
 * assert.equal((db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size, 16384);
 * db.close();
 * ```
 */
export function ensurePageSize(
  db: DatabaseSync,
  migrations: readonly Migration[] = MIGRATIONS,
): boolean {
  const { schemaVersion } = planMigrations(db, migrations);
  const wanted = migrations.filter((m) =>
    m.pageSize !== undefined && m.version <= schemaVersion
  ).at(-1)?.pageSize;
  return wanted !== undefined && resizePages(db, wanted);
}

/** Sets the page size pending files ask for on a database that has no page yet. */
function setNewFilePageSize(
  db: DatabaseSync,
  migrations: readonly Migration[],
): void {
  const size = migrations.findLast((m) => m.pageSize !== undefined)?.pageSize;
  if (size === undefined) return;
  const { page_count } = db.prepare("PRAGMA page_count").get() as {
    page_count: number;
  };
  // page_size is an integer we validated in defineMigration; PRAGMA takes no parameters.
  if (page_count === 0) db.exec(`PRAGMA page_size = ${size}`);
}

/** VACUUMs the database into pages of `size` bytes; see {@linkcode ensurePageSize}. */
function resizePages(db: DatabaseSync, size: number): boolean {
  if (db.isTransaction || Number(pragma(db, "page_size")) >= size) return false;
  const wal = String(pragma(db, "journal_mode")) === "wal";
  try {
    // VACUUM writes through a rollback journal: FULL makes it durable. Its temporary
    // copy goes to a temp file, not to memory (the connection keeps temp in memory).
    db.exec("PRAGMA synchronous = FULL; PRAGMA temp_store = FILE");
    if (wal) {
      db.exec("PRAGMA journal_mode = DELETE");
      if (String(pragma(db, "journal_mode")) === "wal") return false;
    }
    db.exec(`PRAGMA page_size = ${size}`);
    db.exec("VACUUM");
    return pragma(db, "page_size") === size;
  } catch {
    // Busy: another connection reads or writes the file. Try again on a later migrate.
    return false;
  } finally {
    db.exec("PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY");
    if (wal) enableWal(db);
  }
}

function pragma(db: DatabaseSync, name: string): number | string {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<
    string,
    number | string
  >;
  return row[name];
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
