/**
 * How the admin tools open and read a database file: read-only, never migrated, and
 * distrusting the file (see `src/sqlite/untrusted.ts`): SQL stored in the file never
 * runs, and objects that are not the plain tables a query expects are refused.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { openConnection } from "../sqlite/connection.ts";
import { guardUntrustedReads, plainTable } from "../sqlite/untrusted.ts";
import { StoreError } from "../errors.ts";

/**
 * Opens `path` read-only with the guard of `guardUntrustedReads`; the caller closes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { migrate } from "../migrate/migrate.ts";
 * import { openUntrusted } from "./read_only.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * migrate(path);
 * const db = openUntrusted(path);
 * assert.throws(() => db.exec("DELETE FROM resources"), /readonly/);
 * db.close();
 * ```
 */
export function openUntrusted(path: string): DatabaseSync {
  const db = openConnection(path, { readOnly: true });
  guardUntrustedReads(db);
  return db;
}

/**
 * The columns of table `name`, `[]` when there is no such object; throws a
 * {@linkcode StoreError} when `name` is a view, a virtual table or has generated columns
 * (reading it would run the file's own SQL).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { requireTable } from "./read_only.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec("CREATE TABLE t (a); CREATE VIEW v AS SELECT a FROM t");
 * assert.deepEqual(requireTable(db, "t"), ["a"]);
 * assert.deepEqual(requireTable(db, "missing"), []);
 * assert.throws(() => requireTable(db, "v"), /view/);
 * db.close();
 * ```
 */
export function requireTable(db: DatabaseSync, name: string): string[] {
  const check = plainTable(db, name);
  if (check.state === "refused") {
    throw new StoreError(
      `${check.problem}: refusing to read it (protostore keeps its rows in plain ` +
        "tables, so the file was not written by protostore)",
    );
  }
  return check.state === "table" ? check.columns : [];
}

/**
 * Throws a {@linkcode StoreError} naming what the file holds when it has no
 * `resources` table (another application's file, or an empty one), so a lookup there
 * says so instead of "does not exist".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { requireProtostore } from "./read_only.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec("CREATE TABLE notes (body)");
 * assert.throws(() => requireProtostore(db, "notes.db"), /not a protostore database.*table notes/);
 * db.exec("CREATE TABLE resources (kind, id, data)");
 * requireProtostore(db, "notes.db");
 * db.close();
 * ```
 */
export function requireProtostore(db: DatabaseSync, path: string): void {
  if (requireTable(db, "resources").length > 0) return;
  const names = (db.prepare(
    `SELECT type || ' ' || name AS what FROM main.sqlite_schema
     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT 6`,
  ).all() as { what: string }[]).map((r) => r.what);
  throw new StoreError(
    `${path} is not a protostore database: it has no resources table (${
      names.length === 0 ? "it is empty" : `it holds ${names.join(", ")}`
    })`,
  );
}
