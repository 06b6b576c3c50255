/**
 * The schema check on crafted files: another application's database is refused, and a
 * file whose tables differ from protostore's in anything that matters for correctness
 * (types, collations, keys, NOT NULL, foreign keys and their actions, indexes,
 * AUTOINCREMENT, WITHOUT ROWID, the time checks) is refused before any write, at the
 * current version and with migrations pending; the file stays byte-identical.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import {
  migrate,
  MigrationError,
  migrationStatus,
  openStore,
} from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { goSchemaSql, writeGoDb } from "../helpers/go_store.ts";
import { runCli } from "../helpers/cli.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

function digest(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

function sideFiles(path: string): string[] {
  return ["-wal", "-shm", "-journal"].filter((suffix) => {
    try {
      Deno.statSync(path + suffix);
      return true;
    } catch {
      return false;
    }
  });
}

/** Every way to open or migrate `path` refuses with `message`, leaving it untouched. */
function assertRefused(path: string, message: RegExp): void {
  const before = digest(path);
  const attempts: [string, () => unknown][] = [
    ["openStore", () => openStore(path).close()],
    ["openStore readOnly", () => openStore(path, { readOnly: true }).close()],
    ["migrate", () => migrate(path)],
    ["migrate dryRun", () => migrate(path, { dryRun: true })],
  ];
  for (const [what, attempt] of attempts) {
    assert.throws(attempt, (error: Error) => {
      assert.ok(error instanceof MigrationError, `${what}: ${error}`);
      assert.match(error.message, message, what);
      return true;
    });
    assert.equal(digest(path), before, `${what} changed the file`);
    assert.deepEqual(sideFiles(path), [], `${what} left side files`);
  }
  assert.ok(
    migrationStatus(path).problems.some((p) => message.test(p)),
    "migrationStatus reports it",
  );
}

// --- Another application's database (issue 9, item 4) ---------------------------------

Deno.test("another application's non-empty database is refused untouched, naming what it holds", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/crm.sqlite`;
    const db = new DatabaseSync(path);
    db.exec(
      `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
      CREATE INDEX customers_name ON customers(name);
      INSERT INTO customers (name) VALUES ('Ada'), ('Grace');`,
    );
    db.close();
    assertRefused(
      path,
      /not written by protostore or the Go store.*table customers/,
    );
    const before = digest(path);
    const cli = await runCli([
      "import-badger",
      "tests/fixtures/badger/backup.bak",
      "--db",
      path,
    ]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /customers/);
    assert.equal(digest(path), before, "import-badger changed the file");
    assert.deepEqual(sideFiles(path), []);
  });
});

Deno.test("an empty file, a new path and a file with the user's own table beside protostore's open", () =>
  withTempDir((dir) => {
    const empty = `${dir}/empty.sqlite`;
    Deno.writeFileSync(empty, new Uint8Array());
    assert.ok(migrate(empty).applied.length > 0);
    assert.ok(migrate(`${dir}/new/db.sqlite`).applied.length > 0);
    const mine = `${dir}/mine.sqlite`;
    openStore(mine).close();
    const db = new DatabaseSync(mine);
    db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
    db.close();
    using store = openStore(mine);
    store.saveResource(SkillSchema, "skill", "s1", create(SkillSchema, {}));
  }));

// --- Crafted shapes (issue 9, item 6) -------------------------------------------------

/** Rebuilds `table` from its own CREATE TABLE text after `edit`, keeping rows and indexes. */
function rebuild(
  db: DatabaseSync,
  table: string,
  edit: (sql: string) => string,
): void {
  const { sql } = db.prepare(
    "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?",
  ).get(table) as { sql: string };
  const edited = edit(sql);
  assert.notEqual(edited, sql, `the edit of ${table} changed nothing`);
  const indexes = (db.prepare(
    "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
  ).all(table) as { sql: string }[]).map((r) => r.sql);
  db.exec("PRAGMA foreign_keys = OFF");
  db.exec(
    edited.replace(/^CREATE TABLE ("?)\w+\1/, "CREATE TABLE crafted_new"),
  );
  db.exec(`INSERT INTO crafted_new SELECT * FROM ${table}`);
  db.exec(`DROP TABLE ${table}; ALTER TABLE crafted_new RENAME TO ${table}`);
  for (const index of indexes) db.exec(index);
}

/** A current protostore file with one resource and one snapshot, edited by `craft`. */
function currentFile(path: string, craft: (db: DatabaseSync) => void): void {
  {
    using store = openStore(path);
    const s = create(SkillSchema, { name: "lint" });
    store.saveResource(SkillSchema, "skill", "lint", s);
    store.saveAudit(SkillSchema, "skill", "lint", s, { tag: "v1" });
  }
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = DELETE");
  craft(db);
  db.close();
}

/** A Go v2 file (migrations pending) with one resource, edited by `sql`. */
function goFile(path: string, edit: (ddl: string) => string): void {
  const db = new DatabaseSync(path);
  const ddl = goSchemaSql(2);
  const edited = edit(ddl);
  assert.notEqual(edited, ddl);
  db.exec(edited);
  db.exec(
    "INSERT INTO resources (kind, id, data, updated_at) VALUES ('skill', 'lint', x'0a046c696e74', '2026-01-25 10:00:00')",
  );
  db.close();
}

const CHECK_CONSTRAINT =
  /,\s*CONSTRAINT "[^"]*"\s*CHECK \(substr\([^)]*\) = 'T'\)/;

const CURRENT: [string, (db: DatabaseSync) => void, RegExp][] = [
  [
    "resources.id COLLATE NOCASE (Lint and lint would be one resource)",
    (db) =>
      rebuild(
        db,
        "resources",
        (s) => s.replace("id TEXT NOT NULL", "id TEXT NOT NULL COLLATE NOCASE"),
      ),
    /column resources\.id has COLLATE NOCASE, not BINARY/,
  ],
  [
    "resource_audit.tag COLLATE NOCASE",
    (db) =>
      rebuild(
        db,
        "resource_audit",
        (s) => s.replace("tag TEXT,", "tag TEXT COLLATE NOCASE,"),
      ),
    /column resource_audit\.tag has COLLATE NOCASE/,
  ],
  [
    "resources.data as TEXT",
    (db) =>
      rebuild(
        db,
        "resources",
        (s) => s.replace("data BLOB NOT NULL", "data TEXT NOT NULL"),
      ),
    /column resources\.data has type TEXT, not BLOB/,
  ],
  [
    "resource_audit.kind without NOT NULL",
    (db) =>
      rebuild(
        db,
        "resource_audit",
        (s) => s.replace("kind TEXT NOT NULL", "kind TEXT"),
      ),
    /column resource_audit\.kind is not NOT NULL/,
  ],
  [
    "resources keyed by (id, kind)",
    (db) =>
      rebuild(
        db,
        "resources",
        (s) => s.replace("PRIMARY KEY (kind, id)", "PRIMARY KEY (id, kind)"),
      ),
    /column resources\.kind is column 2 of the primary key/,
  ],
  [
    "message_schemas without UNIQUE (type_name, digest)",
    (db) =>
      rebuild(
        db,
        "message_schemas",
        (s) => s.replace(/,\s*UNIQUE \(type_name, digest\)/, ""),
      ),
    /table message_schemas lacks its key UNIQUE \(type_name, digest\)/,
  ],
  [
    "an extra UNIQUE index on resources(kind)",
    (db) => db.exec("CREATE UNIQUE INDEX one_per_kind ON resources(kind)"),
    /index one_per_kind on resources was not created by protostore/,
  ],
  [
    "the audit foreign key ON DELETE SET NULL",
    (db) =>
      rebuild(
        db,
        "resource_audit",
        (s) => s.replace("ON DELETE CASCADE", "ON DELETE SET NULL"),
      ),
    /lacks its foreign key to resources ON DELETE CASCADE/,
  ],
  [
    "the audit foreign key DEFERRABLE INITIALLY DEFERRED",
    (db) =>
      rebuild(
        db,
        "resource_audit",
        (s) =>
          s.replace(
            "ON DELETE CASCADE",
            "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
          ),
      ),
    /foreign key to resources DEFERRABLE INITIALLY DEFERRED: a snapshot of a missing resource would only fail at COMMIT/,
  ],
  [
    "the audit foreign key with ON UPDATE CASCADE added",
    (db) =>
      rebuild(
        db,
        "resource_audit",
        (s) =>
          s.replace("ON DELETE CASCADE", "ON DELETE CASCADE ON UPDATE CASCADE"),
      ),
    /ON UPDATE CASCADE/,
  ],
  [
    "idx_audit_tag dropped",
    (db) => db.exec("DROP INDEX idx_audit_tag"),
    /index idx_audit_tag on resource_audit is missing.*queries rely on it/,
  ],
  [
    "idx_audit_hash without archived_at",
    (db) =>
      db.exec(`DROP INDEX idx_audit_hash;
        CREATE INDEX idx_audit_hash ON resource_audit(kind, resource_id, version_hash)`),
    /index idx_audit_hash on resource_audit is \(kind, resource_id, version_hash\), not/,
  ],
  [
    "resource_audit without AUTOINCREMENT (snapshot ids could be reused)",
    (db) =>
      rebuild(db, "resource_audit", (s) => s.replace(" AUTOINCREMENT", "")),
    /resource_audit lacks AUTOINCREMENT/,
  ],
  [
    "resources without its time CHECK (the Go daemon could write again)",
    (db) => rebuild(db, "resources", (s) => s.replace(CHECK_CONSTRAINT, "")),
    /table resources lacks CHECK constraint/,
  ],
  [
    "resources as a rowid table",
    (db) => rebuild(db, "resources", (s) => s.replace(" WITHOUT ROWID", "")),
    /table resources is not WITHOUT ROWID/,
  ],
];

for (const [name, craft, message] of CURRENT) {
  Deno.test(`a current file with ${name} is refused before any write`, () =>
    withTempDir((dir) => {
      const path = `${dir}/crafted.sqlite`;
      currentFile(path, craft);
      assertRefused(path, message);
    }));
}

Deno.test("an audit foreign key that SQLite still checks at once (NOT DEFERRABLE INITIALLY DEFERRED) is accepted", () =>
  withTempDir((dir) => {
    const path = `${dir}/immediate.sqlite`;
    currentFile(path, (db) =>
      rebuild(db, "resource_audit", (s) =>
        s.replace(
          "ON DELETE CASCADE",
          "ON DELETE CASCADE NOT DEFERRABLE INITIALLY DEFERRED",
        )));
    using store = openStore(path);
    assert.equal(
      store.listAuditHistory(SkillSchema, "skill", "lint").length,
      1,
    );
  }));

const GO: [string, (ddl: string) => string, RegExp][] = [
  [
    "resources.id COLLATE NOCASE",
    (ddl) => ddl.replace("id TEXT NOT NULL", "id TEXT NOT NULL COLLATE NOCASE"),
    /column resources\.id has COLLATE NOCASE.*schema version 2/,
  ],
  [
    "resource_audit.data as TEXT",
    (ddl) =>
      ddl.replace(
        "resource_id TEXT NOT NULL, data BLOB",
        "resource_id TEXT NOT NULL, data TEXT",
      ),
    /column resource_audit\.data has type TEXT, not BLOB/,
  ],
  [
    "idx_audit_tag on other columns",
    (ddl) =>
      ddl.replace("(kind, resource_id, tag, archived_at DESC)", "(kind, tag)"),
    /index idx_audit_tag on resource_audit is \(kind, tag\)/,
  ],
];

for (const [name, edit, message] of GO) {
  Deno.test(`a Go v2 file with ${name} is refused before migrating`, () =>
    withTempDir((dir) => {
      const path = `${dir}/crafted-go.sqlite`;
      goFile(path, edit);
      assertRefused(path, message);
    }));
}

Deno.test("a Go v1 file whose resources has another shape is refused before 0002 runs", () =>
  withTempDir((dir) => {
    const path = `${dir}/go-v1.sqlite`;
    writeGoDb(path, { version: 1 });
    const db = new DatabaseSync(path);
    rebuild(
      db,
      "resources",
      (s) =>
        s.replace("kind TEXT NOT NULL", "kind TEXT NOT NULL COLLATE RTRIM"),
    );
    db.close();
    assertRefused(
      path,
      /column resources\.kind has COLLATE RTRIM.*schema version 1/,
    );
  }));
