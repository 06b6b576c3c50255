/**
 * The one place that opens `node:sqlite` connections: file permissions, pragmas,
 * read-only mode, busy timeout and the "is this a SQLite file at all" check.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { messageOf, StoreError } from "../errors.ts";
import { failureHint, sqliteErrorCode, sqliteFailure } from "./errors.ts";

/** How {@linkcode openConnection} opens a database file. */
export interface ConnectionOptions {
  /** Open with SQLITE_OPEN_READONLY; the file must exist. Default false. */
  readOnly?: boolean;
  /** How long to wait for another connection's lock, in milliseconds. Default 5000. */
  busyTimeoutMs?: number;
}

/** Default wait for another process's write lock. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * Opens `path` with protostore's connection settings. A writable open creates the
 * parent directory (0700) and the file (0600) when missing; SQLite gives its `-wal`
 * and `-shm` files the database file's mode. Throws {@linkcode StoreError} when the
 * path is not a SQLite database, naming the path; the file is not modified.
 *
 * WAL is not switched on here: that changes the file, and callers first check that the
 * schema is one they may change (see `enableWal`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection } from "./connection.ts";
 *
 * const path = `${await Deno.makeTempDir()}/new/db.sqlite`;
 * const db = openConnection(path);
 * const { foreign_keys } = db.prepare("PRAGMA foreign_keys").get() as { foreign_keys: number };
 * assert.equal(foreign_keys, 1);
 * assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
 * db.close();
 * ```
 */
export function openConnection(
  path: string,
  options: ConnectionOptions = {},
): DatabaseSync {
  const readOnly = options.readOnly ?? false;
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (typeof path !== "string" || path === "") {
    throw new StoreError("database path must be a non-empty string");
  }
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new StoreError(
      `busyTimeoutMs must be a whole number of milliseconds >= 0, got ${busyTimeoutMs}`,
    );
  }
  if (readOnly) requireFile(path);
  else createOwnerOnly(path);

  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, {
      readOnly,
      timeout: busyTimeoutMs,
      enableForeignKeyConstraints: true,
    });
  } catch (error) {
    throw sqliteFailure(
      `cannot open database ${path}: ${messageOf(error)}`,
      error,
    );
  }
  try {
    // The first read of the schema is what fails on a file that is not SQLite.
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
  } catch (error) {
    db.close();
    const reason = messageOf(error);
    const code = sqliteErrorCode(error);
    // A WAL database needs its -shm index file; in a directory we cannot write, SQLite
    // cannot create it and refuses even to read.
    const immutable = code === "read_only" || code === "cant_open"
      ? openImmutable(path, busyTimeoutMs)
      : null;
    if (immutable === null) {
      throw sqliteFailure(
        code === "corrupt"
          ? /not a database/.test(reason)
            ? `${path} is not a SQLite database (${reason})`
            // A SQLite file whose schema page is damaged.
            : `${path} is damaged: its schema cannot be read (${reason}); restore ` +
              "it from a backup, or recover what is readable with `sqlite3 .recover`"
          : `cannot read database ${path}: ${reason}`,
        error,
      );
    }
    db = immutable;
  }
  // Defensive mode and untrusted schema: a crafted file cannot use the schema to run
  // SQL functions with side effects or to corrupt itself through writable_schema.
  (db as unknown as WithDefensive).enableDefensive(true);
  // Reads of files up to 1 GiB go through the memory map, not through read() into the
  // 64 MiB page cache: random audit lookups at 1,000,000 rows (~550 MB) were ~30% faster
  // than with a 256 MiB map (BENCHMARKS.md). Mapped pages are the OS's shared file cache.
  db.exec(
    `PRAGMA trusted_schema = OFF;
     PRAGMA foreign_keys = ON;
     PRAGMA synchronous = NORMAL;
     PRAGMA temp_store = MEMORY;
     PRAGMA cache_size = -65536;
     PRAGMA mmap_size = 1073741824;`,
  );
  return db;
}

/**
 * Puts the database in WAL mode (a persistent change to the file header), so readers
 * never block the writer and commits need no fsync with `synchronous=NORMAL`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { enableWal, openConnection } from "./connection.ts";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * enableWal(db);
 * const { journal_mode } = db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
 * assert.equal(journal_mode, "wal");
 * db.close();
 * ```
 */
export function enableWal(db: DatabaseSync): void {
  const row = db.prepare("PRAGMA journal_mode").get() as {
    journal_mode: string;
  };
  if (row.journal_mode === "wal") return;
  // The switch needs an exclusive lock, and SQLite returns SQLITE_BUSY at once instead
  // of calling the busy handler (seen with processes opening a new file together):
  // retry within the connection's busy timeout ourselves.
  const { timeout } = db.prepare("PRAGMA busy_timeout").get() as {
    timeout: number;
  };
  const deadline = Date.now() + timeout;
  for (let wait = 1;; wait = Math.min(wait * 2, 50)) {
    try {
      db.exec("PRAGMA journal_mode = WAL");
      return;
    } catch (error) {
      const code = sqliteErrorCode(error);
      // A file or directory we cannot write: stay as is; every write says why it fails.
      if (code === "read_only") return;
      if (code !== "busy" || Date.now() >= deadline) {
        throw sqliteFailure(
          `cannot switch the database to WAL mode: ${messageOf(error)}` +
            failureHint(code),
          error,
        );
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
    }
  }
}

/**
 * Opens a WAL database that SQLite cannot read normally because its `-shm` file cannot
 * be created (read-only directory), as `immutable`: read-only, no locks, no -shm.
 * Only when no `-wal` file with changes exists, as those would be ignored; then null is
 * returned with a StoreError thrown instead. Immutable means SQLite assumes nobody else
 * writes the file, which holds as long as the directory stays read-only.
 */
function openImmutable(
  path: string,
  busyTimeoutMs: number,
): DatabaseSync | null {
  let walBytes = 0;
  try {
    walBytes = Deno.statSync(`${path}-wal`).size;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return null;
  }
  if (walBytes > 0) {
    throw new StoreError(
      `cannot read database ${path}: it has changes in ${path}-wal that were never ` +
        `checkpointed, and SQLite cannot create ${path}-shm to read them (is the ` +
        "directory read-only?); open it once where the directory is writable, or copy " +
        "the database and its -wal file to a writable directory",
    );
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(`${pathToFileURL(resolve(path)).href}?immutable=1`, {
      readOnly: true,
      timeout: busyTimeoutMs,
      enableForeignKeyConstraints: true,
    });
  } catch {
    return null;
  }
  try {
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
    return db;
  } catch {
    db.close();
    return null;
  }
}

function requireFile(path: string): void {
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) throw new StoreError(`${path} is not a database file`);
  } catch (error) {
    if (error instanceof StoreError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      throw new StoreError(`no database at ${path}: the file does not exist`, {
        code: "cant_open",
      });
    }
    throw new StoreError(`cannot open database ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

function createOwnerOnly(path: string): void {
  try {
    Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    Deno.openSync(path, { write: true, createNew: true, mode: 0o600 }).close();
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return;
    throw new StoreError(
      `cannot create database ${path}: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Deno implements these node:sqlite methods, but its bundled Node types lack them. */
interface WithDefensive {
  enableDefensive(active: boolean): void;
}
interface WithReturnArrays {
  setReturnArrays(enabled: boolean): void;
}

/**
 * Makes `statement` return rows as arrays (no per-row object with column-name keys),
 * for hot list paths. Returns the statement.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection, returnArrays } from "./connection.ts";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * const row = returnArrays(db.prepare("SELECT 1, 2")).get() as unknown as number[];
 * assert(row[1] === 2);
 * db.close();
 * ```
 */
export function returnArrays(statement: StatementSync): StatementSync {
  (statement as unknown as WithReturnArrays).setReturnArrays(true);
  return statement;
}

/**
 * The column names of `table` in the main schema, in order; `[]` when it does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection, tableColumns } from "./connection.ts";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * db.exec("CREATE TABLE t (a, b)");
 * assert(tableColumns(db, "t").join() === "a,b");
 * db.close();
 * ```
 */
export function tableColumns(db: DatabaseSync, table: string): string[] {
  const rows = db.prepare("SELECT name FROM pragma_table_info(?)").all(
    table,
  ) as {
    name: string;
  }[];
  return rows.map((r) => r.name);
}

/**
 * SQL that reads TEXT column `column` whole. Deno's node:sqlite cuts TEXT at the first
 * NUL when reading (SQLite stores it whole), so a value holding a NUL is read as bytes
 * instead; {@linkcode readText} turns either back into the string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection, readText, wholeText } from "./connection.ts";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * const row = db.prepare(`SELECT ${wholeText("?1")} AS t`).get("a\0b") as { t: Uint8Array };
 * assert(readText(row.t) === "a\0b");
 * db.close();
 * ```
 */
export function wholeText(column: string): string {
  return `iif(instr(${column}, char(0)), CAST(${column} AS BLOB), ${column})`;
}

const utf8 = new TextDecoder();

/**
 * A value read through {@linkcode wholeText}: text, bytes (text holding a NUL) or
 * `null`, as a string or `null`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readText } from "./connection.ts";
 *
 * assert(readText(new Uint8Array([0x61, 0, 0x62])) === "a\0b");
 * ```
 */
export function readText(value: unknown): string | null {
  if (value instanceof Uint8Array) return utf8.decode(value);
  return value === null || value === undefined ? null : String(value);
}
