/**
 * Migration 0005 on older files: Go v1 and v2 files, protostore 0.1 files and Badger
 * imports get consistent revisions, in updated_at / archive order.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create, toBinary } from "@bufbuild/protobuf";
import { CompactedError, importBadgerBackup, openStore } from "../../mod.ts";
import { MIGRATIONS } from "../../src/migrate/files.ts";
import { applyMigrations } from "../../src/migrate/runner.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { writeGoDb, writeSeededGoDb } from "../helpers/go_store.ts";
import { checkRevisions } from "../helpers/revisions.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const bytes = (name: string) =>
  toBinary(SkillSchema, create(SkillSchema, { name }));

/**
 * Opens the file with the Store (which migrates), checks the invariants, and that the
 * resources' revisions are 1..N in (updated_at, kind, id) order; returns N.
 */
function upgradeAndCheck(path: string): number {
  using store = openStore(path);
  const state = checkRevisions(path);
  const db = new DatabaseSync(path, { readOnly: true });
  const rows = db.prepare(
    "SELECT revision, create_revision FROM resources ORDER BY updated_at, kind, id",
  ).all() as { revision: number; create_revision: number }[];
  db.close();
  assert.deepEqual(
    rows.map((r) => r.revision),
    rows.map((_, i) => i + 1),
  );
  assert.ok(rows.every((r) => r.create_revision === r.revision));
  const n = rows.length;
  assert.equal(store.currentRevision(), n);
  assert.equal(state.compactedThrough, n);
  // The rows' changes predate the log: a watcher from before must list again.
  if (n > 0) {
    assert.throws(
      () => store.changesSince(0),
      (e) => e instanceof CompactedError && e.oldestRevision === n,
    );
  }
  assert.deepEqual(store.changesSince(n), []);
  const saved = store.saveResource(
    SkillSchema,
    "new",
    "x",
    create(SkillSchema),
  );
  assert.equal(saved.revision, n + 1);
  checkRevisions(path);
  return n;
}

Deno.test("a Go v1 file gets revisions in updated_at order; its legacy snapshots fall in between", () =>
  withTempDir((dir) => {
    const path = `${dir}/go1.sqlite`;
    writeGoDb(path, {
      version: 1,
      resources: [
        {
          kind: "skill",
          id: "b",
          data: bytes("b"),
          updatedAt: "2025-01-03 00:00:00",
        },
        {
          kind: "skill",
          id: "a",
          data: bytes("a"),
          updatedAt: "2025-01-03 00:00:00",
        },
        {
          kind: "agent",
          id: "z",
          data: bytes("z"),
          updatedAt: "2025-01-01 00:00:00",
        },
        // A legacy snapshot of skill/a archived on 2025-01-02 (nanoseconds in the id).
        {
          kind: "skill",
          id: `skill_audit/a/${Date.UTC(2025, 0, 2)}000000`,
          data: bytes("a0"),
          updatedAt: "2025-01-02 00:00:00",
        },
      ],
    });
    assert.equal(upgradeAndCheck(path), 3);
    using store = openStore(path);
    assert.equal(store.getResourceEntry(SkillSchema, "agent", "z").revision, 1);
    assert.equal(store.getResourceEntry(SkillSchema, "skill", "a").revision, 2);
    assert.equal(store.getResourceEntry(SkillSchema, "skill", "b").revision, 3);
    // Archived after revision 1 (agent/z), before skill/a's update.
    const [snapshot] = store.listAuditHistory(SkillSchema, "skill", "a");
    assert.equal(snapshot.revision, 1);
  }));

Deno.test("a Go v2 file with histories and orphans gets consistent revisions", () =>
  withTempDir((dir) => {
    const path = `${dir}/go2.sqlite`;
    writeSeededGoDb(path, 11, {
      resources: 300,
      auditsPerResource: 3,
      payload: 40,
    });
    const n = upgradeAndCheck(path);
    assert.ok(n > 250);
  }));

Deno.test("a protostore 0.1 file (schema version 3) gets revisions; same-millisecond saves stay distinct", () =>
  withTempDir((dir) => {
    const path = `${dir}/v01.sqlite`;
    const db = new DatabaseSync(path);
    applyMigrations(db, MIGRATIONS.filter((m) => m.version <= 3));
    // The rows 0.1's Store wrote: ISO times, a recorded type, histories in ms.
    const save = db.prepare(
      "INSERT INTO resources (kind, id, data, updated_at) VALUES (?, ?, ?, ?)",
    );
    const audit = db.prepare(
      "INSERT INTO resource_audit (kind, resource_id, data, archived_at, tag) VALUES (?, ?, ?, ?, ?)",
    );
    save.run("skill", "s1", bytes("s1"), "2026-01-25T10:00:00.002Z");
    save.run("skill", "s2", bytes("s2"), "2026-01-25T10:00:00.001Z");
    save.run("skill", "s3", bytes("s3"), "2026-01-25T10:00:00.001Z");
    audit.run("skill", "s1", bytes("s1 v1"), "2026-01-25T10:00:00.000Z", "v1");
    audit.run("skill", "s1", bytes("s1 v2"), "2026-01-25T10:00:00.001Z", "v2");
    audit.run("skill", "s1", bytes("s1 v3"), "2026-01-25T10:00:00.002Z", "v3");
    db.close();
    assert.equal(upgradeAndCheck(path), 3);
    using store = openStore(path);
    assert.deepEqual(
      ["s2", "s3", "s1"].map((id) =>
        store.getResourceEntry(SkillSchema, "skill", id).revision
      ),
      [1, 2, 3],
    );
    assert.deepEqual(
      store.listAuditHistory(SkillSchema, "skill", "s1").map((e) => [
        e.tag,
        e.revision,
      ]),
      [["v3", 3], ["v2", 2], ["v1", 0]],
    );
  }));

Deno.test("a Badger import is one revision: each resource it writes has it, with its change", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    using store = openStore(path);
    store.saveResource(SkillSchema, "before", "x", create(SkillSchema));
    const dump = await Deno.open(
      new URL("../fixtures/badger/backup.bak", import.meta.url),
    );
    const summary = await importBadgerBackup(store, dump.readable, {
      tempDir: dir,
    });
    assert.ok(summary.resources > 0);
    assert.equal(store.currentRevision(), 2);
    const state = checkRevisions(path);
    const imported = state.changes.filter((c) => c.revision === 2);
    assert.equal(
      imported.length,
      summary.resources - summary.resourcesUnchanged,
    );
    assert.ok(imported.length > 0);
  }));
