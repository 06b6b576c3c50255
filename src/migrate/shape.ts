/**
 * The shape protostore's tables must have at each schema version, and the check that
 * compares a database against it before anything is written.
 *
 * The expected shape of version N is not written down by hand: it is what migration
 * files 1..N produce, applied once per process to an in-memory database. A new
 * migration file therefore extends the check by itself. What is compared, per table:
 * WITHOUT ROWID and STRICT, each column's declared type, NOT NULL, primary-key position,
 * hidden/generated flag and collation, AUTOINCREMENT, named CHECK constraints, foreign
 * keys with their ON DELETE/ON UPDATE actions, and every index with its columns, order,
 * collations, uniqueness and partial flag. Besides: tables must not exist before the
 * file that creates them (unless that file adopts an existing table with CREATE TABLE
 * IF NOT EXISTS, as the Go store's files did), a non-empty file with no schema version
 * must hold nothing but such adoptable tables, and there must be no triggers or views.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { openScratchDatabase } from "../sqlite/scratch.ts";
import type { Migration } from "./files.ts";

/** One column as SQLite reports it, plus its collation from the table's SQL. */
interface ColumnShape {
  type: string;
  notNull: boolean;
  pk: number;
  hidden: number;
  collation: string;
}

/** One table's shape: everything the comparison looks at. */
interface TableShape {
  withoutRowid: boolean;
  strict: boolean;
  autoincrement: boolean;
  columns: Map<string, ColumnShape>;
  /** Named (or unnamed: "") CHECK constraints -> normalized expression. */
  checks: Map<string, string>;
  /** Foreign keys, one description each. */
  foreignKeys: string[];
  /** Indexes by name (SQLite's own autoindexes under a name derived from content). */
  indexes: Map<string, string>;
}

type Schema = Map<string, TableShape>;

/**
 * Problems with the schema of a database at `version` compared with what `migrations`
 * 1..`version` create: each table's shape (see the module doc), tables that exist too
 * early, foreign content in a file with no schema version, and triggers or views
 * (protostore creates none, and writing or migrating through someone else's would be
 * blind trust; a view on a table that a migration rebuilds also makes it fail).
 * Returns an empty list when all is well.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { MIGRATIONS } from "./files.ts";
 * import { schemaProblems } from "./shape.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
 * assert.match(schemaProblems(db, 0, MIGRATIONS).join(), /customers/);
 * db.close();
 * ```
 */
export function schemaProblems(
  db: DatabaseSync,
  version: number,
  migrations: readonly Migration[],
): string[] {
  const problems: string[] = [];
  const expected = referenceSchema(migrations, version);
  const adoptable = adoptableTables(migrations, version);
  const ours = tablesCreatedBy(migrations);
  const objects = db.prepare(
    `SELECT type, name, tbl_name FROM sqlite_schema
     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name`,
  ).all() as { type: string; name: string; tbl_name: string }[];
  const tables = new Set(
    objects.filter((o) => o.type === "table").map((o) => o.name),
  );

  for (const [table, shape] of expected) {
    if (!tables.has(table)) {
      problems.push(
        `table ${table} is missing (schema version ${version} has it)`,
      );
      continue;
    }
    problems.push(...compareTable(db, table, shape, version));
  }
  const foreign: string[] = [];
  for (const table of tables) {
    if (expected.has(table) || table === "schema_version") continue;
    const adoptedAt = adoptable.get(table);
    if (adoptedAt !== undefined) {
      // The pending file that creates it takes the table over: it must already have the
      // shape that file gives it.
      const shape = referenceSchema(migrations, adoptedAt).get(table)!;
      problems.push(...compareTable(db, table, shape, adoptedAt));
    } else if (ours.has(table)) {
      problems.push(
        `table ${table} exists, but schema version ${version} predates the migration ` +
          "that creates it: the file was not written by protostore",
      );
    } else if (version === 0) {
      foreign.push(`table ${table}`);
    }
    // At version >= 1 other tables are the user's own, next to protostore's.
  }
  for (const o of objects) {
    if (o.type === "trigger") {
      problems.push(
        `trigger ${o.name} on ${o.tbl_name} was not created by protostore; ` +
          "refusing to write through it (drop it if you trust nothing depends on it)",
      );
    } else if (o.type === "view") {
      problems.push(
        `view ${o.name} was not created by protostore; refusing to migrate or write ` +
          "next to it (a view on protostore's tables breaks migrations that rebuild " +
          "them; drop it)",
      );
    } else if (
      o.type === "index" && version === 0 &&
      foreign.includes(`table ${o.tbl_name}`)
    ) {
      foreign.push(`index ${o.name}`);
    }
  }
  if (foreign.length > 0) {
    problems.push(
      `the database is not empty and was not written by protostore or the Go store ` +
        `(no schema_version; it holds ${
          foreign.join(", ")
        }): refusing to add ` +
        "protostore's tables to another application's database; use a new file",
    );
  }
  return problems;
}

/** Differences between table `table` in `db` and `want` (the shape at `version`). */
function compareTable(
  db: DatabaseSync,
  table: string,
  want: TableShape,
  version: number,
): string[] {
  const have = describeTable(db, table);
  const at = `(schema version ${version})`;
  const problems: string[] = [];
  if (have.withoutRowid !== want.withoutRowid) {
    problems.push(
      `table ${table} is ${have.withoutRowid ? "" : "not "}WITHOUT ROWID ${at}`,
    );
  }
  if (have.strict !== want.strict) {
    problems.push(`table ${table} is ${have.strict ? "" : "not "}STRICT ${at}`);
  }
  const missing = [...want.columns.keys()].filter((c) => !have.columns.has(c));
  if (missing.length > 0) {
    problems.push(`table ${table} lacks column(s) ${missing.join(", ")} ${at}`);
  }
  const extra = [...have.columns.keys()].filter((c) => !want.columns.has(c));
  if (extra.length > 0) {
    problems.push(
      `table ${table} already has column(s) ${
        extra.join(", ")
      }, which a migration ` +
        `after schema version ${version} adds or protostore never has: the file was not ` +
        "written by protostore",
    );
  }
  for (const [name, w] of want.columns) {
    const h = have.columns.get(name);
    if (h === undefined) continue;
    const column = `column ${table}.${name}`;
    if (h.type !== w.type) {
      problems.push(
        `${column} has type ${h.type || "(none)"}, not ${
          w.type || "(none)"
        } ${at}`,
      );
    }
    if (h.notNull !== w.notNull) {
      problems.push(`${column} is ${h.notNull ? "" : "not "}NOT NULL ${at}`);
    }
    if (h.pk !== w.pk) {
      problems.push(
        `${column} is ${
          h.pk ? `column ${h.pk} of` : "not in"
        } the primary key; ` +
          `schema version ${version} has it ${
            w.pk ? `as column ${w.pk}` : "outside it"
          }`,
      );
    }
    if (h.hidden !== w.hidden) {
      problems.push(
        `${column} is ${
          h.hidden ? "hidden or generated" : "a plain column"
        } ${at}`,
      );
    }
    if (h.collation !== w.collation) {
      problems.push(
        `${column} has COLLATE ${h.collation}, not ${w.collation} ${at}: ` +
          "values that differ only in case or spacing would compare as equal or differ",
      );
    }
  }
  if (have.autoincrement !== want.autoincrement) {
    problems.push(
      `table ${table} ${
        have.autoincrement ? "has" : "lacks"
      } AUTOINCREMENT ${at}` +
        (want.autoincrement
          ? ": ids of deleted snapshots could be reused"
          : ""),
    );
  }
  for (const [name, expression] of want.checks) {
    const found = have.checks.get(name);
    if (found === undefined) {
      problems.push(
        `table ${table} lacks CHECK constraint ${JSON.stringify(name)} ${at}`,
      );
    } else if (found !== expression) {
      problems.push(
        `table ${table}'s CHECK constraint ${
          JSON.stringify(name)
        } differs ${at}`,
      );
    }
  }
  for (const name of have.checks.keys()) {
    if (!want.checks.has(name)) {
      problems.push(
        `table ${table} has a CHECK constraint ${
          JSON.stringify(name)
        } that protostore does ` +
          `not create ${at}`,
      );
    }
  }
  const cascade = want.foreignKeys.find((k) => k.includes("ON DELETE CASCADE"));
  if (cascade !== undefined && !have.foreignKeys.includes(cascade)) {
    problems.push(
      have.foreignKeys.includes(`${cascade} DEFERRABLE INITIALLY DEFERRED`)
        ? `table ${table} has its foreign key to resources DEFERRABLE INITIALLY DEFERRED: ` +
          "a snapshot of a missing resource would only fail at COMMIT, failing the whole transaction"
        : `table ${table} lacks its foreign key to resources ON DELETE CASCADE: ` +
          "deleting a resource would leave its history behind",
    );
  }
  for (const key of want.foreignKeys) {
    if (key !== cascade && !have.foreignKeys.includes(key)) {
      problems.push(`table ${table} lacks foreign key ${key} ${at}`);
    }
  }
  for (const key of have.foreignKeys) {
    if (!want.foreignKeys.includes(key)) {
      problems.push(
        `table ${table} has foreign key ${key}, which ${at} does not`,
      );
    }
  }
  for (const [name, index] of want.indexes) {
    const found = have.indexes.get(name);
    if (found === undefined) {
      problems.push(
        name.startsWith("(")
          ? `table ${table} lacks its key ${index} ${at}`
          : `index ${name} on ${table} is missing ${at}: queries rely on it`,
      );
    } else if (found !== index) {
      problems.push(
        `index ${name} on ${table} is ${found}, not ${index} ${at}`,
      );
    }
  }
  for (const [name, index] of have.indexes) {
    if (!want.indexes.has(name)) {
      problems.push(
        name.startsWith("(")
          ? `table ${table} has a key ${index} that ${at} does not have`
          : `index ${name} on ${table} was not created by protostore ${at}; drop it`,
      );
    }
  }
  return problems;
}

/** Everything {@linkcode compareTable} looks at, read from `db`. */
function describeTable(db: DatabaseSync, table: string): TableShape {
  const info = db.prepare(
    `SELECT wr, strict FROM pragma_table_list WHERE schema = 'main' AND name = ?`,
  ).get(table) as { wr: number; strict: number } | undefined;
  const { sql } = db.prepare(
    "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?",
  ).get(table) as { sql: string };
  const parsed = parseCreateTable(sql);
  const columns = new Map<string, ColumnShape>();
  const rows = db.prepare(
    `SELECT name, type, "notnull" AS nn, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid`,
  ).all(table) as {
    name: string;
    type: string;
    nn: number;
    pk: number;
    hidden: number;
  }[];
  for (const r of rows) {
    columns.set(r.name, {
      type: r.type.toUpperCase(),
      notNull: r.nn === 1,
      pk: r.pk,
      hidden: r.hidden,
      collation: parsed.collations.get(r.name.toLowerCase()) ?? "BINARY",
    });
  }
  const keys = db.prepare(
    `SELECT id, "table" AS parent, "from" AS child, "to" AS target, on_update, on_delete, "match" AS m
     FROM pragma_foreign_key_list(?) ORDER BY id, seq`,
  ).all(table) as {
    id: number;
    parent: string;
    child: string;
    target: string | null;
    on_update: string;
    on_delete: string;
    m: string;
  }[];
  const byId = new Map<number, typeof keys>();
  for (const k of keys) byId.set(k.id, [...(byId.get(k.id) ?? []), k]);
  const foreignKeys = [...byId.values()].map((parts) =>
    `(${parts.map((p) => p.child).join(", ")}) REFERENCES ${parts[0].parent}` +
    `(${parts.map((p) => p.target ?? "").join(", ")}) ON DELETE ${
      parts[0].on_delete
    }` +
    ` ON UPDATE ${parts[0].on_update}` +
    (parts[0].m === "NONE" ? "" : ` MATCH ${parts[0].m}`) +
    // pragma_foreign_key_list does not say when a key is checked; the table's SQL does.
    (parts.some((p) => parsed.deferredKeyColumns.has(p.child.toLowerCase()))
      ? " DEFERRABLE INITIALLY DEFERRED"
      : "")
  ).sort();
  const indexes = new Map<string, string>();
  const list = db.prepare(
    `SELECT name, "unique" AS u, origin, partial FROM pragma_index_list(?)`,
  ).all(table) as {
    name: string;
    u: number;
    origin: string;
    partial: number;
  }[];
  for (const ix of list) {
    const cols = db.prepare(
      `SELECT name, "desc" AS d, coll FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno`,
    ).all(ix.name) as { name: string | null; d: number; coll: string }[];
    const text = (ix.u ? "UNIQUE " : "") + (ix.partial ? "PARTIAL " : "") +
      "(" +
      cols.map((c) =>
        (c.name ?? "<expression>") + (c.d ? " DESC" : "") +
        (c.coll.toUpperCase() === "BINARY" ? "" : ` COLLATE ${c.coll}`)
      ).join(", ") + ")";
    // SQLite names its own (PRIMARY KEY / UNIQUE) indexes by position: key them by what
    // they hold instead, so their order in the table's SQL does not matter.
    indexes.set(
      ix.origin === "c"
        ? ix.name
        : `(${ix.origin === "pk" ? "primary key" : "unique"}) ${text}`,
      ix.origin === "c"
        ? text
        : `${ix.origin === "pk" ? "PRIMARY KEY" : "UNIQUE"} ${
          text.replace(/^UNIQUE /, "")
        }`,
    );
  }
  return {
    withoutRowid: info?.wr === 1,
    strict: info?.strict === 1,
    autoincrement: parsed.autoincrement,
    columns,
    checks: parsed.checks,
    foreignKeys,
    indexes,
  };
}

/** The expected schema at `version` per migration list, built once per process. */
const references = new WeakMap<readonly Migration[], Map<number, Schema>>();

function referenceSchema(
  migrations: readonly Migration[],
  version: number,
): Schema {
  let byVersion = references.get(migrations);
  if (!byVersion) references.set(migrations, byVersion = new Map());
  let schema = byVersion.get(version);
  if (schema) return schema;
  // Empty tables: the files run the same with foreign keys on.
  const db = openScratchDatabase(":memory:");
  try {
    for (const m of migrations) if (m.version <= version) db.exec(m.sql);
    const names = db.prepare(
      `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`,
    ).all() as { name: string }[];
    schema = new Map(names.map((n) => [n.name, describeTable(db, n.name)]));
  } finally {
    db.close();
  }
  byVersion.set(version, schema);
  return schema;
}

/**
 * Tables a pending file creates with CREATE TABLE IF NOT EXISTS (taking over one that
 * exists), mapped to that file's version.
 */
function adoptableTables(
  migrations: readonly Migration[],
  version: number,
): Map<string, number> {
  const adoptable = new Map<string, number>();
  for (const m of migrations) {
    if (m.version <= version) continue;
    for (const match of m.sql.matchAll(CREATE_IF_NOT_EXISTS)) {
      if (!adoptable.has(match[1])) adoptable.set(match[1], m.version);
    }
  }
  return adoptable;
}

const CREATE_IF_NOT_EXISTS = /CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)/gi;
const CREATE_TABLE = /CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)/gi;

/** Every table name any migration creates, including names used only mid-rebuild. */
function tablesCreatedBy(migrations: readonly Migration[]): Set<string> {
  const names = new Set<string>();
  for (const m of migrations) {
    for (const match of m.sql.matchAll(CREATE_TABLE)) names.add(match[1]);
  }
  return names;
}

/** What the pragmas do not tell about a table, read from its CREATE TABLE text. */
interface ParsedTable {
  /** Lower-cased column name -> upper-cased collation, for columns that declare one. */
  collations: Map<string, string>;
  autoincrement: boolean;
  checks: Map<string, string>;
  /** Lower-cased child columns of foreign keys declared DEFERRABLE INITIALLY DEFERRED. */
  deferredKeyColumns: Set<string>;
}

const TOKEN =
  /\s+|--[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[A-Za-z_][A-Za-z0-9_$]*|[0-9.]+|[\s\S]/g;

/** Tokens of SQL text: identifiers unquoted and lower-cased, literals kept, no spaces. */
function tokenize(sql: string): string[] {
  const tokens: string[] = [];
  for (const [t] of sql.matchAll(TOKEN)) {
    if (/^\s/.test(t) || t.startsWith("--") || t.startsWith("/*")) continue;
    if (/^["`[]/.test(t)) {
      tokens.push(t.slice(1, -1).replaceAll(t[0] + t[0], t[0]).toLowerCase());
    } else if (t.startsWith("'")) tokens.push(t);
    else tokens.push(t.toLowerCase());
  }
  return tokens;
}

const TABLE_CONSTRAINT = new Set([
  "constraint",
  "primary",
  "unique",
  "check",
  "foreign",
]);

/** The child columns of the foreign key in a column definition or table constraint. */
function foreignKeyChildren(part: string[]): string[] {
  const foreign = part.indexOf("foreign");
  if (foreign === -1) return [part[0]];
  const open = part.indexOf("(", foreign);
  const close = part.indexOf(")", open);
  return part.slice(open + 1, close).filter((t) => t !== ",");
}

function parseCreateTable(sql: string): ParsedTable {
  const tokens = tokenize(sql);
  const parsed: ParsedTable = {
    collations: new Map(),
    autoincrement: false,
    checks: new Map(),
    deferredKeyColumns: new Set(),
  };
  // Split the parenthesized body at top-level commas.
  const start = tokens.indexOf("(");
  const parts: string[][] = [];
  let depth = 0;
  let current: string[] = [];
  for (let i = start + 1; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === "(") depth++;
    if (t === ")" && depth-- === 0) break;
    if (t === "," && depth === 0) {
      parts.push(current);
      current = [];
    } else current.push(t);
  }
  parts.push(current);
  for (const part of parts) {
    const column = TABLE_CONSTRAINT.has(part[0]) ? undefined : part[0];
    for (let i = 0; i < part.length; i++) {
      if (part[i] === "autoincrement") parsed.autoincrement = true;
      if (
        part[i] === "collate" && column !== undefined && i + 1 < part.length
      ) {
        parsed.collations.set(
          column,
          part[i + 1].replace(/^'|'$/g, "").toUpperCase(),
        );
      }
      if (part[i] === "check" && part[i + 1] === "(") {
        let d = 0;
        let j = i + 1;
        for (; j < part.length; j++) {
          if (part[j] === "(") d++;
          if (part[j] === ")" && --d === 0) break;
        }
        const expression = part.slice(i + 2, j).join(" ");
        const name = part[i - 2] === "constraint"
          ? part[i - 1]
          : `(unnamed) ${expression}`;
        parsed.checks.set(name, expression);
      }
      // Only this form defers the check to COMMIT (NOT DEFERRABLE INITIALLY DEFERRED
      // and plain DEFERRABLE stay immediate).
      if (
        part[i] === "deferrable" && part[i - 1] !== "not" &&
        part[i + 1] === "initially" && part[i + 2] === "deferred"
      ) {
        for (const child of foreignKeyChildren(part)) {
          parsed.deferredKeyColumns.add(child);
        }
      }
    }
  }
  return parsed;
}
