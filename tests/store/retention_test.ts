/**
 * Retention: `pruneAudit` removes exactly the snapshots its criteria select (checked
 * against a model of the rule on a random history, in batches that cross many resource
 * boundaries), keeps tags, refuses to wipe, leaves orphans alone unless asked, writes
 * nothing in a dry run or when it fails; `listOrphanedAudit` returns kept orphans.
 */
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { openStore, Store, StoreError } from "../../mod.ts";
import {
  type PruneOptions,
  pruneSnapshots,
  pruneSql,
} from "../../src/store/retention.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { insertOrphans } from "../helpers/cli.ts";
import { Rng } from "../helpers/prng.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const skill = (name: string) => create(SkillSchema, { name });

interface Snap {
  id: number;
  kind: string;
  resourceId: string;
  archivedAt: string;
  tag: string | null;
}

/** Writes a random history straight into the file (times chosen, ties included). */
function seedHistory(path: string, seed: number): Snap[] {
  const rng = new Rng(seed);
  {
    using store = openStore(path);
    for (const kind of ["agent", "skill"]) {
      for (let r = 0; r < 12; r++) {
        store.saveResource(SkillSchema, kind, `r${r}`, skill(`${kind}${r}`));
      }
    }
  }
  using store = openStore(path);
  const db = Store.connectionOf(store);
  const insert = db.prepare(
    `INSERT INTO resource_audit (kind, resource_id, data, archived_at, tag)
     VALUES (?, ?, ?, ?, ?) RETURNING id`,
  );
  const snaps: Snap[] = [];
  db.exec("BEGIN");
  for (let i = 0; i < 400; i++) {
    const kind = rng.int(2) === 0 ? "agent" : "skill";
    const resourceId = `r${rng.int(12)}`;
    // Few distinct times, so equal archive times (ordered by id) are common.
    const archivedAt = new Date(Date.UTC(2026, 0, 1 + rng.int(30)))
      .toISOString();
    const tag = rng.int(6) === 0 ? `t${i}` : rng.int(10) === 0 ? "" : null;
    const { id } = insert.get(
      kind,
      resourceId,
      toBinary(SkillSchema, skill(`s${i}`)),
      archivedAt,
      tag,
    ) as { id: number };
    snaps.push({ id, kind, resourceId, archivedAt, tag });
  }
  db.exec("COMMIT");
  return snaps;
}

/** The rule, written plainly: which snapshot ids a prune with `options` removes. */
function expectedRemoved(snaps: Snap[], options: PruneOptions): Set<number> {
  const byResource = Map.groupBy(snaps, (s) => `${s.kind}\0${s.resourceId}`);
  const removed = new Set<number>();
  for (const history of byResource.values()) {
    const newestFirst = history.toSorted((a, b) =>
      a.archivedAt === b.archivedAt
        ? b.id - a.id
        : a.archivedAt < b.archivedAt
        ? 1
        : -1
    );
    newestFirst.forEach((s, rank) => {
      if (options.kind !== undefined && s.kind !== options.kind) return;
      if (options.id !== undefined && s.resourceId !== options.id) return;
      if (rank < (options.keepLast ?? 0)) return;
      if (
        options.olderThan !== undefined &&
        !(s.archivedAt < options.olderThan.toISOString())
      ) return;
      if ((options.keepTagged ?? true) && s.tag) return;
      removed.add(s.id);
    });
  }
  return removed;
}

function remainingIds(store: Store): Set<number> {
  const rows = Store.connectionOf(store).prepare(
    "SELECT id FROM resource_audit",
  ).all() as { id: number }[];
  return new Set(rows.map((r) => r.id));
}

const CASES: PruneOptions[] = [
  { keepLast: 3 },
  { keepLast: 0 },
  { keepLast: 1, keepTagged: false },
  { olderThan: new Date(Date.UTC(2026, 0, 15)) },
  { keepLast: 2, olderThan: new Date(Date.UTC(2026, 0, 20)) },
  { kind: "skill", keepLast: 2 },
  { kind: "agent", id: "r3", keepLast: 1, keepTagged: false },
  { kind: "agent", olderThan: new Date(Date.UTC(2026, 0, 10)) },
];

Deno.test("pruneAudit removes exactly what keepLast, olderThan, tags and scope select, across batches", async () => {
  for (const [i, options] of CASES.entries()) {
    for (const batchRows of i % 2 === 0 ? [1, 5000] : [7, 5000]) {
      await withTempDir((dir) => {
        const path = `${dir}/db.sqlite`;
        const snaps = seedHistory(path, 100 + i);
        const expected = expectedRemoved(snaps, options);
        using store = openStore(path);
        const before = remainingIds(store);
        const db = Store.connectionOf(store);
        const plan = pruneSnapshots(
          db,
          options,
          (fn) => store.transaction(fn),
          true,
        );
        assert.equal(plan.removed, expected.size, `dry run of case ${i}`);
        assert.deepEqual(
          remainingIds(store),
          before,
          "a dry run removes nothing",
        );
        const result = batchRows === 5000
          ? { removed: store.pruneAudit(options) }
          : pruneSnapshots(
            db,
            options,
            (fn) => store.transaction(fn),
            false,
            { batchRows, pauseMs: 0 },
          );
        assert.equal(
          result.removed,
          expected.size,
          `case ${i}, batch ${batchRows}`,
        );
        const left = remainingIds(store);
        for (const s of snaps) {
          assert.equal(
            left.has(s.id),
            !expected.has(s.id),
            `case ${i} (${
              JSON.stringify(options)
            }), batch ${batchRows}: snapshot ${s.id}`,
          );
        }
      });
    }
  }
});

Deno.test("pruneAudit counts per kind, and a dry run counts the same", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const snaps = seedHistory(path, 7);
    using store = openStore(path);
    const db = Store.connectionOf(store);
    const options = { keepLast: 2 };
    const expected = expectedRemoved(snaps, options);
    const perKind = (kind: string) =>
      snaps.filter((s) => s.kind === kind && expected.has(s.id)).length;
    const plan = pruneSnapshots(
      db,
      options,
      (fn) => store.transaction(fn),
      true,
    );
    const done = pruneSnapshots(
      db,
      options,
      (fn) => store.transaction(fn),
      false,
      { batchRows: 10, pauseMs: 0 },
    );
    for (const result of [plan, done]) {
      assert.deepEqual(result.kinds, {
        agent: { audit: perKind("agent"), orphans: 0 },
        skill: { audit: perKind("skill"), orphans: 0 },
      });
    }
    assert.equal(plan.dryRun, true);
    assert.equal(done.dryRun, false);
  });
});

Deno.test("pruneAudit refuses without keepLast or olderThan, and bad options, writing nothing", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    seedHistory(path, 3);
    const bytes = Deno.readFileSync(path);
    using store = openStore(path);
    const bad: unknown[] = [
      {},
      { kind: "skill" },
      { kind: "skill", id: "r1", orphans: true },
      { keepLast: -1 },
      { keepLast: 1.5 },
      { olderThan: new Date("nope") },
      { olderThan: "2026-01-01" },
      { id: "r1", keepLast: 1 },
      { kind: "", keepLast: 1 },
      { keepLast: 1, keepTagged: "no" },
      null,
    ];
    for (const options of bad) {
      assert.throws(
        () => store.pruneAudit(options as PruneOptions),
        StoreError,
        JSON.stringify(options),
      );
    }
    store.close();
    assert.deepEqual(Deno.readFileSync(path), bytes);
  });
});

Deno.test("pruneAudit inside transaction() is part of it: a throw afterwards restores every snapshot", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    seedHistory(path, 4);
    using store = openStore(path);
    const before = remainingIds(store);
    assert.throws(() =>
      store.transaction(() => {
        assert(store.pruneAudit({ keepLast: 0, keepTagged: false }) > 0);
        assert.equal(remainingIds(store).size, 0);
        throw new Error("changed my mind");
      }), /changed my mind/);
    assert.deepEqual(remainingIds(store), before);
  });
});

Deno.test("pruneAudit on a read-only store refuses with StoreError", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    seedHistory(path, 5);
    using store = openStore(path, { readOnly: true });
    assert.throws(() => store.pruneAudit({ keepLast: 1 }), StoreError);
  });
});

Deno.test("orphaned snapshots: listOrphanedAudit returns them newest first; prune touches them only with orphans: true", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    openStore(path).close();
    const data = (n: string) => toBinary(SkillSchema, skill(n));
    const ids = insertOrphans(path, [
      {
        kind: "skill",
        resourceId: "gone",
        data: data("o1"),
        archivedAt: "2026-01-01T00:00:00.000Z",
        tag: "v1",
      },
      {
        kind: "skill",
        resourceId: "gone",
        data: data("o2"),
        archivedAt: "2026-01-02T00:00:00.000Z",
        versionHash: "h2",
      },
      {
        kind: "skill",
        resourceId: "gone",
        data: data("o3"),
        archivedAt: "2026-01-02T00:00:00.000Z",
      },
      {
        kind: "skill",
        resourceId: "other",
        data: data("x"),
        archivedAt: "2026-01-03T00:00:00.000Z",
      },
    ]);
    using store = openStore(path);
    const orphans = store.listOrphanedAudit(SkillSchema, "skill", "gone");
    assert.deepEqual(orphans.map((e) => e.id), [ids[2], ids[1], ids[0]]);
    assert.deepEqual(orphans.map((e) => e.message.name), ["o3", "o2", "o1"]);
    assert.equal(orphans[1].versionHash, "h2");
    assert.equal(orphans[2].tag, "v1");
    assert.equal(
      orphans[2].archivedAt.toISOString(),
      "2026-01-01T00:00:00.000Z",
    );
    assert.deepEqual(store.listOrphanedAudit(SkillSchema, "skill", "none"), []);
    // The live history of the same key is a different list.
    assert.deepEqual(store.listAuditHistory(SkillSchema, "skill", "gone"), []);

    assert.equal(store.pruneAudit({ keepLast: 0 }), 0);
    assert.equal(
      store.listOrphanedAudit(SkillSchema, "skill", "gone").length,
      3,
    );
    assert.equal(store.pruneAudit({ keepLast: 1, orphans: true }), 1);
    assert.deepEqual(
      store.listOrphanedAudit(SkillSchema, "skill", "gone").map((e) =>
        e.message.name
      ),
      ["o3", "o1"], // o1 is tagged
    );
  });
});

Deno.test("every prune statement reads resource_audit and the orphans through their (kind, resource_id) index", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    seedHistory(path, 9);
    using store = openStore(path);
    const db = Store.connectionOf(store);
    for (const table of ["resource_audit", "resource_audit_orphans"] as const) {
      for (const [name, sql] of Object.entries(pruneSql(table))) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as {
          detail: string;
        }[]).map((r) => r.detail).join(" | ");
        assert.doesNotMatch(
          plan,
          new RegExp(`\\bSCAN ${table}\\b`),
          `${table} ${name}: ${plan}`,
        );
        assert.match(
          plan,
          new RegExp(`\\bSEARCH ${table}\\b`),
          `${table} ${name}: ${plan}`,
        );
      }
    }
  });
});

Deno.test("a prune releases the write lock between batches: another connection writes with no busy wait between any two", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    seedHistory(path, 11);
    using store = openStore(path);
    // A second connection that fails at once if the lock is held (busy timeout 0).
    using writer = openStore(path, { busyTimeoutMs: 0 });
    let batches = 0;
    const result = pruneSnapshots(
      Store.connectionOf(store),
      { keepLast: 1 },
      (fn) => {
        const out = store.transaction(fn);
        batches++;
        writer.saveResource(SkillSchema, "writer", `w${batches}`, skill("w"));
        return out;
      },
      false,
      { batchRows: 20, pauseMs: 0 },
    );
    assert(result.removed > 0);
    assert(batches > 5, `${batches} batches`);
    assert.equal(writer.listResources(SkillSchema, "writer").length, batches);
    // Inside one transaction the lock is held throughout, and the same writer fails.
    assert.throws(
      () =>
        store.transaction(() => {
          store.pruneAudit({ keepLast: 0, keepTagged: false });
          writer.saveResource(SkillSchema, "writer", "blocked", skill("w"));
        }),
      (e) => e instanceof StoreError && e.code === "busy",
    );
  });
});

Deno.test("adaptive batch sizes with pauses remove the same snapshots", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const snaps = seedHistory(path, 21);
    using store = openStore(path);
    const options = { keepLast: 2, olderThan: new Date(Date.UTC(2026, 0, 25)) };
    const expected = expectedRemoved(snaps, options);
    const result = pruneSnapshots(
      Store.connectionOf(store),
      options,
      (fn) => store.transaction(fn),
      false,
      { batchRows: 3, targetMs: 0.001, pauseMs: 1 },
    );
    assert.equal(result.removed, expected.size);
    const left = remainingIds(store);
    for (const s of snaps) assert.equal(left.has(s.id), !expected.has(s.id));
  });
});
