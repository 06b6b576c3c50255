/**
 * The admin read paths on files they must not trust: crafted objects where protostore's
 * tables belong (views over endless queries, virtual tables, generated columns) are
 * refused or skipped with a finding and never run; damage is reported; the audit scan
 * counts right whatever the table's shape; progress is reported.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  auditHistory,
  auditSnapshot,
  inspectDatabase,
  inspectResource,
  migrate,
  StoreError,
} from "../../mod.ts";
import type { InspectProgress } from "../../src/admin/inspect.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { damagePage, writeRows } from "../helpers/rows.ts";

/** A recursive CTE without an end: reading it never returns and grows memory. */
const ENDLESS =
  "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)";

function craft(path: string, sql: string): void {
  const db = new DatabaseSync(path);
  db.exec(sql);
  db.close();
}

Deno.test("inspect skips views over endless recursive queries with a finding, and finishes", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/crafted.sqlite`;
    craft(
      path,
      `CREATE VIEW resources AS ${ENDLESS}
         SELECT 'k' AS kind, CAST(n AS TEXT) AS id, zeroblob(100) AS data,
                '2026-01-01' AS updated_at FROM r;
       CREATE VIEW resource_audit AS ${ENDLESS}
         SELECT n AS id, 'k' AS kind, 'a' AS resource_id, x'00' AS data,
                '2026-01-01' AS archived_at FROM r;
       CREATE VIEW schema_version AS ${ENDLESS}
         SELECT n AS version, '2026-01-01' AS applied_at FROM r;
       CREATE VIEW message_schemas AS ${ENDLESS}
         SELECT n AS id, 't' AS type_name, x'' AS descriptor_set FROM r;`,
    );
    const overview = inspectDatabase(path, { check: true });
    assert.deepEqual(overview.kinds, []);
    assert.equal(overview.schemaVersion, 0);
    assert.deepEqual(overview.messageTypes, []);
    for (const name of ["resources", "resource_audit", "schema_version"]) {
      assert.ok(
        overview.problems.some((p) =>
          p.startsWith(`${name} is a view, not a table`)
        ),
        `a finding for ${name}: ${overview.problems.join("; ")}`,
      );
    }
  });
});

Deno.test("inspect KIND ID, audit-history and --show refuse a view where protostore keeps a table", async () => {
  await withTempDir((dir) => {
    const views = `${dir}/views.sqlite`;
    craft(
      views,
      `CREATE VIEW resources AS ${ENDLESS}
         SELECT 'k' AS kind, CAST(n AS TEXT) AS id, x'0801' AS data,
                '2026-01-01' AS updated_at FROM r;`,
    );
    const refused = (error: unknown) =>
      error instanceof StoreError &&
      /resources is a view, not a table: refusing to read it/.test(
        error.message,
      );
    assert.throws(() => inspectResource(views, "k", "1"), refused);
    assert.throws(() => auditHistory(views, "k", "1"), refused);

    // The audit table itself a view, next to a real resources table.
    const audit = `${dir}/audit.sqlite`;
    migrate(audit);
    craft(
      audit,
      `DROP TABLE resource_audit;
       CREATE VIEW resource_audit AS ${ENDLESS}
         SELECT n AS id, 'k' AS kind, '1' AS resource_id, x'0801' AS data,
                '2026-01-01' AS archived_at, NULL AS version_hash, NULL AS tag,
                NULL AS schema_id FROM r;`,
    );
    const auditRefused = (error: unknown) =>
      error instanceof StoreError &&
      /resource_audit is a view, not a table/.test(error.message);
    assert.throws(() => auditHistory(audit, "k", "1"), auditRefused);
    assert.throws(() => auditSnapshot(audit, "k", "1", 1), auditRefused);
  });
});

Deno.test("generated columns and views reached from a plain table's query are never run", async () => {
  await withTempDir((dir) => {
    // A generated column is the file's own expression, evaluated on every read.
    const generated = `${dir}/generated.sqlite`;
    craft(
      generated,
      `CREATE TABLE resources (kind TEXT, id TEXT, updated_at TEXT,
         data BLOB AS (zeroblob(1000000)), PRIMARY KEY (kind, id)) WITHOUT ROWID;
       INSERT INTO resources (kind, id, updated_at) VALUES ('k', '1', '2026-01-01');`,
    );
    const overview = inspectDatabase(generated);
    assert.deepEqual(overview.kinds, []);
    assert.ok(
      overview.problems.some((p) =>
        /^resources has generated column\(s\) data/.test(p)
      ),
      overview.problems.join("; "),
    );
    assert.throws(
      () => inspectResource(generated, "k", "1"),
      /generated column\(s\) data/,
    );
  });
});

Deno.test("inspect --check reports a damaged page as a finding with advice instead of failing", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/damaged.sqlite`;
    writeRows(path, 400, 3);
    damagePage(path);
    const overview = inspectDatabase(path, { check: true });
    assert.ok(
      Array.isArray(overview.integrity) && overview.integrity.length > 0,
      `damage found: ${JSON.stringify(overview.integrity)}`,
    );
    assert.match(overview.advice ?? "", /backup/);
    assert.match(overview.advice ?? "", /\.recover/);
  });
});

Deno.test("inspect --check reports a foreign key whose parent is a view as a finding instead of failing", async () => {
  for (const parent of ["resources", "message_schemas"]) {
    await withTempDir((dir) => {
      const path = `${dir}/crafted.sqlite`;
      migrate(path);
      // Before the fix: "foreign key mismatch" escaped as an unexpected error.
      craft(
        path,
        `PRAGMA foreign_keys = OFF; DROP TABLE ${parent};
         CREATE VIEW ${parent} AS SELECT 1 AS id`,
      );
      const overview = inspectDatabase(path, { check: true });
      assert.ok(Array.isArray(overview.integrity), parent);
      assert.ok(
        overview.integrity.some((p) =>
          p.includes("foreign key") && p.includes(parent)
        ),
        `${parent}: ${JSON.stringify(overview.integrity)}`,
      );
    });
  }
});

Deno.test("inspect counts audit rows and bytes per kind the same whatever the audit table's shape", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    writeRows(path, 50, 2, ["agent", "skill", "tool"]);
    const expected = inspectDatabase(path).kinds;
    assert.deepEqual(expected.map((k) => [k.kind, k.auditRecords]), [
      ["agent", 34],
      ["skill", 34],
      ["tool", 32],
    ]);
    // Same rows, in a table whose columns shadow every rowid alias (no chunking).
    const shadowed = `${dir}/shadowed.sqlite`;
    const db = new DatabaseSync(path);
    db.exec(`VACUUM INTO '${shadowed}'`);
    db.close();
    craft(
      shadowed,
      `PRAGMA foreign_keys = OFF;
       CREATE TABLE audit2 (rowid, _rowid_, oid, id, kind TEXT, resource_id TEXT,
         data BLOB, archived_at TEXT, version_hash TEXT, tag TEXT, schema_id INTEGER);
       INSERT INTO audit2 SELECT 0, 0, 0, id, kind, resource_id, data, archived_at,
         version_hash, tag, schema_id FROM resource_audit;
       DROP TABLE resource_audit;
       ALTER TABLE audit2 RENAME TO resource_audit;`,
    );
    const counted = inspectDatabase(shadowed).kinds;
    assert.deepEqual(
      counted.map((
        k,
      ) => [k.kind, k.auditRecords + k.orphanAuditRecords, k.auditBytes]),
      expected.map((k) => [k.kind, k.auditRecords, k.auditBytes]),
    );
  });
});

Deno.test("inspect reports its progress through every phase, ending each audit scan at 1", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    writeRows(path, 30, 2, ["agent", "skill"]);
    const seen: InspectProgress[] = [];
    inspectDatabase(path, { check: true, onProgress: (p) => seen.push(p) });
    const phases = [...new Set(seen.map((p) => p.phase))];
    assert.deepEqual(phases, [
      "resources",
      "resource_audit",
      "resource_audit_orphans",
      "integrity check",
    ]);
    const audit = seen.filter((p) => p.phase === "resource_audit");
    assert.equal(audit.at(-1)?.fraction, 1);
    assert.equal(audit.at(-1)?.rows, 60);
  });
});
