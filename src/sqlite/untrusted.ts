/**
 * Reading a database file we do not trust (the admin tools read any file they are given):
 * a guard that keeps SQL stored in the file from running, and a check that an object is
 * the plain table a query expects before it is queried.
 *
 * A crafted file can name a view `resources` whose body is an endless recursive query; a
 * `SELECT … FROM resources` then never returns and eats memory. node:sqlite has no
 * progress handler to bound a statement's work, but it has an authorizer, which SQLite
 * calls while it prepares a statement (not per row, so it costs nothing while reading):
 * it names the view or trigger an access comes through, and recursive queries.
 *
 * @module
 */
import { constants, type DatabaseSync } from "node:sqlite";
import { StoreError } from "../errors.ts";

/** Deno implements `setAuthorizer`, but its bundled Node types lack it. */
interface WithAuthorizer {
  setAuthorizer(
    callback:
      | ((
        action: number,
        arg1: string | null,
        arg2: string | null,
        database: string | null,
        through: string | null,
      ) => number)
      | null,
  ): void;
}

/** Authorizer codes (SQLite's C API); Deno's bundled Node types lack them. */
const { SQLITE_OK, SQLITE_DENY, SQLITE_RECURSIVE } = constants as unknown as {
  SQLITE_OK: number;
  SQLITE_DENY: number;
  SQLITE_RECURSIVE: number;
};

/** What the guard last refused on each connection, for the error message. */
const refusals = new WeakMap<DatabaseSync, string>();

/**
 * Makes `db` refuse to prepare statements that would run SQL stored in the file: any
 * access through a view or a trigger, and recursive queries (protostore's own queries
 * use neither). Such a statement fails to prepare; {@linkcode refusedRead} turns that
 * failure into a clear {@linkcode StoreError}. Plain tables, pragmas and functions in
 * the caller's own SQL work as before.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { guardUntrustedReads } from "./untrusted.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec("CREATE VIEW v AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r");
 * guardUntrustedReads(db);
 * assert.throws(() => db.prepare("SELECT count(*) FROM v"));
 * assert.equal((db.prepare("SELECT 1 AS one").get() as { one: number }).one, 1);
 * db.close();
 * ```
 */
export function guardUntrustedReads(db: DatabaseSync): void {
  (db as unknown as WithAuthorizer).setAuthorizer(
    (action, _arg1, _arg2, _database, through) => {
      if (through !== null) {
        refusals.set(db, `view or trigger ${JSON.stringify(through)}`);
        return SQLITE_DENY;
      }
      if (action === SQLITE_RECURSIVE) {
        refusals.set(db, "a recursive query");
        return SQLITE_DENY;
      }
      return SQLITE_OK;
    },
  );
}

/**
 * When `error` is the guard of {@linkcode guardUntrustedReads} refusing a statement on
 * `db`, a {@linkcode StoreError} saying so for the file at `path`; otherwise `error`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { guardUntrustedReads, refusedRead } from "./untrusted.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec("CREATE TABLE t (a); CREATE VIEW v AS SELECT a FROM t");
 * guardUntrustedReads(db);
 * try {
 *   db.prepare("SELECT * FROM v");
 *   assert.fail("the guard lets a view through");
 * } catch (error) {
 *   assert.match(String(refusedRead(db, error, "x.sqlite")), /view or trigger "v"/);
 * }
 * db.close();
 * ```
 */
export function refusedRead(
  db: DatabaseSync,
  error: unknown,
  path: string,
): unknown {
  const what = refusals.get(db);
  if (what === undefined || !/not authorized|prohibited/i.test(String(error))) {
    return error;
  }
  refusals.delete(db);
  return new StoreError(
    `refused to read ${path} through ${what}: the file holds SQL of its own where ` +
      "protostore keeps plain tables, and read-only tools do not run SQL from a file " +
      "they do not trust",
    { cause: error },
  );
}

/** What {@linkcode plainTable} found under a name. */
export type TableCheck =
  | { state: "absent" }
  | { state: "table"; columns: string[] }
  | { state: "refused"; problem: string };

/**
 * Whether `name` in `db`'s main schema is a plain table (not a view, not a virtual table,
 * no generated columns), so that reading it reads stored rows and runs no SQL or module
 * code from the file. Returns its columns, or the problem in words.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { plainTable } from "./untrusted.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec("CREATE TABLE t (a, b); CREATE VIEW v AS SELECT a FROM t");
 * assert.deepEqual(plainTable(db, "t"), { state: "table", columns: ["a", "b"] });
 * assert.equal(plainTable(db, "v").state, "refused");
 * assert.equal(plainTable(db, "w").state, "absent");
 * db.close();
 * ```
 */
export function plainTable(db: DatabaseSync, name: string): TableCheck {
  // Names are case-insensitive in SQLite: `RESOURCES` is what `FROM resources` reads.
  const object = db.prepare(
    `SELECT type, name, sql FROM main.sqlite_schema
     WHERE name = ? COLLATE NOCASE AND type IN ('table', 'view')`,
  ).get(name) as { type: string; name: string; sql: string | null } | undefined;
  if (object === undefined) return { state: "absent" };
  if (object.type === "view") {
    return {
      state: "refused",
      problem: `${name} is a view, not a table`,
    };
  }
  if (/^\s*CREATE\s+VIRTUAL\b/i.test(object.sql ?? "")) {
    return {
      state: "refused",
      problem: `${name} is a virtual table, not a plain table`,
    };
  }
  const columns = db.prepare(
    "SELECT name, hidden FROM pragma_table_xinfo(?)",
  ).all(object.name) as { name: string; hidden: number }[];
  // hidden 2 and 3 are generated columns: an expression from the file, run on read.
  const generated = columns.filter((c) => c.hidden === 2 || c.hidden === 3);
  if (generated.length > 0) {
    return {
      state: "refused",
      problem: `${name} has generated column(s) ${
        generated.map((c) => c.name).join(", ")
      }, which protostore never creates`,
    };
  }
  return {
    state: "table",
    columns: columns.filter((c) => c.hidden === 0).map((c) => c.name),
  };
}
