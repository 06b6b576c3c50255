/**
 * Restore and point-in-time reads: a restore makes the snapshot's exact bytes current as
 * a new change (new revision, in the change feed, history untouched), honours
 * `ifRevision`, refuses a missing snapshot or another type; `getResourceAt` finds the
 * newest snapshot at or before a time or a revision. On Store-written, Go-written and
 * Badger-imported files.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  AuditNotFoundError,
  ConflictError,
  openStore,
  Store,
  StoreError,
  TypeMismatchError,
} from "../../mod.ts";
import {
  AgentSchema,
  SkillSchema,
} from "../fixtures/gen/example/v1/example_pb.ts";
import { makeDatabase, ORIGINS } from "../helpers/lifecycle.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const skill = (name: string, description = "") =>
  create(SkillSchema, { name, description });

function rawData(
  store: Store,
  table: string,
  where: string,
  ...args: (string | number)[]
) {
  return (Store.connectionOf(store).prepare(
    `SELECT data FROM ${table} WHERE ${where}`,
  )
    .get(...args) as { data: Uint8Array } | undefined)?.data;
}

Deno.test("restoreResource makes the snapshot's bytes current as a new change; the history stays", async () => {
  await withTempDir((dir) => {
    using store = openStore(`${dir}/db.sqlite`);
    store.saveResource(SkillSchema, "skill", "lint", skill("lint", "one"));
    const v1 = store.saveAudit(
      SkillSchema,
      "skill",
      "lint",
      skill("lint", "one"),
      { tag: "v1", versionHash: "h1" },
    );
    store.saveResource(SkillSchema, "skill", "lint", skill("lint", "two"));
    store.saveAudit(SkillSchema, "skill", "lint", skill("lint", "two"), {
      tag: "v2",
    });
    const before = store.getResourceEntry(SkillSchema, "skill", "lint");
    const history = store.listAuditHistory(SkillSchema, "skill", "lint");
    for (
      const ref of [{ tag: "v1" }, { versionHash: "h1" }, { auditId: v1.id }]
    ) {
      const { revision, updatedAt } = store.restoreResource(
        SkillSchema,
        "skill",
        "lint",
        ref,
      );
      const entry = store.getResourceEntry(SkillSchema, "skill", "lint");
      assert.equal(entry.message.description, "one");
      assert.equal(entry.revision, revision);
      assert(revision > before.revision);
      assert.equal(entry.createRevision, before.createRevision);
      assert.deepEqual(entry.updatedAt, updatedAt);
      assert.deepEqual(
        rawData(store, "resources", "kind = ? AND id = ?", "skill", "lint"),
        rawData(store, "resource_audit", "id = ?", v1.id),
      );
      const changes = store.changesSince(revision - 1);
      assert.deepEqual(changes, [{
        revision,
        kind: "skill",
        id: "lint",
        type: "put",
      }]);
      store.saveResource(SkillSchema, "skill", "lint", skill("lint", "two"));
    }
    assert.deepEqual(
      store.listAuditHistory(SkillSchema, "skill", "lint"),
      history,
    );
  });
});

Deno.test("restoreResource with ifRevision: a stale revision is a ConflictError and nothing changes", async () => {
  await withTempDir((dir) => {
    using store = openStore(`${dir}/db.sqlite`);
    const first = store.saveResource(
      SkillSchema,
      "skill",
      "s",
      skill("s", "one"),
    );
    store.saveAudit(SkillSchema, "skill", "s", skill("s", "one"), {
      tag: "v1",
    });
    const second = store.saveResource(
      SkillSchema,
      "skill",
      "s",
      skill("s", "two"),
    );
    assert.throws(
      () =>
        store.restoreResource(SkillSchema, "skill", "s", { tag: "v1" }, {
          ifRevision: first.revision,
        }),
      (e) =>
        e instanceof ConflictError && e.expected === first.revision &&
        e.actual === second.revision,
    );
    assert.equal(
      store.getResource(SkillSchema, "skill", "s").description,
      "two",
    );
    assert.equal(store.currentRevision(), second.revision);
    const done = store.restoreResource(
      SkillSchema,
      "skill",
      "s",
      { tag: "v1" },
      { ifRevision: second.revision },
    );
    assert.equal(done.revision, second.revision + 1);
  });
});

Deno.test("restoreResource refuses a missing snapshot (AuditNotFoundError), another type (TypeMismatchError), a bad reference", async () => {
  await withTempDir((dir) => {
    using store = openStore(`${dir}/db.sqlite`);
    store.saveResource(SkillSchema, "skill", "s", skill("s"));
    const { id } = store.saveAudit(SkillSchema, "skill", "s", skill("s"));
    const revision = store.currentRevision();
    for (
      const ref of [{ tag: "nope" }, { versionHash: "nope" }, {
        auditId: id + 100,
      }]
    ) {
      assert.throws(
        () => store.restoreResource(SkillSchema, "skill", "s", ref),
        (e) =>
          e instanceof AuditNotFoundError && e.kind === "skill" && e.id === "s",
      );
    }
    assert.throws(
      () => store.restoreResource(AgentSchema, "skill", "s", { auditId: id }),
      (e) =>
        e instanceof TypeMismatchError && e.recordedType === "example.v1.Skill",
    );
    for (
      const ref of [{}, { tag: "" }, { auditId: 0 }, { tag: "a", auditId: 1 }]
    ) {
      assert.throws(
        () =>
          store.restoreResource(
            SkillSchema,
            "skill",
            "s",
            ref as { tag: string },
          ),
        StoreError,
      );
    }
    // A snapshot of another resource is not this one's.
    store.saveResource(SkillSchema, "skill", "t", skill("t"));
    assert.throws(
      () => store.restoreResource(SkillSchema, "skill", "t", { auditId: id }),
      AuditNotFoundError,
    );
    assert.equal(store.currentRevision(), revision + 1);
  });
});

Deno.test("getResourceAt: the newest snapshot archived at or before a time or a revision", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    using store = openStore(path);
    store.saveResource(SkillSchema, "skill", "s", skill("s", "zero"));
    const revisions: number[] = [];
    for (const d of ["one", "two", "three"]) {
      revisions.push(
        store.saveResource(SkillSchema, "skill", "s", skill("s", d)).revision,
      );
      store.saveAudit(SkillSchema, "skill", "s", skill("s", d), { tag: d });
    }
    // Fixed times, one day apart, so a Date between them is unambiguous.
    const db = Store.connectionOf(store);
    db.exec(`UPDATE resource_audit SET archived_at = CASE tag
      WHEN 'one' THEN '2026-01-01T00:00:00.000Z' WHEN 'two' THEN '2026-01-02T00:00:00.000Z'
      ELSE '2026-01-03T00:00:00.000Z' END`);
    const at = (when: Date | number) =>
      store.getResourceAt(SkillSchema, "skill", "s", when).message.description;
    assert.equal(at(new Date("2026-01-02T00:00:00.000Z")), "two");
    assert.equal(at(new Date("2026-01-02T12:00:00.000Z")), "two");
    assert.equal(at(new Date("2030-01-01")), "three");
    assert.equal(at(revisions[0]), "one");
    assert.equal(at(revisions[1]), "two");
    assert.equal(at(revisions[2] + 5), "three");
    const entry = store.getResourceAt(SkillSchema, "skill", "s", revisions[1]);
    assert.equal(entry.tag, "two");
    assert.equal(entry.revision, revisions[1]);
    for (const when of [new Date("2025-12-31"), revisions[0] - 1]) {
      assert.throws(
        () => store.getResourceAt(SkillSchema, "skill", "s", when),
        (e) => e instanceof AuditNotFoundError && e.lookup.at === when,
      );
    }
    assert.throws(
      () => store.getResourceAt(SkillSchema, "skill", "s", new Date("x")),
      StoreError,
    );
    assert.throws(
      () => store.getResourceAt(SkillSchema, "skill", "s", -1),
      StoreError,
    );
  });
});

for (const origin of ORIGINS) {
  Deno.test(`restore and point-in-time reads on a ${origin} file: every snapshot restores byte for byte`, async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/db.sqlite`;
      await makeDatabase(origin, path);
      using store = openStore(path);
      const db = Store.connectionOf(store);
      const snapshots = db.prepare(
        `SELECT a.id, a.kind, a.resource_id, a.data, a.archived_at, a.revision FROM resource_audit a
         ORDER BY a.kind, a.resource_id, a.archived_at DESC, a.id DESC`,
      ).all() as {
        id: number;
        kind: string;
        resource_id: string;
        data: Uint8Array;
        archived_at: string;
        revision: number;
      }[];
      assert(snapshots.length > 0);
      const seen = new Set<string>();
      for (const s of snapshots) {
        const key = `${s.kind}/${s.resource_id}`;
        // Point in time at the newest snapshot's own time gives that snapshot (or a later
        // one archived in the same millisecond).
        if (!seen.has(key)) {
          seen.add(key);
          const entry = store.getResourceAt(
            SkillSchema,
            s.kind,
            s.resource_id,
            new Date(s.archived_at),
          );
          assert.equal(entry.id, s.id);
          const byRevision = store.getResourceAt(
            SkillSchema,
            s.kind,
            s.resource_id,
            s.revision,
          );
          assert(byRevision.revision <= s.revision);
        }
        const before = store.currentRevision();
        const { revision } = store.restoreResource(
          SkillSchema,
          s.kind,
          s.resource_id,
          { auditId: s.id },
        );
        assert.equal(revision, before + 1);
        assert.deepEqual(
          rawData(
            store,
            "resources",
            "kind = ? AND id = ?",
            s.kind,
            s.resource_id,
          ),
          s.data,
        );
      }
    });
  });
}
