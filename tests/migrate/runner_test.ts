/**
 * The migration runner on real SQLite files: order and records, shipped files, Go-written
 * v1/v2 databases, refusals that leave the file byte-identical, rollback of failing files,
 * foreign-keys-off rebuilds, dry runs, status, and processes migrating and writing at once.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  downgrade,
  migrate,
  MigrationError,
  migrationStatus,
  openStore,
  StoreError,
} from "../../mod.ts";
import { openConnection } from "../../src/sqlite/connection.ts";
import { applyMigrations } from "../../src/migrate/runner.ts";
import { planMigrations } from "../../src/migrate/plan.ts";
import {
  defineMigration,
  type Migration,
  MIGRATIONS,
} from "../../src/migrate/files.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { assertThrows } from "../helpers/assert.ts";
import { goRowWriter, openGoDb } from "../helpers/go_store.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { damageTable, writeRows } from "../helpers/rows.ts";

const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);
const ROOT = new URL("../../", import.meta.url).pathname;
const CHILD =
  new URL("../helpers/concurrent_child.ts", import.meta.url).pathname;
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** The files a Go v1 / v2 database still needs. */
const AFTER_GO_V1 = MIGRATIONS.slice(1).map((m) => m.name);
const AFTER_GO_V2 = MIGRATIONS.slice(2).map((m) => m.name);
/** The number of a test's own file after the shipped ones. */
const NEXT = String(MIGRATIONS.at(-1)!.version + 1).padStart(4, "0");

/** Protobuf bytes of a Skill named `name`, as the Go store would have stored them. */
function skillBytes(name: string): Uint8Array {
  return toBinary(SkillSchema, create(SkillSchema, { name }));
}

/**
 * A database as the Go store left it at schema version 1 or 2 (no rows of data yet):
 * version 1 applied at a known time, version 2 at `datetime('now')`.
 */
function goDatabase(path: string, version: 1 | 2): DatabaseSync {
  return openGoDb(path, { version, appliedAt: ["2025-06-01 12:00:00", null] });
}

/** Go's write: `INSERT OR REPLACE` with a `datetime('now')`-style text timestamp. */
function goSave(
  db: DatabaseSync,
  kind: string,
  id: string,
  name: string,
  updatedAt = "2026-01-25 10:00:00",
): void {
  goRowWriter(db).resource({ kind, id, data: skillBytes(name), updatedAt });
}

function rows<T>(path: string, sql: string, ...params: string[]): T[] {
  const db = new DatabaseSync(path);
  try {
    // Plain objects, so deepEqual compares them with literals.
    return db.prepare(sql).all(...params).map((row) => ({ ...row })) as T[];
  } finally {
    db.close();
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The names in `dir`, sorted, to check that nothing (e.g. `-wal`, `-journal`) was left. */
function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/**
 * Asserts that `dir` holds `name` and at most SQLite's WAL side files, with an empty
 * `-wal`: a read-only connection to a WAL database creates `-wal` and `-shm` and cannot
 * remove them on close, but writes nothing into them.
 */
function assertSideFilesEmpty(dir: string, name: string): void {
  const extra = listDir(dir).filter((n) => n !== name);
  for (const file of extra) {
    assert.ok(
      [`${name}-wal`, `${name}-shm`].includes(file),
      `unexpected ${file}`,
    );
  }
  if (extra.includes(`${name}-wal`)) {
    assert.equal(Deno.statSync(`${dir}/${name}-wal`).size, 0, "-wal is empty");
  }
}

/** Applies `migrations` to the file at `path` on a fresh connection. */
function applyTo(path: string, migrations: readonly Migration[]) {
  const db = openConnection(path);
  try {
    return applyMigrations(db, migrations).map((m) => m.name);
  } finally {
    db.close();
  }
}

// --- Order, records, shipping ----------------------------------------------------------

Deno.test("migrations apply in order, each recorded with name, checksum and time", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const result = migrate(path);
    assert.equal(result.dryRun, false);
    assert.deepEqual(
      result.applied.map((a) => a.name),
      MIGRATIONS.map((m) => m.name),
    );
    assert.equal(result.schemaVersion, MIGRATIONS.at(-1)!.version);
    const recorded = rows<
      { version: number; name: string; checksum: string; applied_at: string }
    >(
      path,
      "SELECT version, name, checksum, applied_at FROM schema_version ORDER BY version",
    );
    assert.deepEqual(
      recorded.map((r) => r.version),
      MIGRATIONS.map((m) => m.version),
    );
    for (const [i, row] of recorded.entries()) {
      const file = Deno.readFileSync(new URL(row.name, MIGRATIONS_DIR));
      assert.equal(row.name, MIGRATIONS[i].name);
      assert.equal(row.checksum, sha256(file), row.name);
      assert.match(row.applied_at, ISO_MS, row.name);
      if (i > 0) assert.ok(row.applied_at >= recorded[i - 1].applied_at);
    }
  }));

Deno.test("running migrations again applies nothing and changes nothing", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    migrate(path);
    const before = rows(path, "SELECT * FROM schema_version ORDER BY version");
    const bytes = Deno.readFileSync(path);
    const again = migrate(path);
    assert.deepEqual(again.applied, []);
    openStore(path).close();
    assert.deepEqual(applyTo(path, MIGRATIONS), []);
    assert.deepEqual(
      rows(path, "SELECT * FROM schema_version ORDER BY version"),
      before,
    );
    assert.deepEqual(Deno.readFileSync(path), bytes);
  }));

Deno.test("every file in migrations/ is shipped in the bundled list, byte for byte", () => {
  // migrations/postgres/ holds the PostgreSQL backend's files (tests/postgres/).
  const files = [...Deno.readDirSync(MIGRATIONS_DIR)].filter((e) => e.isFile)
    .map((e) => e.name).sort();
  assert.ok(files.length > 0);
  for (const name of files) {
    assert.match(
      name,
      /^\d{4}_[a-z0-9_]+\.sql$/,
      `${name} is not NNNN_description.sql`,
    );
  }
  assert.deepEqual(
    MIGRATIONS.map((m) => m.name),
    files,
    "src/migrations.ts must import every file of migrations/ (text import), in order",
  );
  for (const [i, m] of MIGRATIONS.entries()) {
    const bytes = Deno.readFileSync(new URL(m.name, MIGRATIONS_DIR));
    assert.equal(m.sql, new TextDecoder().decode(bytes), m.name);
    assert.equal(m.checksum, sha256(bytes), m.name);
    assert.equal(
      m.version,
      i + 1,
      `${m.name}: versions are consecutive from 1`,
    );
  }
});

// --- Go-written databases --------------------------------------------------------------

Deno.test("a Go v1 database continues with 0002 and 0003: legacy audit rows move exactly", () =>
  withTempDir((dir) => {
    const path = `${dir}/go-v1.sqlite`;
    const db = goDatabase(path, 1);
    goSave(db, "skill", "s1", "s1 current");
    goSave(db, "skill", "team/a/s2", "s2 current");
    goSave(db, "agent", "a1", "a1 current");
    // Legacy snapshots: `<kind>_audit/<resourceId>/<unixNanos>`.
    goSave(db, "skill", "skill_audit/s1/1700000300123456789", "s1 v2");
    goSave(db, "skill", "skill_audit/s1/1700000000999999999", "s1 v1");
    goSave(db, "skill", "skill_audit/s1/999", "s1 v0");
    goSave(db, "skill", "skill_audit/team/a/s2/1700000100000000001", "s2 v1");
    goSave(db, "skill", "skill_audit/gone/1700000200000000000", "gone v1");
    goSave(db, "agent", "agent_audit/a1/1700000000000000000", "a1 v1");
    // Look-alikes that are not legacy snapshots and stay resources.
    const lookAlikes: [string, string][] = [
      ["skill", "xaudit/s1/1700000000000000000"],
      ["skill", "skillXaudit/s1/1700000000000000000"],
      ["skill", "skill_audit/x/12a"],
      ["skill", "skill_audit/s1/"],
      ["skill", "skill_audit//1700000000000000000"],
      ["skill", "skill_audit/s1/12345678901234567890"],
      ["skill", "agent_audit/a1/1700000000000000000"],
      ["agent", "skill_audit/s1/1700000000000000000"],
      ["skill", "prefix/skill_audit/s1/1700000000000000000"],
    ];
    for (const [kind, id] of lookAlikes) {
      goSave(db, kind, id, `look-alike ${id}`);
    }
    db.close();

    using store = openStore(path);
    const history = store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(
      history.map((
        e,
      ) => [e.message.name, e.archivedAt.toISOString(), e.versionHash, e.tag]),
      [
        ["s1 v2", "2023-11-14T22:18:20.123Z", undefined, undefined],
        ["s1 v1", "2023-11-14T22:13:20.999Z", undefined, undefined],
        ["s1 v0", "1970-01-01T00:00:00.000Z", undefined, undefined],
      ],
    );
    assert.deepEqual(
      store.listAuditHistory(SkillSchema, "skill", "team/a/s2").map((e) => [
        e.message.name,
        e.archivedAt.toISOString(),
      ]),
      [["s2 v1", "2023-11-14T22:15:00.000Z"]],
    );
    assert.deepEqual(
      store.listAuditHistory(SkillSchema, "agent", "a1").map((e) =>
        e.message.name
      ),
      ["a1 v1"],
    );
    // The stored text itself, to the millisecond, truncated (not rounded).
    assert.deepEqual(
      rows<{ archived_at: string }>(
        path,
        "SELECT archived_at FROM resource_audit WHERE resource_id = 's1' ORDER BY id",
      ).map((r) => r.archived_at).sort(),
      [
        "1970-01-01T00:00:00.000Z",
        "2023-11-14T22:13:20.999Z",
        "2023-11-14T22:18:20.123Z",
      ],
    );
    // The snapshot of a resource that no longer exists is kept, not as a resource.
    assert.deepEqual(
      rows(
        path,
        "SELECT kind, resource_id, archived_at FROM resource_audit_orphans",
      ),
      [{
        kind: "skill",
        resource_id: "gone",
        archived_at: "2023-11-14T22:16:40.000Z",
      }],
    );
    assertThrows(
      () => store.getResource(SkillSchema, "skill", "gone"),
      StoreError,
    );
    // What remains as resources: the real ones and every look-alike.
    const remaining = rows<{ kind: string; id: string }>(
      path,
      "SELECT kind, id FROM resources ORDER BY kind, id",
    ).map((r) => `${r.kind} ${r.id}`);
    assert.deepEqual(
      remaining,
      [
        "agent a1",
        ...lookAlikes.map(([kind, id]) => `${kind} ${id}`),
        "skill s1",
        "skill team/a/s2",
      ].sort(),
    );
    for (const [kind, id] of lookAlikes) {
      assert.equal(
        store.getResource(SkillSchema, kind, id).name,
        `look-alike ${id}`,
      );
    }
    assert.deepEqual(
      rows(path, "SELECT DISTINCT updated_at FROM resources"),
      [{ updated_at: "2026-01-25T10:00:00.000Z" }],
    );
    // Go's version-1 row is kept (its time too) and named; 0002 and 0003 are recorded.
    const status = migrationStatus(path);
    assert.deepEqual(status.pending, []);
    assert.deepEqual(
      status.applied.map((a) => [a.version, a.name, a.checksum === null]),
      MIGRATIONS.map((m) => [m.version, m.name, m.version === 1]),
    );
    assert.equal(
      status.applied[0].appliedAt?.toISOString(),
      "2025-06-01T12:00:00.000Z",
    );
    // Cascade now works; the orphan stays.
    assert.equal(store.deleteResource("skill", "s1"), true);
    assert.deepEqual(store.listAuditHistory(SkillSchema, "skill", "s1"), []);
    assert.equal(rows(path, "SELECT * FROM resource_audit_orphans").length, 1);
  }));

Deno.test("a Go v2 database continues with 0003: seconds become ms, order kept, orphans kept", () =>
  withTempDir((dir) => {
    const path = `${dir}/go-v2.sqlite`;
    const db = goDatabase(path, 2);
    goSave(db, "skill", "s1", "s1 current");
    db.prepare(
      "INSERT OR REPLACE INTO resources (kind, id, data) VALUES (?, ?, ?)",
    )
      .run("skill", "s2", skillBytes("s2 current")); // datetime('now') default
    const audit = db.prepare(
      `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    // Insert order differs from time order; two share a second.
    audit.run(
      "skill",
      "s1",
      skillBytes("v1"),
      "2026-01-25 09:00:00",
      "h1",
      "stable",
    );
    audit.run("skill", "s1", skillBytes("v2"), "2026-01-25 09:00:00", "h2", "");
    audit.run(
      "skill",
      "s1",
      skillBytes("v3"),
      "2026-01-25 09:30:00",
      "",
      "stable",
    );
    audit.run(
      "skill",
      "s1",
      skillBytes("v0"),
      "2026-01-25 08:00:00",
      "h0",
      "old",
    );
    audit.run(
      "skill",
      "gone",
      skillBytes("g1"),
      "2026-01-25 07:00:00",
      "hg",
      "tg",
    );
    db.prepare(
      "INSERT INTO resource_audit (kind, resource_id, data) VALUES (?, ?, ?)",
    ).run("skill", "s2", skillBytes("s2 v1")); // datetime('now') default
    // A deleted last snapshot: its id must never be handed out again.
    audit.run(
      "skill",
      "s2",
      skillBytes("deleted"),
      "2026-01-25 09:00:00",
      null,
      null,
    );
    db.exec("DELETE FROM resource_audit WHERE id = 7");
    db.close();

    const result = migrate(path);
    assert.deepEqual(result.applied.map((a) => a.name), AFTER_GO_V2);

    using store = openStore(path);
    const history = store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(
      history.map((
        e,
      ) => [
        e.id,
        e.message.name,
        e.archivedAt.toISOString(),
        e.versionHash,
        e.tag,
      ]),
      [
        [3, "v3", "2026-01-25T09:30:00.000Z", undefined, "stable"],
        [2, "v2", "2026-01-25T09:00:00.000Z", "h2", undefined],
        [1, "v1", "2026-01-25T09:00:00.000Z", "h1", "stable"],
        [4, "v0", "2026-01-25T08:00:00.000Z", "h0", "old"],
      ],
    );
    assert.equal(
      store.getAuditByTag(SkillSchema, "skill", "s1", "stable").name,
      "v3",
    );
    assert.equal(
      store.getAuditByHash(SkillSchema, "skill", "s1", "h1").name,
      "v1",
    );
    assert.deepEqual(
      rows(
        path,
        "SELECT id, kind, resource_id, archived_at, version_hash, tag FROM resource_audit_orphans",
      ),
      [{
        id: 5,
        kind: "skill",
        resource_id: "gone",
        archived_at: "2026-01-25T07:00:00.000Z",
        version_hash: "hg",
        tag: "tg",
      }],
    );
    assert.deepEqual(
      rows(path, "SELECT id FROM resource_audit WHERE resource_id = 'gone'"),
      [],
    );
    // Every stored time is ISO-8601 with milliseconds, including datetime('now') defaults.
    const times = rows<{ t: string }>(
      path,
      `SELECT updated_at AS t FROM resources UNION ALL SELECT archived_at FROM resource_audit
       UNION ALL SELECT archived_at FROM resource_audit_orphans`,
    );
    assert.equal(times.length, 2 + 5 + 1);
    for (const { t } of times) assert.match(t, ISO_MS);
    // New snapshots get fresh ids, past both the orphans and the deleted last row.
    const entry = store.saveAudit(
      SkillSchema,
      "skill",
      "s1",
      create(SkillSchema, { name: "v4" }),
    );
    assert.ok(entry.id > 7, `new id ${entry.id}`);
    // Cascade works on the migrated table; the orphan stays.
    assert.equal(store.deleteResource("skill", "s1"), true);
    assert.deepEqual(store.listAuditHistory(SkillSchema, "skill", "s1"), []);
    assert.equal(store.listAuditHistory(SkillSchema, "skill", "s2").length, 1);
    assert.equal(rows(path, "SELECT * FROM resource_audit_orphans").length, 1);
    assert.deepEqual(rows(path, "PRAGMA foreign_key_check"), []);
    assert.deepEqual(rows(path, "PRAGMA integrity_check"), [{
      integrity_check: "ok",
    }]);
  }));

Deno.test("a Go database opened read-only or without migrate is refused and left untouched", () =>
  withTempDir((dir) => {
    const path = `${dir}/go-v2.sqlite`;
    const db = goDatabase(path, 2);
    goSave(db, "skill", "s1", "s1");
    db.close();
    const bytes = Deno.readFileSync(path);
    assertThrows(
      () => openStore(path, { readOnly: true }),
      MigrationError,
      /0003/,
      /migrate/,
    );
    assertThrows(
      () => openStore(path, { migrate: false }),
      MigrationError,
      /migrate/,
    );
    assert.deepEqual(Deno.readFileSync(path), bytes);
    assert.deepEqual(listDir(dir), ["go-v2.sqlite"]);
  }));

// --- Refusals --------------------------------------------------------------------------

Deno.test("an applied migration that was edited is refused by name; the file stays identical", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    migrate(path);
    const db = new DatabaseSync(path);
    db.exec(
      "UPDATE schema_version SET checksum = 'deadbeef' || substr(checksum, 9) WHERE version = 3",
    );
    db.close();
    const bytes = Deno.readFileSync(path);
    const refusals: [string, () => unknown][] = [
      ["openStore", () => openStore(path)],
      ["openStore readOnly", () => openStore(path, { readOnly: true })],
      ["migrate", () => migrate(path)],
      ["migrate dry run", () => migrate(path, { dryRun: true })],
    ];
    for (const [name, refuse] of refusals) {
      assert.throws(refuse, (error: unknown) => {
        assert.ok(error instanceof MigrationError, `${name}: ${String(error)}`);
        assert.match(error.message, /0003_cascade_ms_types\.sql/, name);
        assert.match(error.message, /edited/, name);
        return true;
      });
    }
    const status = migrationStatus(path);
    assert.equal(status.problems.length, 1);
    assert.match(status.problems[0], /0003_cascade_ms_types\.sql/);
    assert.deepEqual(Deno.readFileSync(path), bytes);
    assertSideFilesEmpty(dir, "db.sqlite");
  }));

Deno.test("editing a file of a custom migration list is refused by name before any write", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const first = defineMigration(
      "0001_things.sql",
      "CREATE TABLE things (x);",
    );
    const second = defineMigration(
      "0002_more_things.sql",
      "INSERT INTO things VALUES (1);",
    );
    const third = defineMigration(
      "0003_later.sql",
      "INSERT INTO things VALUES (3);",
    );
    assert.deepEqual(applyTo(path, [first, second]), [first.name, second.name]);
    const bytes = Deno.readFileSync(path);
    const edited = defineMigration(second.name, second.sql.replace("1", "2"));
    assertThrows(
      () => applyTo(path, [first, edited, third]),
      MigrationError,
      /0002_more_things\.sql/,
      /edited/,
    );
    const db = openConnection(path, { readOnly: true });
    try {
      const plan = planMigrations(db, [first, edited, third]);
      assert.equal(plan.problems.length, 1);
      assert.deepEqual(plan.pending.map((p) => p.name), ["0003_later.sql"]);
    } finally {
      db.close();
    }
    assert.deepEqual(Deno.readFileSync(path), bytes);
    // With the original file back, the pending one applies.
    assert.deepEqual(applyTo(path, [first, second, third]), [third.name]);
  }));

Deno.test("a database with a version this code does not know is refused; file identical", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    migrate(path);
    const db = new DatabaseSync(path);
    db.exec(
      `INSERT INTO schema_version (version, applied_at, name, checksum)
       VALUES (99, '2030-01-01T00:00:00.000Z', '0099_future.sql', 'abc')`,
    );
    db.close();
    const bytes = Deno.readFileSync(path);
    const refusals: [string, () => unknown][] = [
      ["openStore", () => openStore(path)],
      ["openStore readOnly", () => openStore(path, { readOnly: true })],
      ["openStore migrate:false", () => openStore(path, { migrate: false })],
      ["migrate", () => migrate(path)],
      ["migrate dry run", () => migrate(path, { dryRun: true })],
    ];
    for (const [name, refuse] of refusals) {
      assert.throws(refuse, (error: unknown) => {
        assert.ok(error instanceof MigrationError, `${name}: ${String(error)}`);
        assert.match(error.message, /\b99\b/, name);
        assert.match(error.message, /newer/, name);
        return true;
      });
    }
    assert.match(migrationStatus(path).problems.join("\n"), /99/);
    assert.deepEqual(Deno.readFileSync(path), bytes);
    assertSideFilesEmpty(dir, "db.sqlite");
  }));

Deno.test("a failing migration rolls back completely; the error names the file and SQL error", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const good = defineMigration(
      "0001_things.sql",
      "CREATE TABLE things (x); INSERT INTO things VALUES (1);",
    );
    const bad = defineMigration(
      "0002_broken.sql",
      `CREATE TABLE other (y);
       INSERT INTO other VALUES (1);
       UPDATE things SET x = 2;
       INSERT INTO no_such_table VALUES (3);`,
    );
    assert.throws(
      () => applyTo(path, [good, bad]),
      (error: unknown) =>
        error instanceof MigrationError && error.file === "0002_broken.sql" &&
        /no such table: no_such_table/.test(error.message),
    );
    // 0001 committed on its own; nothing of 0002 is left, not even its first statements.
    assert.deepEqual(rows(path, "SELECT x FROM things"), [{ x: 1 }]);
    assert.deepEqual(
      rows(path, "SELECT name FROM sqlite_schema WHERE name = 'other'"),
      [],
    );
    assert.deepEqual(
      rows<{ version: number }>(path, "SELECT version FROM schema_version").map(
        (r) => r.version,
      ),
      [1],
    );
    // The first file failing leaves an empty database (no schema_version either).
    const fresh = `${dir}/fresh.sqlite`;
    assert.throws(
      () => applyTo(fresh, [bad]),
      (error: unknown) =>
        error instanceof MigrationError && error.file === "0002_broken.sql",
    );
    assert.deepEqual(rows(fresh, "SELECT name FROM sqlite_schema"), []);
    // Fixed, it applies.
    const fixed = defineMigration(bad.name, "CREATE TABLE other (y);");
    assert.deepEqual(applyTo(path, [good, fixed]), [fixed.name]);
  }));

// --- Foreign keys and table rebuilds ---------------------------------------------------

/** A file rebuilding the parent table `resources`, as a schema change would. */
const REBUILD_RESOURCES =
  `CREATE TABLE resources_new (kind TEXT NOT NULL, id TEXT NOT NULL,
  data BLOB NOT NULL, updated_at TEXT NOT NULL,
  schema_id INTEGER REFERENCES message_schemas(id), PRIMARY KEY (kind, id)) WITHOUT ROWID;
INSERT INTO resources_new (kind, id, data, updated_at, schema_id)
  SELECT kind, id, data, updated_at, schema_id FROM resources;
DROP TABLE resources;
ALTER TABLE resources_new RENAME TO resources;`;

/** A migrated store with two resources and three snapshots. */
function storeWithHistory(path: string): void {
  using store = openStore(path);
  const s = create(SkillSchema, { name: "s" });
  store.saveResource(SkillSchema, "skill", "s1", s);
  store.saveResource(SkillSchema, "skill", "s2", s);
  store.saveAudit(SkillSchema, "skill", "s1", s);
  store.saveAudit(SkillSchema, "skill", "s1", s);
  store.saveAudit(SkillSchema, "skill", "s2", s);
}

Deno.test("a foreign-keys-off rebuild of resources keeps every audit row", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    storeWithHistory(path);
    const rebuild = defineMigration(
      `${NEXT}_rebuild_resources.sql`,
      `-- protostore: foreign-keys-off\n${REBUILD_RESOURCES}`,
    );
    assert.equal(rebuild.foreignKeysOff, true);
    const db = openConnection(path);
    try {
      assert.deepEqual(
        applyMigrations(db, [...MIGRATIONS, rebuild]).map((m) => m.name),
        [rebuild.name],
      );
      const count = db.prepare("SELECT count(*) AS n FROM resource_audit")
        .get() as { n: number };
      assert.equal(count.n, 3);
      // Foreign keys are back on, and the cascade still works on the rebuilt parent.
      assert.deepEqual({ ...db.prepare("PRAGMA foreign_keys").get() }, {
        foreign_keys: 1,
      });
      db.exec("DELETE FROM resources WHERE kind = 'skill' AND id = 's1'");
      const left = db.prepare("SELECT resource_id FROM resource_audit").all()
        .map((row) => ({ ...row }));
      assert.deepEqual(left, [{ resource_id: "s2" }]);
    } finally {
      db.close();
    }
  }));

Deno.test("without the foreign-keys-off line the same rebuild would cascade (why it exists)", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    storeWithHistory(path);
    const rebuild = defineMigration(
      `${NEXT}_rebuild_resources.sql`,
      REBUILD_RESOURCES,
    );
    assert.equal(rebuild.foreignKeysOff, false);
    applyTo(path, [...MIGRATIONS, rebuild]);
    // SQLite's DROP TABLE deletes the rows first, and ON DELETE CASCADE fires.
    assert.deepEqual(rows(path, "SELECT * FROM resource_audit"), []);
  }));

Deno.test("a foreign-keys-off file that leaves dangling rows is rolled back", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    storeWithHistory(path);
    const bytes = Deno.readFileSync(path);
    const dangling = defineMigration(
      `${NEXT}_drop_s1.sql`,
      "-- protostore: foreign-keys-off\nDELETE FROM resources WHERE id = 's1';",
    );
    const db = openConnection(path);
    try {
      assert.throws(
        () => applyMigrations(db, [...MIGRATIONS, dangling]),
        (error: unknown) =>
          error instanceof MigrationError &&
          error.file === `${NEXT}_drop_s1.sql` &&
          /foreign key/.test(error.message),
      );
      assert.deepEqual({ ...db.prepare("PRAGMA foreign_keys").get() }, {
        foreign_keys: 1,
      });
      assert.equal(db.isTransaction, false);
    } finally {
      db.close();
    }
    assert.deepEqual(Deno.readFileSync(path), bytes);
    using store = openStore(path);
    assert.equal(store.getResource(SkillSchema, "skill", "s1").name, "s");
    assert.equal(store.listAuditHistory(SkillSchema, "skill", "s1").length, 2);
  }));

// --- Dry run, status, not-a-database ---------------------------------------------------

Deno.test("a dry run lists what would run and creates no file or directory", () =>
  withTempDir((dir) => {
    const path = `${dir}/sub/db.sqlite`;
    const result = migrate(path, { dryRun: true });
    assert.equal(result.dryRun, true);
    assert.deepEqual(
      result.applied.map((a) => a.name),
      MIGRATIONS.map((m) => m.name),
    );
    assert.deepEqual(listDir(dir), []);

    const go = `${dir}/go.sqlite`;
    const db = goDatabase(go, 2);
    goSave(db, "skill", "s1", "s1");
    db.close();
    const bytes = Deno.readFileSync(go);
    assert.deepEqual(
      migrate(go, { dryRun: true }).applied.map((a) => a.name),
      AFTER_GO_V2,
    );
    assert.deepEqual(Deno.readFileSync(go), bytes);
    assert.deepEqual(listDir(dir), ["go.sqlite"]);

    migrate(go);
    assert.deepEqual(migrate(go, { dryRun: true }).applied, []);
  }));

Deno.test("migrationStatus lists applied and pending files without writing", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const missing = migrationStatus(path);
    assert.equal(missing.exists, false);
    assert.deepEqual(missing.applied, []);
    assert.deepEqual(
      missing.pending.map((p) => p.name),
      MIGRATIONS.map((m) => m.name),
    );
    assert.deepEqual(listDir(dir), []);

    const db = goDatabase(path, 1);
    db.close();
    const bytes = Deno.readFileSync(path);
    const go = migrationStatus(path);
    assert.equal(go.exists, true);
    assert.equal(go.schemaVersion, 1);
    assert.deepEqual(go.applied, [{
      version: 1,
      name: null,
      appliedAt: new Date("2025-06-01T12:00:00.000Z"),
      checksum: null,
    }]);
    assert.deepEqual(go.pending.map((p) => p.name), AFTER_GO_V1);
    assert.deepEqual(go.problems, []);
    assert.deepEqual(Deno.readFileSync(path), bytes);

    migrate(path);
    const done = migrationStatus(path);
    assert.equal(done.schemaVersion, MIGRATIONS.at(-1)!.version);
    assert.deepEqual(done.pending, []);
    assert.deepEqual(done.problems, []);
    assert.deepEqual(
      done.applied.map((a) => [a.version, a.name]),
      MIGRATIONS.map((m) => [m.version, m.name]),
    );
    for (const a of done.applied.slice(1)) {
      assert.equal(a.checksum, MIGRATIONS[a.version - 1].checksum);
      assert.ok(
        a.appliedAt instanceof Date && !Number.isNaN(a.appliedAt.getTime()),
      );
    }
  }));

Deno.test("a file that is not SQLite gives a clear StoreError and stays untouched", () =>
  withTempDir((dir) => {
    const text = `${dir}/notes.txt`;
    Deno.writeTextFileSync(
      text,
      "these are my notes, not a database\n".repeat(200),
    );
    const binary = `${dir}/random.bin`;
    Deno.writeFileSync(
      binary,
      Uint8Array.from({ length: 8192 }, (_, i) => (i * 7919 + 13) % 256),
    );
    for (const path of [text, binary]) {
      const bytes = Deno.readFileSync(path);
      const attempts: [string, () => unknown][] = [
        ["openStore", () => openStore(path)],
        ["openStore readOnly", () => openStore(path, { readOnly: true })],
        ["migrate", () => migrate(path)],
        ["migrate dry run", () => migrate(path, { dryRun: true })],
        ["migrationStatus", () => migrationStatus(path)],
      ];
      for (const [name, attempt] of attempts) {
        assert.throws(attempt, (error: unknown) => {
          assert.ok(error instanceof StoreError, `${name}: ${String(error)}`);
          assert.ok(!(error instanceof MigrationError), name);
          assert.equal(error.code, "corrupt", name);
          assert.ok(error.message.includes(path), `${name} names the path`);
          return true;
        });
      }
      assert.deepEqual(Deno.readFileSync(path), bytes);
    }
    assert.deepEqual(listDir(dir), ["notes.txt", "random.bin"]);
  }));

// --- Processes at once -----------------------------------------------------------------

const decoder = new TextDecoder();

function spawnChild(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CHILD, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Waits for a child, asserts it succeeded, and returns its JSON result line. */
async function resultOf(
  child: Deno.ChildProcess,
): Promise<Record<string, unknown>> {
  const out = await child.output();
  const stderr = decoder.decode(out.stderr);
  assert.equal(out.code, 0, `child failed: ${stderr}`);
  return JSON.parse(decoder.decode(out.stdout).trim().split("\n").at(-1)!);
}

/** Waits until every child signalled `ready-<name>`, then releases them all at once. */
async function releaseTogether(
  sync: string,
  names: string[],
  children: Deno.ChildProcess[],
): Promise<void> {
  const deadline = Date.now() + 30_000;
  const ready = () => names.every((n) => listDir(sync).includes(`ready-${n}`));
  while (!ready()) {
    if (Date.now() > deadline) {
      for (const child of children) child.kill();
      await Promise.all(children.map((c) => c.output()));
      assert.fail("child processes did not start in time");
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  Deno.writeTextFileSync(`${sync}/go`, "");
}

/** Runs `count` children of `mode` on `path`, released together; returns their results. */
async function runTogether(
  dir: string,
  mode: string,
  path: string,
  count: number,
  extra: string[] = [],
): Promise<Record<string, unknown>[]> {
  const sync = `${dir}/sync-${mode}`;
  Deno.mkdirSync(sync);
  const names = Array.from({ length: count }, (_, i) => `p${i}`);
  const children = names.map((name) =>
    spawnChild([mode, path, sync, name, ...extra])
  );
  await releaseTogether(sync, names, children);
  return await Promise.all(children.map(resultOf));
}

Deno.test("processes migrating a new file at once: each file is applied exactly once", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const results = await runTogether(dir, "migrate", path, 4);
    const applied = results.flatMap((r) => r.applied as string[]);
    assert.deepEqual(applied.sort(), MIGRATIONS.map((m) => m.name));
    assert.deepEqual(
      rows<{ version: number }>(
        path,
        "SELECT version FROM schema_version ORDER BY version",
      )
        .map((r) => r.version),
      MIGRATIONS.map((m) => m.version),
    );
    assert.deepEqual(migrationStatus(path).problems, []);
  }));

// Files run in their own transactions, so a process may find some applied and apply the
// rest: what must hold is that each pending file runs exactly once, whoever runs it.
Deno.test("processes migrating a Go v2 file at once apply each pending file exactly once", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    const db = goDatabase(path, 2);
    goSave(db, "skill", "s1", "s1");
    db.prepare(
      "INSERT INTO resource_audit (kind, resource_id, data) VALUES (?, ?, ?)",
    )
      .run("skill", "s1", skillBytes("s1 v1"));
    db.close();
    const results = await runTogether(dir, "migrate", path, 3);
    const applied = results.map((r) => r.applied as string[]);
    assert.deepEqual(applied.flat().sort(), [...AFTER_GO_V2].sort());
    for (const files of applied) {
      assert.deepEqual(
        files,
        [...files].sort(),
        "each process applies in order",
      );
    }
    using store = openStore(path);
    assert.equal(store.listAuditHistory(SkillSchema, "skill", "s1").length, 1);
  }));

Deno.test("processes writing the same file at once all succeed", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    openStore(path).close();
    const results = await runTogether(dir, "write", path, 3, ["100"]);
    assert.deepEqual(results, [{ written: 100 }, { written: 100 }, {
      written: 100,
    }]);
    using store = openStore(path);
    const all = store.listResources(SkillSchema, "skill");
    assert.equal(all.length, 300);
    for (const p of ["p0", "p1", "p2"]) {
      assert.equal(all.filter((s) => s.name === p).length, 100);
      assert.equal(
        store.listAuditHistory(SkillSchema, "skill", `${p}-99`).length,
        1,
      );
    }
  }));

Deno.test("a write waits for another process's open transaction, then succeeds", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    openStore(path).close();
    const sync = `${dir}/sync`;
    Deno.mkdirSync(sync);
    const holder = spawnChild(["hold", path, sync, "holder"]);
    const waiter = spawnChild(["wait-and-write", path, sync, "waiter"]);
    assert.deepEqual(await Promise.all([resultOf(holder), resultOf(waiter)]), [
      { written: 1 },
      { written: 1 },
    ]);
    using store = openStore(path);
    assert.deepEqual(
      store.listResources(SkillSchema, "skill").map((s) => s.name),
      ["holder", "waiter"],
    );
  }));

Deno.test("switching a file to WAL waits for another process's lock", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    const db = goDatabase(path, 2); // rollback-journal mode, as the Go store left it
    goSave(db, "skill", "s1", "s1");
    db.close();
    const sync = `${dir}/sync`;
    Deno.mkdirSync(sync);
    // A writer holding the lock of a rollback-journal file: SQLite does not call the busy
    // handler for the switch then (it would deadlock), so the runner has to retry.
    const holder = spawnChild(["hold-raw", path, sync, "holder", "300"]);
    const deadline = Date.now() + 30_000;
    while (!listDir(sync).includes("locked")) {
      if (Date.now() > deadline) {
        holder.kill();
        await holder.output();
        assert.fail("the lock holder did not start in time");
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // The switch needs an exclusive lock: it must wait for the holder, not fail.
    assert.deepEqual(
      migrate(path).applied.map((a) => a.name),
      AFTER_GO_V2,
    );
    assert.deepEqual(await resultOf(holder), { held: true });
    assert.deepEqual(rows(path, "PRAGMA journal_mode"), [{
      journal_mode: "wal",
    }]);
  }));

Deno.test("a damaged schema_version page: every entry point throws StoreError code corrupt, not a raw SQLite error", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/damaged.sqlite`;
    writeRows(path, 3, 1);
    damageTable(path, "schema_version");
    const entries: [string, () => unknown][] = [
      ["openStore", () => openStore(path).close()],
      ["openStore readOnly", () => openStore(path, { readOnly: true }).close()],
      ["migrate", () => migrate(path)],
      ["migrationStatus", () => migrationStatus(path)],
      ["downgrade", () => downgrade(path)],
    ];
    for (const [name, run] of entries) {
      // Before the fix: node:sqlite's own Error ("database disk image is malformed").
      assert.throws(run, (error: unknown) => {
        assert.ok(error instanceof StoreError, `${name}: ${error}`);
        assert.equal(error.code, "corrupt", name);
        return true;
      });
    }
  });
});
