/**
 * The one classifier of SQLite failures: a `node:sqlite` error becomes a
 * {@linkcode StoreError} whose `code` says what kind of failure it was (busy, disk full,
 * read-only, corrupt, constraint, too big, cannot open, I/O), with the original error
 * kept as `cause`. Callers branch on `code`, never on SQLite's message text.
 *
 * @module
 */
import { type SqliteErrorCode, StoreError } from "../errors.ts";

/** SQLite's primary result codes (the low byte of an extended code) that we classify. */
const BY_PRIMARY_CODE: ReadonlyMap<number, SqliteErrorCode> = new Map([
  [5, "busy"], // SQLITE_BUSY
  [6, "busy"], // SQLITE_LOCKED
  [8, "read_only"], // SQLITE_READONLY
  [10, "io"], // SQLITE_IOERR
  [11, "corrupt"], // SQLITE_CORRUPT
  [13, "disk_full"], // SQLITE_FULL
  [14, "cant_open"], // SQLITE_CANTOPEN
  [18, "too_big"], // SQLITE_TOOBIG
  [19, "constraint"], // SQLITE_CONSTRAINT
  [26, "corrupt"], // SQLITE_NOTADB
]);

/**
 * Deno's `node:sqlite` (2.9) sets `errcode` only on errors of prepared statements;
 * errors of `DatabaseSync#exec` and of the constructor carry only SQLite's message.
 * For those the message is SQLite's own text for the result code (`sqlite3_errstr`, or
 * a fixed variant of it), so it is matched against these fixed texts, nothing looser.
 */
const BY_SQLITE_TEXT: readonly (readonly [string, SqliteErrorCode])[] = [
  ["database is locked", "busy"],
  ["database table is locked", "busy"],
  ["database schema is locked", "busy"],
  ["attempt to write a readonly database", "read_only"],
  ["disk I/O error", "io"],
  ["database disk image is malformed", "corrupt"],
  ["malformed database schema", "corrupt"],
  ["file is not a database", "corrupt"],
  ["database or disk is full", "disk_full"],
  ["unable to open database file", "cant_open"],
  ["string or blob too big", "too_big"],
  ["constraint failed", "constraint"],
];

interface NodeSqliteError {
  code?: unknown;
  errcode?: unknown;
}

/**
 * The class of a `node:sqlite` failure, from its primary result code; `undefined` for
 * anything else (another SQLite error such as a syntax error, or not a SQLite error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { sqliteErrorCode } from "./errors.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec("CREATE TABLE t (x UNIQUE); INSERT INTO t VALUES (1)");
 * assert.throws(
 *   () => db.prepare("INSERT INTO t VALUES (1)").run(),
 *   (error) => sqliteErrorCode(error) === "constraint",
 * );
 * assert.equal(sqliteErrorCode(new Error("database is locked")), undefined);
 * db.close();
 * ```
 */
export function sqliteErrorCode(error: unknown): SqliteErrorCode | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, errcode } = error as NodeSqliteError;
  if (code !== "ERR_SQLITE_ERROR") return undefined;
  if (typeof errcode === "number") return BY_PRIMARY_CODE.get(errcode & 0xff);
  const message = error.message;
  for (const [text, kind] of BY_SQLITE_TEXT) {
    if (message.includes(text)) return kind;
  }
  return undefined;
}

/**
 * Wraps a failure of a SQLite call into a {@linkcode StoreError} with `message`, its
 * `code` from {@linkcode sqliteErrorCode} and the failure as `cause`. A `StoreError`
 * is returned as it is (it was already explained).
 *
 * @param message What failed, to what; the SQLite message is not appended.
 * @param error What the SQLite call threw.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { sqliteFailure } from "./errors.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * try {
 *   db.prepare("SELECT zeroblob(2000000000)").get();
 *   assert.fail("a 2 GB value is over SQLite's limit");
 * } catch (error) {
 *   const wrapped = sqliteFailure("cannot make a blob", error);
 *   assert.equal(wrapped.code, "too_big");
 *   assert.equal(wrapped.cause, error);
 * }
 * db.close();
 * ```
 */
export function sqliteFailure(message: string, error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  return new StoreError(message, {
    cause: error,
    code: sqliteErrorCode(error),
  });
}

/**
 * What a caller can do about a classified failure, as a clause to append to a message
 * (`": …"`); `""` when there is nothing to add.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { failureHint } from "./errors.ts";
 *
 * assert.match(failureHint("disk_full"), /free disk space/);
 * assert.equal(failureHint(undefined), "");
 * ```
 */
export function failureHint(code: SqliteErrorCode | undefined): string {
  switch (code) {
    case "busy":
      return ": another process held the lock longer than the busy timeout; retry or " +
        "raise busyTimeoutMs";
    case "disk_full":
      return ": free disk space and retry; nothing was written";
    case "read_only":
      return ": the database file or its directory is not writable";
    case "corrupt":
      return ": the file is damaged or not a SQLite database; restore a backup";
    default:
      return "";
  }
}
