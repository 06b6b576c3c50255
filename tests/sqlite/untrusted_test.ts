/**
 * Reading files we do not trust: the guard refuses SQL stored in the file, and the
 * migration runner (migrate, migrate --status, openStore) reads schema_version only
 * when it is a plain table.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  migrate,
  MigrationError,
  migrationStatus,
  openStore,
} from "../../mod.ts";
import { guardUntrustedReads } from "../../src/sqlite/untrusted.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const ENDLESS_VERSIONS =
  `CREATE VIEW schema_version AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
   SELECT n AS version, '2026-01-01' AS applied_at, NULL AS name, NULL AS checksum FROM r`;

Deno.test("migrate, migrate --status and openStore refuse a schema_version view over an endless query without reading it", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/crafted.sqlite`;
    const db = new DatabaseSync(path);
    db.exec(ENDLESS_VERSIONS);
    db.close();
    const before = Deno.readFileSync(path);
    const status = migrationStatus(path);
    assert.equal(status.schemaVersion, 0);
    assert.ok(
      status.problems.some((p) =>
        p.startsWith("schema_version is a view, not a table")
      ),
      status.problems.join("; "),
    );
    assert.throws(() => migrate(path), MigrationError);
    assert.throws(() => openStore(path), MigrationError);
    assert.deepEqual(Deno.readFileSync(path), before, "the file is untouched");
  });
});

Deno.test("the guard refuses reads through views and triggers, and recursive queries, but not plain SQL", () => {
  const db = new DatabaseSync(":memory:");
  db.exec(
    "CREATE TABLE t (a); INSERT INTO t VALUES (1); CREATE VIEW v AS SELECT a FROM t",
  );
  guardUntrustedReads(db);
  assert.throws(() => db.prepare("SELECT * FROM v"), /prohibited/);
  assert.throws(
    () =>
      db.prepare(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
      ),
    /not authorized/,
  );
  assert.deepEqual(
    { ...db.prepare("SELECT a, length('xy') AS l FROM t").get() },
    { a: 1, l: 2 },
  );
  db.close();
});
