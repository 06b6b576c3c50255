/**
 * Revisions on one connection: the counter, conditional writes, paged lists, the change
 * feed (`changesSince`, `watch`) and compaction. Processes, crashes and upgrades are in
 * tests/reliability/revisions_test.ts and tests/store/revisions_upgrade_test.ts.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import {
  CompactedError,
  ConflictError,
  NotFoundError,
  openStore,
  type ResourceChange,
  type Store,
  StoreError,
} from "../../mod.ts";
import {
  AgentSchema,
  type Skill,
  SkillSchema,
} from "../fixtures/gen/example/v1/example_pb.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

function skill(name: string): Skill {
  return create(SkillSchema, { name });
}

function withStore(
  fn: (store: Store, path: string) => void | Promise<void>,
  options: { changeRetention?: number } = {},
): Promise<void> {
  return withTempDir(async (dir) => {
    const path = `${dir}/store.sqlite`;
    using store = openStore(path, options);
    await fn(store, path);
  });
}

/** Every row of the tables revisions touch, as text, to prove "nothing changed". */
function snapshot(path: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return JSON.stringify(
      [
        "SELECT kind, id, hex(data), updated_at, revision, create_revision FROM resources ORDER BY 1, 2",
        "SELECT * FROM resource_changes ORDER BY 1, 2, 3",
        "SELECT * FROM change_log",
        "SELECT id, type_name FROM message_schemas ORDER BY 1",
      ].map((sql) => db.prepare(sql).all()),
    );
  } finally {
    db.close();
  }
}

const put = (revision: number, kind: string, id: string): ResourceChange => ({
  revision,
  kind,
  id,
  type: "put",
});
const del = (revision: number, kind: string, id: string): ResourceChange => ({
  revision,
  kind,
  id,
  type: "delete",
});

Deno.test("every write takes the next revision; one transaction shares one; reads take none", () =>
  withStore((store) => {
    assert.equal(store.currentRevision(), 0);
    assert.equal(
      store.saveResource(SkillSchema, "skill", "a", skill("a")).revision,
      1,
    );
    assert.equal(
      store.saveResource(SkillSchema, "skill", "b", skill("b")).revision,
      2,
    );
    store.getResource(SkillSchema, "skill", "a");
    store.listResources(SkillSchema, "skill");
    assert.equal(store.currentRevision(), 2);
    const revisions = store.transaction(() => [
      store.saveResource(SkillSchema, "skill", "c", skill("c")).revision,
      store.saveResource(SkillSchema, "skill", "a", skill("a2")).revision,
      store.deleteResource("skill", "b") ? store.currentRevision() : -1,
    ]);
    assert.deepEqual(revisions, [3, 3, 3]);
    assert.equal(store.currentRevision(), 3);
    // A write that changes nothing takes no revision.
    assert.equal(store.deleteResource("skill", "missing"), false);
    assert.equal(store.deleteResourcesByKind("nothing"), 0);
    assert.equal(store.currentRevision(), 3);
    assert.deepEqual(store.changesSince(2), [
      put(3, "skill", "a"),
      del(3, "skill", "b"),
      put(3, "skill", "c"),
    ]);
  }));

Deno.test("saveResource returns its revision and time; getResourceEntry keeps the creating revision", () =>
  withStore((store) => {
    const before = Date.now();
    const first = store.saveResource(SkillSchema, "skill", "a", skill("v1"));
    assert.equal(first.revision, 1);
    assert.ok(first.updatedAt.getTime() >= before);
    store.saveResource(SkillSchema, "skill", "other", skill("x"));
    const third = store.saveResource(SkillSchema, "skill", "a", skill("v2"));
    const entry = store.getResourceEntry(SkillSchema, "skill", "a");
    assert.deepEqual(entry, {
      kind: "skill",
      id: "a",
      message: skill("v2"),
      revision: 3,
      createRevision: 1,
      updatedAt: third.updatedAt,
    });
    assert.throws(
      () => store.getResourceEntry(SkillSchema, "skill", "missing"),
      (e) => e instanceof NotFoundError && e.id === "missing",
    );
    // Deleted and created again: a new creating revision.
    store.deleteResource("skill", "a");
    store.saveResource(SkillSchema, "skill", "a", skill("v3"));
    const again = store.getResourceEntry(SkillSchema, "skill", "a");
    assert.equal(again.createRevision, 5);
    assert.equal(again.revision, 5);
  }));

Deno.test("ifRevision: 0 creates only, N updates only at N; a conflict carries both revisions and changes nothing", () =>
  withStore((store, path) => {
    const created = store.saveResource(SkillSchema, "skill", "a", skill("v1"), {
      ifRevision: 0,
    });
    const before = snapshot(path);
    assert.throws(
      () =>
        store.saveResource(SkillSchema, "skill", "a", skill("dup"), {
          ifRevision: 0,
        }),
      (e) =>
        e instanceof ConflictError && e instanceof StoreError &&
        e.kind === "skill" &&
        e.id === "a" && e.expected === 0 && e.actual === created.revision,
    );
    assert.throws(
      () =>
        store.saveResource(SkillSchema, "skill", "a", skill("stale"), {
          ifRevision: 7,
        }),
      (e) => e instanceof ConflictError && e.expected === 7 && e.actual === 1,
    );
    assert.throws(
      () =>
        store.saveResource(SkillSchema, "skill", "absent", skill("x"), {
          ifRevision: 1,
        }),
      (e) => e instanceof ConflictError && e.expected === 1 && e.actual === 0,
    );
    assert.throws(
      () => store.deleteResource("skill", "a", { ifRevision: 9 }),
      (e) => e instanceof ConflictError && e.expected === 9 && e.actual === 1,
    );
    assert.throws(
      () => store.deleteResource("skill", "a", { ifRevision: 0 }),
      (e) => e instanceof ConflictError && e.expected === 0 && e.actual === 1,
    );
    assert.equal(snapshot(path), before);
    assert.equal(store.currentRevision(), 1);
    const updated = store.saveResource(SkillSchema, "skill", "a", skill("v2"), {
      ifRevision: created.revision,
    });
    assert.equal(updated.revision, 2);
    assert.equal(
      store.deleteResource("skill", "absent", { ifRevision: 0 }),
      false,
    );
    assert.equal(store.deleteResource("skill", "a", { ifRevision: 2 }), true);
    assert.throws(
      () =>
        store.saveResource(SkillSchema, "skill", "a", skill("x"), {
          ifRevision: -1,
        }),
      StoreError,
    );
    assert.throws(
      () =>
        store.saveResource(SkillSchema, "skill", "a", skill("x"), {
          ifRevision: 1.5,
        }),
      StoreError,
    );
  }));

Deno.test("a caught conflict on the first write of a message type records no type either", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "a", skill("v1"));
    const before = snapshot(path);
    // Inside a transaction whose caller catches the conflict, the transaction commits:
    // the conflict must be found before the new type would be recorded.
    store.transaction(() => {
      assert.throws(
        () =>
          store.saveResource(
            AgentSchema,
            "agent",
            "x",
            create(AgentSchema, {}),
            {
              ifRevision: 5,
            },
          ),
        ConflictError,
      );
    });
    assert.equal(snapshot(path), before);
  }));

Deno.test("inside transaction() a conflict rolls back only what the caller lets it", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "a", skill("v1"));
    // Caught: the other write of the transaction commits.
    store.transaction(() => {
      store.saveResource(SkillSchema, "skill", "b", skill("b"));
      assert.throws(
        () =>
          store.saveResource(SkillSchema, "skill", "a", skill("x"), {
            ifRevision: 0,
          }),
        ConflictError,
      );
    });
    assert.equal(store.getResourceEntry(SkillSchema, "skill", "b").revision, 2);
    // Not caught: the whole transaction rolls back, and the revision is not used.
    assert.throws(() =>
      store.transaction(() => {
        store.saveResource(SkillSchema, "skill", "c", skill("c"));
        store.saveResource(SkillSchema, "skill", "a", skill("x"), {
          ifRevision: 0,
        });
      }), ConflictError);
    assert.throws(
      () => store.getResource(SkillSchema, "skill", "c"),
      NotFoundError,
    );
    assert.equal(store.currentRevision(), 2);
    // A savepoint that rolled back its first write: the outer write still gets one
    // revision, the next one.
    store.transaction(() => {
      try {
        store.transaction(() => {
          store.saveResource(SkillSchema, "skill", "d", skill("d"));
          throw new Error("inner");
        });
      } catch { /* the caller lets the inner part go */ }
      store.saveResource(SkillSchema, "skill", "e", skill("e"));
    });
    assert.deepEqual(store.changesSince(2), [put(3, "skill", "e")]);
    assert.equal(
      store.saveResource(SkillSchema, "skill", "f", skill("f")).revision,
      4,
    );
  }));

Deno.test("changesSince: oldest first, one per resource, bulk deletes at one revision, limit never splits a revision", () =>
  withStore((store) => {
    for (let i = 0; i < 5; i++) {
      store.saveResource(SkillSchema, "skill", `s${i}`, skill(`s${i}`));
    }
    store.saveResource(SkillSchema, "agent", "a1", skill("a"));
    store.transaction(() => {
      // Saved then deleted in one transaction: one change, the delete.
      store.saveResource(SkillSchema, "agent", "tmp", skill("t"));
      store.deleteResource("agent", "tmp");
      store.saveResource(SkillSchema, "agent", "a1", skill("a2"));
    });
    assert.equal(store.deleteResourcesByIdPrefix("skill", "s1"), 1);
    assert.equal(store.deleteResourcesByKind("skill"), 4);
    assert.deepEqual(store.changesSince(6), [
      put(7, "agent", "a1"),
      del(7, "agent", "tmp"),
      del(8, "skill", "s1"),
      del(9, "skill", "s0"),
      del(9, "skill", "s2"),
      del(9, "skill", "s3"),
      del(9, "skill", "s4"),
    ]);
    assert.deepEqual(store.changesSince(0, { kind: "agent" }), [
      put(6, "agent", "a1"),
      put(7, "agent", "a1"),
      del(7, "agent", "tmp"),
    ]);
    // A limit of 5 would cut revision 9: it comes whole.
    const limited = store.changesSince(6, { limit: 5 });
    assert.equal(limited.length, 7);
    assert.deepEqual(
      store.changesSince(6, { limit: 2 }).map((c) => c.revision),
      [7, 7],
    );
    assert.deepEqual(store.changesSince(9), []);
    assert.deepEqual(store.changesSince(100), []);
    assert.throws(() => store.changesSince(-1), StoreError);
    assert.throws(() => store.changesSince(0, { limit: 0 }), StoreError);
  }));

Deno.test("compaction: compactChanges drops the old log, CompactedError names the oldest revision, the counter never goes back", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    {
      using store = openStore(path);
      for (let i = 1; i <= 5; i++) {
        store.saveResource(SkillSchema, "skill", `s${i}`, skill(`${i}`));
      }
      assert.equal(store.compactChanges(3), 3);
      assert.throws(
        () => store.changesSince(2),
        (e) =>
          e instanceof CompactedError && e.requestedRevision === 2 &&
          e.oldestRevision === 3,
      );
      assert.deepEqual(store.changesSince(3).map((c) => c.revision), [4, 5]);
      assert.throws(() => store.compactChanges(6), StoreError);
      // Everything compacted, the file closed and opened again: no revision is reused.
      store.compactChanges(5);
      assert.deepEqual(store.changesSince(5), []);
    }
    using store = openStore(path);
    assert.equal(store.currentRevision(), 5);
    assert.equal(
      store.saveResource(SkillSchema, "skill", "s6", skill("6")).revision,
      6,
    );
    assert.deepEqual(store.changesSince(5), [put(6, "skill", "s6")]);
  }));

Deno.test("changeRetention keeps the last N revisions of the log by itself", () =>
  withStore((store) => {
    // Automatic compaction runs when revision 1024 commits.
    for (let i = 1; i <= 1030; i++) {
      store.saveResource(SkillSchema, "skill", `s${i % 7}`, skill(`${i}`));
    }
    assert.throws(
      () => store.changesSince(1023 - 100),
      (e) => e instanceof CompactedError && e.oldestRevision === 1024 - 100,
    );
    assert.equal(store.changesSince(1024 - 100).length, 1030 - 924);
  }, { changeRetention: 100 }));

Deno.test("an invalid changeRetention is refused at open", () =>
  withTempDir((dir) => {
    for (const bad of [0, -1, 1.5, NaN]) {
      assert.throws(
        () => openStore(`${dir}/db.sqlite`, { changeRetention: bad }),
        StoreError,
      );
    }
    openStore(`${dir}/db.sqlite`, { changeRetention: Infinity }).close();
  }));

Deno.test("listResourceEntries pages by id with opaque tokens and sees writes between pages without shifting", () =>
  withStore((store) => {
    const ids = Array.from(
      { length: 25 },
      (_, i) => `id${String(i).padStart(2, "0")}`,
    );
    store.transaction(() => {
      for (const id of ids) {
        store.saveResource(SkillSchema, "skill", id, skill(id));
      }
      store.saveResource(SkillSchema, "zother", "x", skill("x"));
    });
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = store.listResourceEntries(SkillSchema, "skill", {
        limit: 10,
        pageToken: token,
      });
      assert.equal(page.revision, pages === 0 ? 1 : 2);
      for (const entry of page.entries) {
        assert.equal(entry.kind, "skill");
        assert.equal(entry.message.name, entry.id);
        seen.push(entry.id);
      }
      token = page.nextPageToken;
      // Between pages: an earlier id is deleted (no shift), a later one added.
      if (pages++ === 0) {
        store.transaction(() => {
          store.deleteResource("skill", "id00");
          store.saveResource(SkillSchema, "skill", "id99", skill("id99"));
        });
      }
    } while (token !== undefined);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...ids, "id99"]);
    // Exactly one page: no token.
    const all = store.listResourceEntries(SkillSchema, "zother");
    assert.equal(all.entries.length, 1);
    assert.equal(all.nextPageToken, undefined);
    assert.deepEqual(
      store.listResourceEntries(SkillSchema, "none").entries,
      [],
    );
    // A token of another list, a changed token, a bad limit: one clear error each.
    const first = store.listResourceEntries(SkillSchema, "skill", { limit: 1 });
    assert.throws(
      () =>
        store.listResourceEntries(SkillSchema, "zother", {
          pageToken: first.nextPageToken,
        }),
      StoreError,
    );
    assert.throws(
      () =>
        store.listResourceEntries(SkillSchema, "skill", {
          pageToken: first.nextPageToken!.slice(0, -2),
        }),
      StoreError,
    );
    assert.throws(
      () => store.listResourceEntries(SkillSchema, "skill", { limit: 0 }),
      StoreError,
    );
  }));

Deno.test("listAuditHistory pages newest first; snapshots carry the revision they were archived at", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "a", skill("v1"));
    const infos = [];
    for (let i = 0; i < 7; i++) {
      infos.push(
        store.saveAudit(SkillSchema, "skill", "a", skill(`snap${i}`), {
          tag: `t${i}`,
        }),
      );
      store.saveResource(SkillSchema, "skill", "other", skill(`${i}`));
    }
    // A snapshot takes no revision: it records the one the store is at.
    assert.deepEqual(infos.map((i) => i.revision), [1, 2, 3, 4, 5, 6, 7]);
    // In a transaction that changed resources: that transaction's revision.
    const inTx = store.transaction(() => {
      store.saveResource(SkillSchema, "skill", "a", skill("v2"));
      return store.saveAudit(SkillSchema, "skill", "a", skill("v2"));
    });
    assert.equal(inTx.revision, 9);
    assert.equal(store.currentRevision(), 9);
    const whole = store.listAuditHistory(SkillSchema, "skill", "a");
    assert.deepEqual(whole.map((e) => e.revision), [9, 7, 6, 5, 4, 3, 2, 1]);
    const paged = [];
    let token: string | undefined;
    do {
      const page = store.listAuditHistory(SkillSchema, "skill", "a", {
        limit: 3,
        pageToken: token,
      });
      assert.equal(page.revision, 9);
      paged.push(...page.entries);
      token = page.nextPageToken;
    } while (token !== undefined);
    assert.deepEqual(paged, whole);
    const first = store.listAuditHistory(SkillSchema, "skill", "a", {
      limit: 1,
    });
    assert.throws(
      () =>
        store.listAuditHistory(SkillSchema, "skill", "other", {
          pageToken: first.nextPageToken,
        }),
      StoreError,
    );
  }));

Deno.test("watch: replays from afterRevision, then delivers new commits once each, filters by kind, ends on abort", async () => {
  await withStore(async (store) => {
    store.saveResource(SkillSchema, "skill", "old", skill("old"));
    const controller = new AbortController();
    const seen: ResourceChange[] = [];
    const all: ResourceChange[] = [];
    const fromStart = (async () => {
      for await (
        const c of store.watch({ afterRevision: 0, signal: controller.signal })
      ) {
        all.push(c);
      }
    })();
    const agents = (async () => {
      for await (
        const c of store.watch({ kind: "agent", signal: controller.signal })
      ) {
        seen.push(c);
        if (c.type === "delete") break;
      }
    })();
    await new Promise((r) => setTimeout(r, 30));
    store.saveResource(SkillSchema, "agent", "a1", skill("a"));
    await new Promise((r) => setTimeout(r, 30));
    store.transaction(() => {
      store.saveResource(SkillSchema, "skill", "s", skill("s"));
      store.saveResource(SkillSchema, "agent", "a2", skill("a"));
    });
    store.deleteResource("agent", "a1");
    await agents;
    assert.deepEqual(seen, [
      put(2, "agent", "a1"),
      put(3, "agent", "a2"),
      del(4, "agent", "a1"),
    ]);
    await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    await fromStart;
    assert.deepEqual(all, store.changesSince(0));
  });
});

Deno.test("watch from a compacted revision throws CompactedError; closing the store ends a watch", async () => {
  await withTempDir(async (dir) => {
    const store = openStore(`${dir}/db.sqlite`);
    store.saveResource(SkillSchema, "skill", "a", skill("a"));
    store.saveResource(SkillSchema, "skill", "b", skill("b"));
    store.compactChanges(1);
    await assert.rejects(async () => {
      for await (const _ of store.watch({ afterRevision: 0 })) { /* never */ }
    }, (e) => e instanceof CompactedError && e.oldestRevision === 1);
    assert.throws(() => store.watch({ afterRevision: -2 }), StoreError);
    const waiting = (async () => {
      const got = [];
      for await (const c of store.watch()) got.push(c);
      return got;
    })();
    await new Promise((r) => setTimeout(r, 30));
    store.close();
    assert.deepEqual(await waiting, []);
  });
});
