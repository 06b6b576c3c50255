/**
 * One behaviour suite, run against every backend through `AsyncStore`: the same calls
 * must give the same results and the same errors (classes and fields) on the embedded
 * SQLite store and on PostgreSQL.
 */
import assert from "node:assert/strict";
import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import { BytesValueSchema, StructSchema } from "@bufbuild/protobuf/wkt";
import {
  type AsyncStore,
  type AuditEntry,
  AuditNotFoundError,
  CompactedError,
  ConflictError,
  NotFoundError,
  type Page,
  type ReadOptions,
  type ResourceChange,
  type SnapshotRef,
  StoreClosedError,
  StoreError,
  TypeMismatchError,
} from "../../mod.ts";
import {
  AgentSchema,
  type Skill,
  SkillSchema,
} from "../fixtures/gen/example/v1/example_pb.ts";
import { type Backend, BACKENDS, type Fixture } from "../helpers/backends.ts";
import { mulberry32 } from "../helpers/prng.ts";

const skill = (name: string) => create(SkillSchema, { name });

function behaviour(
  name: string,
  fn: (store: AsyncStore, fixture: Fixture, backend: Backend) => Promise<void>,
): void {
  for (const backend of BACKENDS) {
    Deno.test({
      name: `${backend.name}: ${name}`,
      fn: async () => {
        const fixture = await backend.open();
        try {
          await fn(fixture.store, fixture, backend);
        } finally {
          await fixture.cleanup();
        }
      },
    });
  }
}

async function rejects(
  promise: Promise<unknown>,
  check: (error: unknown) => boolean,
): Promise<void> {
  await assert.rejects(promise, (error) => {
    assert.ok(check(error), `unexpected error: ${String(error)}`);
    return true;
  });
}

behaviour(
  "save, get and list round-trip messages; ids list in code point order on any server locale",
  async (store) => {
    for (const id of ["b", "B", "a", "é", "Z", "a b", "a\u{1F600}", "aa"]) {
      await store.saveResource(SkillSchema, "skill", id, skill(id));
    }
    const names = (await store.listResources(SkillSchema, "skill")).map((s) =>
      s.name
    );
    assert.deepEqual(names, [
      "B",
      "Z",
      "a",
      "a b",
      "aa",
      "a\u{1F600}",
      "b",
      "é",
    ]);
    assert.equal(
      (await store.getResource(SkillSchema, "skill", "é")).name,
      "é",
    );
    const bytes = create(BytesValueSchema, {
      value: new Uint8Array([0, 1, 254, 255]),
    });
    await store.saveResource(BytesValueSchema, "blob", "b1", bytes);
    const back = await store.getResource(BytesValueSchema, "blob", "b1");
    assert.deepEqual(back, bytes);
    assert.equal(Object.getPrototypeOf(back.value), Uint8Array.prototype);
    assert.deepEqual(await store.listResources(SkillSchema, "none"), []);
  },
);

behaviour("errors carry the same classes and fields", async (store) => {
  await rejects(
    store.getResource(SkillSchema, "skill", "missing"),
    (e) =>
      e instanceof NotFoundError && e.kind === "skill" && e.id === "missing",
  );
  await rejects(
    store.getResourceEntry(SkillSchema, "skill", "missing"),
    (e) => e instanceof NotFoundError && e.id === "missing",
  );
  await rejects(
    store.saveAudit(SkillSchema, "skill", "missing", skill("x")),
    (e) =>
      e instanceof NotFoundError && e.kind === "skill" && e.id === "missing",
  );
  await store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
  await rejects(
    store.getAuditByTag(SkillSchema, "skill", "s1", "v9"),
    (e) =>
      e instanceof AuditNotFoundError && e.kind === "skill" && e.id === "s1" &&
      e.lookup.tag === "v9",
  );
  await rejects(
    store.getAuditByHash(SkillSchema, "skill", "s1", "h9"),
    (e) => e instanceof AuditNotFoundError && e.lookup.versionHash === "h9",
  );
  await rejects(
    store.saveResource(SkillSchema, "", "s1", skill("x")),
    (e) =>
      e instanceof StoreError &&
      /kind must be a non-empty string/.test(e.message),
  );
  await rejects(
    store.saveResource(SkillSchema, "skill", "\uD800", skill("x")),
    (e) => e instanceof StoreError && /well-formed/.test(e.message),
  );
  await rejects(
    store.listResourceEntries(SkillSchema, "skill", { pageToken: "nonsense" }),
    (e) => e instanceof StoreError && /pageToken/.test(e.message),
  );
});

behaviour(
  "NUL in kinds, ids, hashes and tags is refused the same way on every backend",
  async (store) => {
    await rejects(
      store.saveResource(SkillSchema, "skill", "a\u0000b", skill("x")),
      (e) => e instanceof StoreError && /NUL/.test(e.message),
    );
    await rejects(
      store.getResource(SkillSchema, "sk\u0000ill", "a"),
      (e) => e instanceof StoreError && /NUL/.test(e.message),
    );
    await store.saveResource(SkillSchema, "skill", "s1", skill("x"));
    await rejects(
      store.saveAudit(SkillSchema, "skill", "s1", skill("x"), {
        tag: "v\u00001",
      }),
      (e) => e instanceof StoreError && /NUL/.test(e.message),
    );
    // Inside message bytes NUL is just data.
    await store.saveResource(SkillSchema, "skill", "s2", skill("a\u0000b"));
    assert.equal(
      (await store.getResource(SkillSchema, "skill", "s2")).name,
      "a\u0000b",
    );
    assert.equal(await store.currentRevision(), 2);
  },
);

behaviour(
  "names too long for PostgreSQL's indexes are refused the same way on every backend; the longest accepted round-trip",
  async (store) => {
    // Random text, which PostgreSQL cannot compress into its index limit.
    const random = mulberry32(12);
    const text = (n: number) =>
      Array.from(
        { length: n },
        () => String.fromCharCode(0x21 + random() % 94),
      ).join("");
    const tooBig = (e: unknown) =>
      e instanceof StoreError && e.code === "too_big";
    const id = text(2_600 - "skill".length);
    await store.saveResource(SkillSchema, "skill", id, skill("longest"));
    assert.equal(
      (await store.getResource(SkillSchema, "skill", id)).name,
      "longest",
    );
    await rejects(
      store.saveResource(SkillSchema, "skill", `${id}é`, skill("x")),
      tooBig,
    );
    await rejects(
      store.saveResource(SkillSchema, text(3_000), "a", skill("x")),
      tooBig,
    );
    await store.saveResource(SkillSchema, "skill", "s1", skill("x"));
    const tag = text(2_600 - "skill".length - "s1".length);
    await store.saveAudit(SkillSchema, "skill", "s1", skill("x"), {
      tag,
      versionHash: tag,
    });
    assert.equal(
      (await store.getAuditByTag(SkillSchema, "skill", "s1", tag)).name,
      "x",
    );
    await rejects(
      store.saveAudit(SkillSchema, "skill", "s1", skill("x"), {
        versionHash: `${tag}!`,
      }),
      tooBig,
    );
    assert.equal(await store.currentRevision(), 2);
  },
);

behaviour(
  "history: newest first, labels kept, lookups find the newest; deleting the resource cascades",
  async (store) => {
    await store.saveResource(SkillSchema, "skill", "s1", skill("v3"));
    const a = await store.saveAudit(SkillSchema, "skill", "s1", skill("v1"), {
      versionHash: "h1",
      tag: "stable",
    });
    const b = await store.saveAudit(SkillSchema, "skill", "s1", skill("v2"), {
      tag: "stable",
      versionHash: "",
    });
    assert.ok(b.id > a.id);
    assert.ok(b.archivedAt.getTime() >= a.archivedAt.getTime());
    const history = await store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(history.map((h) => h.message.name), ["v2", "v1"]);
    assert.deepEqual(history.map((h) => [h.tag, h.versionHash]), [
      ["stable", undefined],
      ["stable", "h1"],
    ]);
    assert.equal(
      (await store.getAuditByTag(SkillSchema, "skill", "s1", "stable")).name,
      "v2",
    );
    assert.equal(
      (await store.getAuditByHash(SkillSchema, "skill", "s1", "h1")).name,
      "v1",
    );
    assert.equal(await store.deleteResource("skill", "s1"), true);
    assert.deepEqual(
      await store.listAuditHistory(SkillSchema, "skill", "s1"),
      [],
    );
    assert.equal(await store.deleteResource("skill", "s1"), false);
    await store.saveResource(SkillSchema, "skill", "s2", skill("x"));
    await store.saveAudit(SkillSchema, "skill", "s2", skill("x"));
    await store.saveAudit(SkillSchema, "skill", "s2", skill("y"));
    assert.equal(await store.deleteAuditByResourceId("skill", "s2"), 2);
    assert.equal(
      (await store.getResource(SkillSchema, "skill", "s2")).name,
      "x",
    );
  },
);

behaviour(
  "prefix deletes are literal: % and _ are plain characters",
  async (store) => {
    for (const id of ["a_1", "ab", "a%x", "a_", "b_1", "a"]) {
      await store.saveResource(SkillSchema, "skill", id, skill(id));
    }
    assert.equal(await store.deleteResourcesByIdPrefix("skill", "a_"), 2);
    assert.equal(await store.deleteResourcesByIdPrefix("skill", "a%"), 1);
    const left = (await store.listResources(SkillSchema, "skill")).map((s) =>
      s.name
    );
    assert.deepEqual(left, ["a", "ab", "b_1"]);
    assert.equal(await store.deleteResourcesByKind("skill"), 3);
    assert.equal(await store.deleteResourcesByKind("skill"), 0);
  },
);

behaviour(
  "revisions: one per write, one per transaction, reads take none; entries carry both revisions",
  async (store) => {
    assert.equal(await store.currentRevision(), 0);
    const first = await store.saveResource(
      SkillSchema,
      "skill",
      "s1",
      skill("1"),
    );
    assert.equal(first.revision, 1);
    assert.ok(first.updatedAt instanceof Date);
    await store.saveResource(SkillSchema, "skill", "s1", skill("2"));
    await store.transaction(async (tx) => {
      await tx.saveResource(SkillSchema, "skill", "s2", skill("a"));
      await tx.saveResource(SkillSchema, "skill", "s3", skill("b"));
      assert.equal(await tx.currentRevision(), 3);
    });
    await store.getResource(SkillSchema, "skill", "s1");
    assert.equal(await store.currentRevision(), 3);
    const entry = await store.getResourceEntry(SkillSchema, "skill", "s1");
    assert.deepEqual(
      [
        entry.kind,
        entry.id,
        entry.message.name,
        entry.revision,
        entry.createRevision,
      ],
      ["skill", "s1", "2", 2, 1],
    );
    const snap = await store.saveAudit(SkillSchema, "skill", "s1", skill("2"));
    assert.equal(snap.revision, 3);
    assert.equal(await store.currentRevision(), 3);
  },
);

behaviour(
  "conditional writes: create only, update at a revision, conflicts carry both and change nothing",
  async (store) => {
    const created = await store.saveResource(
      SkillSchema,
      "skill",
      "s1",
      skill("1"),
      {
        ifRevision: 0,
      },
    );
    await rejects(
      store.saveResource(SkillSchema, "skill", "s1", skill("x"), {
        ifRevision: 0,
      }),
      (e) =>
        e instanceof ConflictError && e instanceof StoreError &&
        e.kind === "skill" &&
        e.id === "s1" && e.expected === 0 && e.actual === created.revision,
    );
    const updated = await store.saveResource(
      SkillSchema,
      "skill",
      "s1",
      skill("2"),
      {
        ifRevision: created.revision,
      },
    );
    await rejects(
      store.saveResource(SkillSchema, "skill", "s1", skill("x"), {
        ifRevision: created.revision,
      }),
      (e) => e instanceof ConflictError && e.expected === 1 && e.actual === 2,
    );
    await rejects(
      store.saveResource(SkillSchema, "skill", "nope", skill("x"), {
        ifRevision: 5,
      }),
      (e) => e instanceof ConflictError && e.expected === 5 && e.actual === 0,
    );
    await rejects(
      store.deleteResource("skill", "s1", { ifRevision: 1 }),
      (e) => e instanceof ConflictError && e.expected === 1 && e.actual === 2,
    );
    await rejects(
      store.deleteResource("skill", "s1", { ifRevision: 0 }),
      (e) => e instanceof ConflictError && e.expected === 0 && e.actual === 2,
    );
    assert.equal(await store.currentRevision(), updated.revision);
    assert.equal(
      (await store.getResource(SkillSchema, "skill", "s1")).name,
      "2",
    );
    assert.equal(
      await store.deleteResource("skill", "s1", { ifRevision: 2 }),
      true,
    );
    assert.equal(
      await store.deleteResource("skill", "s1", { ifRevision: 0 }),
      false,
    );
    assert.equal(await store.currentRevision(), 3);
  },
);

behaviour(
  "transactions commit together, roll back on a throw; nested ones are savepoints",
  async (store) => {
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.saveResource(SkillSchema, "skill", "gone", skill("x"));
        throw new Error("boom");
      }),
      /boom/,
    );
    await rejects(
      store.getResource(SkillSchema, "skill", "gone"),
      (e) => e instanceof NotFoundError,
    );
    assert.equal(await store.currentRevision(), 0);
    const result = await store.transaction(async (tx) => {
      await tx.saveResource(SkillSchema, "skill", "kept", skill("k"));
      await assert.rejects(
        tx.transaction(async (inner) => {
          await inner.saveResource(SkillSchema, "skill", "inner", skill("i"));
          throw new Error("inner");
        }),
        /inner/,
      );
      await rejects(
        tx.saveResource(SkillSchema, "skill", "kept", skill("x"), {
          ifRevision: 0,
        }),
        (e) => e instanceof ConflictError,
      );
      await tx.transaction(async (inner) => {
        await inner.saveResource(SkillSchema, "skill", "nested", skill("n"));
      });
      return "done";
    });
    assert.equal(result, "done");
    const ids = (await store.listResourceEntries(SkillSchema, "skill")).entries
      .map((e) => [
        e.id,
        e.revision,
      ]);
    assert.deepEqual(ids, [["kept", 1], ["nested", 1]]);
    assert.deepEqual(await store.changesSince(0), [
      { revision: 1, kind: "skill", id: "kept", type: "put" },
      { revision: 1, kind: "skill", id: "nested", type: "put" },
    ]);
  },
);

behaviour(
  "a transaction rethrows its callback's own error, at any depth, as it was thrown",
  async (store) => {
    class Abort extends Error {
      constructor(readonly reason: string) {
        super(`aborted: ${reason}`);
      }
    }
    const mine = new Abort("outer");
    await assert.rejects(
      store.transaction(() => Promise.reject(mine)),
      (e) => e === mine,
    );
    await assert.rejects(
      store.transaction(() => Promise.reject("not an Error")),
      (e) => e === "not an Error",
    );
    const inner = new Abort("inner");
    await store.transaction(async (tx) => {
      await assert.rejects(
        tx.transaction(() => Promise.reject(inner)),
        (e) => e === inner,
      );
    });
  },
);

behaviour(
  "a nested transaction's store refuses use after its savepoint settled",
  async (store) => {
    await store.transaction(async (tx) => {
      let settled: AsyncStore | undefined;
      await tx.transaction((inner) => {
        settled = inner;
        return Promise.resolve();
      });
      await rejects(
        settled!.saveResource(SkillSchema, "skill", "late", skill("l")),
        (e) => e instanceof StoreError && e.code === undefined,
      );
      assert.deepEqual(await tx.listResources(SkillSchema, "skill"), []);
    });
    assert.deepEqual(await store.listResources(SkillSchema, "skill"), []);
    assert.equal(await store.currentRevision(), 0);
  },
);

behaviour(
  "in a transaction, a refused or empty write uses no revision",
  async (store) => {
    await store.saveResource(SkillSchema, "skill", "a", skill("a"));
    await store.transaction(async (tx) => {
      await rejects(
        tx.saveResource(SkillSchema, "skill", "a", skill("b"), {
          ifRevision: 7,
        }),
        (e) => e instanceof ConflictError && e.actual === 1,
      );
      await rejects(
        tx.deleteResource("skill", "a", { ifRevision: 7 }),
        (e) => e instanceof ConflictError && e.actual === 1,
      );
      assert.equal(await tx.deleteResource("skill", "none"), false);
      assert.equal(await tx.deleteResourcesByKind("none"), 0);
      assert.equal(await tx.deleteResourcesByIdPrefix("skill", "z"), 0);
    });
    assert.equal(await store.currentRevision(), 1);
    // A later write of the same transaction takes the next revision, not one after it.
    const saved = await store.transaction(async (tx) => {
      assert.equal(await tx.deleteResource("skill", "none"), false);
      return await tx.saveResource(SkillSchema, "skill", "b", skill("b"));
    });
    assert.equal(saved.revision, 2);
    assert.deepEqual(await store.changesSince(1), [
      { revision: 2, kind: "skill", id: "b", type: "put" },
    ]);
    // Writes of one transaction at once: a refused one never takes back the revision
    // another one wrote at.
    const [refused, written] = await store.transaction((tx) =>
      Promise.allSettled([
        tx.deleteResource("skill", "a", { ifRevision: 7 }),
        tx.saveResource(SkillSchema, "skill", "c", skill("c")),
      ])
    );
    assert.equal(refused.status, "rejected");
    assert.equal(written.status, "fulfilled");
    assert.equal(written.value.revision, await store.currentRevision());
    const next = await store.saveResource(
      SkillSchema,
      "skill",
      "d",
      skill("d"),
    );
    assert.equal(next.revision, written.value.revision + 1);
  },
);

behaviour(
  "paging: keyset pages by id with opaque tokens, history pages newest first",
  async (store) => {
    for (const id of ["a", "b", "c", "d", "e"]) {
      await store.saveResource(SkillSchema, "skill", id, skill(id));
    }
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await store.listResourceEntries(SkillSchema, "skill", {
        limit: 2,
        pageToken: token,
      });
      assert.equal(page.revision, pages === 0 ? 5 : 6);
      seen.push(...page.entries.map((e) => e.id));
      token = page.nextPageToken;
      pages++;
      if (pages === 1) await store.deleteResource("skill", "c");
    } while (token !== undefined);
    assert.deepEqual(seen, ["a", "b", "d", "e"]);
    for (let i = 0; i < 5; i++) {
      await store.saveAudit(SkillSchema, "skill", "a", skill(`v${i}`));
    }
    const history: string[] = [];
    token = undefined;
    do {
      const page: Page<AuditEntry<Skill>> = await store.listAuditHistory(
        SkillSchema,
        "skill",
        "a",
        { limit: 2, pageToken: token },
      );
      history.push(...page.entries.map((e) => e.message.name));
      token = page.nextPageToken;
    } while (token !== undefined);
    assert.deepEqual(history, ["v4", "v3", "v2", "v1", "v0"]);
    const empty = await store.listResourceEntries(SkillSchema, "none", {
      limit: 3,
    });
    assert.deepEqual(empty, { entries: [], revision: 6 });
  },
);

behaviour(
  "change feed: oldest first, bulk deletes one per resource at one revision, limit never splits a revision",
  async (store) => {
    await store.saveResource(SkillSchema, "skill", "s1", skill("1"));
    await store.saveResource(
      StructSchema,
      "agent",
      "a1",
      fromJson(StructSchema, {}),
    );
    await store.transaction(async (tx) => {
      for (const id of ["s2", "s3", "s4"]) {
        await tx.saveResource(SkillSchema, "skill", id, skill(id));
      }
    });
    assert.equal(await store.deleteResourcesByKind("skill"), 4);
    const changes = await store.changesSince(0);
    assert.deepEqual(
      changes.map((c) => `${c.revision} ${c.type} ${c.kind}/${c.id}`),
      [
        "1 put skill/s1",
        "2 put agent/a1",
        "3 put skill/s2",
        "3 put skill/s3",
        "3 put skill/s4",
        "4 delete skill/s1",
        "4 delete skill/s2",
        "4 delete skill/s3",
        "4 delete skill/s4",
      ],
    );
    assert.deepEqual(
      (await store.changesSince(1, { limit: 2 })).map((c) => c.revision),
      [2, 3, 3, 3],
    );
    assert.deepEqual(
      (await store.changesSince(0, { kind: "agent" })).map((c) => c.id),
      ["a1"],
    );
    assert.deepEqual(await store.changesSince(4), []);
  },
);

behaviour(
  "compaction drops old changes; reading before it throws CompactedError; the counter never goes back",
  async (store) => {
    for (const id of ["a", "b", "c"]) {
      await store.saveResource(SkillSchema, "skill", id, skill(id));
    }
    assert.equal(await store.compactChanges(2), 2);
    await rejects(
      store.changesSince(1),
      (e) =>
        e instanceof CompactedError && e.requestedRevision === 1 &&
        e.oldestRevision === 2,
    );
    assert.deepEqual((await store.changesSince(2)).map((c) => c.id), ["c"]);
    await rejects(store.compactChanges(9), (e) => e instanceof StoreError);
    assert.equal(await store.compactChanges(3), 1);
    assert.equal(await store.currentRevision(), 3);
    const next = await store.saveResource(
      SkillSchema,
      "skill",
      "d",
      skill("d"),
    );
    assert.equal(next.revision, 4);
    const watch = store.watch({ afterRevision: 0 });
    await rejects(watch.next(), (e) => e instanceof CompactedError);
  },
);

behaviour(
  "watch without afterRevision starts at the revision when watch() is called: writes made before the first next() are delivered",
  async (store) => {
    await store.saveResource(SkillSchema, "skill", "before", skill("0"));
    const controller = new AbortController();
    const changes = store.watch({ signal: controller.signal });
    // Written after the call, before iterating (and before LISTEN is set up).
    await store.saveResource(SkillSchema, "skill", "w1", skill("1"));
    await store.saveResource(SkillSchema, "skill", "w2", skill("2"));
    const first = await changes.next();
    const second = await changes.next();
    controller.abort();
    await changes.return();
    assert.deepEqual(
      [first.value, second.value].map((c) => c && `${c.revision} ${c.id}`),
      ["2 w1", "3 w2"],
    );
  },
);

behaviour(
  "watch replays from afterRevision, then delivers new commits once each, by kind, until aborted",
  async (store) => {
    await store.saveResource(SkillSchema, "skill", "s1", skill("1"));
    const controller = new AbortController();
    const seen: ResourceChange[] = [];
    const watching = (async () => {
      for await (
        const change of store.watch({
          afterRevision: 0,
          kind: "skill",
          signal: controller.signal,
        })
      ) {
        seen.push(change);
        if (seen.length === 3) controller.abort();
      }
    })();
    await store.saveResource(
      StructSchema,
      "agent",
      "a1",
      fromJson(StructSchema, {}),
    );
    await store.saveResource(SkillSchema, "skill", "s2", skill("2"));
    await store.deleteResource("skill", "s1");
    await watching;
    assert.deepEqual(seen.map((c) => `${c.revision} ${c.type} ${c.id}`), [
      "1 put s1",
      "3 put s2",
      "4 delete s1",
    ]);
  },
);

behaviour(
  "read-only: reads work, every write throws StoreError and changes nothing",
  async (store, fixture) => {
    await store.saveResource(SkillSchema, "skill", "s1", skill("1"));
    await using reader = await fixture.reopen({ readOnly: true });
    assert.equal(
      (await reader.getResource(SkillSchema, "skill", "s1")).name,
      "1",
    );
    assert.equal(await reader.currentRevision(), 1);
    const writes: (() => Promise<unknown>)[] = [
      () => reader.saveResource(SkillSchema, "skill", "s2", skill("2")),
      () => reader.deleteResource("skill", "s1"),
      () => reader.deleteResourcesByKind("skill"),
      () => reader.saveAudit(SkillSchema, "skill", "s1", skill("1")),
      () => reader.deleteAuditByResourceId("skill", "s1"),
      () => reader.compactChanges(1),
      () => reader.pruneAudit({ keepLast: 0 }),
      () => reader.restoreResource(SkillSchema, "skill", "s1", { auditId: 1 }),
    ];
    for (const write of writes) {
      await rejects(
        write(),
        (e) => e instanceof StoreError && e.code === "read_only",
      );
    }
    assert.equal(await store.currentRevision(), 1);
    assert.deepEqual(
      (await store.listResources(SkillSchema, "skill")).map((s) => s.name),
      ["1"],
    );
  },
);

behaviour(
  "a closed store throws StoreClosedError; close is idempotent and ends its watches",
  async (_store, fixture) => {
    const other = await fixture.reopen();
    const seen: ResourceChange[] = [];
    const watching = (async () => {
      for await (const change of other.watch({ afterRevision: 0 })) {
        seen.push(change);
      }
    })();
    await other.saveResource(SkillSchema, "skill", "s1", skill("1"));
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    await other.close();
    await other.close();
    await watching;
    assert.equal(seen.length, 1);
    await rejects(
      other.getResource(SkillSchema, "skill", "s1"),
      (e) => e instanceof StoreClosedError,
    );
  },
);

behaviour(
  "a row read with another message type throws TypeMismatchError naming both",
  async (store) => {
    await store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    await store.saveAudit(SkillSchema, "skill", "s1", skill("s1"), {
      tag: "v1",
    });
    const isMismatch = (e: unknown) =>
      e instanceof TypeMismatchError && e.kind === "skill" && e.id === "s1" &&
      e.recordedType === SkillSchema.typeName &&
      e.requestedType === AgentSchema.typeName;
    await rejects(store.getResource(AgentSchema, "skill", "s1"), isMismatch);
    await rejects(
      store.getResourceEntry(AgentSchema, "skill", "s1"),
      isMismatch,
    );
    await rejects(
      store.getAuditByTag(AgentSchema, "skill", "s1", "v1"),
      isMismatch,
    );
    await rejects(
      store.listAuditHistory(AgentSchema, "skill", "s1"),
      isMismatch,
    );
    await rejects(
      store.listResources(AgentSchema, "skill"),
      (e) =>
        e instanceof TypeMismatchError &&
        e.recordedType === SkillSchema.typeName,
    );
  },
);

behaviour(
  "archivedAt never goes backwards along a history when the clock steps back",
  async (store) => {
    await store.saveResource(SkillSchema, "skill", "s1", skill("now"));
    const realNow = Date.now;
    const first = await store.saveAudit(
      SkillSchema,
      "skill",
      "s1",
      skill("first"),
    );
    try {
      // An NTP correction: the clock steps back one hour.
      Date.now = () => realNow() - 3_600_000;
      const second = await store.saveAudit(
        SkillSchema,
        "skill",
        "s1",
        skill("second"),
      );
      assert.ok(second.archivedAt.getTime() >= first.archivedAt.getTime());
    } finally {
      Date.now = realNow;
    }
    const history = await store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(history.map((h) => h.message.name), ["second", "first"]);
  },
);

behaviour(
  "a write on the outer store while a transaction runs is not part of it",
  async (store) => {
    let outer: Promise<unknown> | undefined;
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.saveResource(SkillSchema, "skill", "inside", skill("in"));
        // Not awaited here: awaiting the outer store inside the callback would wait for
        // this very transaction on SQLite.
        outer = store.saveResource(
          SkillSchema,
          "skill",
          "outside",
          skill("out"),
        );
        await new Promise((r) => setTimeout(r, 20));
        throw new Error("roll back");
      }),
      /roll back/,
    );
    await outer;
    const ids = (await store.listResourceEntries(SkillSchema, "skill")).entries
      .map((e) => e.id);
    assert.deepEqual(ids, ["outside"]);
  },
);

/** Runs `fn` with `Date.now` at `times` in turn (one per call), then the real clock. */
async function atTimes<T>(times: string[], fn: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  const queue = times.map((t) => Date.parse(t));
  Date.now = () => queue.shift() ?? realNow();
  try {
    return await fn();
  } finally {
    Date.now = realNow;
  }
}

const DAY = (n: number) => `2026-01-0${n}T00:00:00.000Z`;

/** skill/s1 with snapshots v1 (tagged stable) .. v5 archived on days 1..5. */
async function fiveSnapshots(store: AsyncStore): Promise<void> {
  await store.saveResource(SkillSchema, "skill", "s1", skill("v5"));
  await atTimes([1, 2, 3, 4, 5].map(DAY), async () => {
    for (let n = 1; n <= 5; n++) {
      await store.saveAudit(
        SkillSchema,
        "skill",
        "s1",
        skill(`v${n}`),
        n === 1 ? { tag: "stable" } : {},
      );
    }
  });
}

const names = (entries: AuditEntry<Skill>[]) =>
  entries.map((e) => e.message.name);

behaviour(
  "pruneAudit: keepLast, olderThan and both; tagged kept unless keepTagged: false; kind and id narrow it; no revision taken",
  async (store) => {
    await fiveSnapshots(store);
    await store.saveResource(SkillSchema, "tool", "t1", skill("t"));
    await store.saveAudit(SkillSchema, "tool", "t1", skill("t1"));
    await store.saveAudit(SkillSchema, "tool", "t1", skill("t2"));
    const revision = await store.currentRevision();
    const history = () => store.listAuditHistory(SkillSchema, "skill", "s1");
    // Outside the newest 3 (v2, v1) and older than day 3.5: v2 (v1 is tagged).
    assert.equal(
      await store.pruneAudit({
        keepLast: 3,
        olderThan: new Date("2026-01-03T12:00:00.000Z"),
      }),
      1,
    );
    assert.deepEqual(names(await history()), ["v5", "v4", "v3", "v1"]);
    assert.equal(
      await store.pruneAudit({
        kind: "skill",
        olderThan: new Date("2026-01-04T12:00:00.000Z"),
      }),
      2,
    );
    assert.deepEqual(names(await history()), ["v5", "v1"]);
    assert.equal(
      (await store.listAuditHistory(SkillSchema, "tool", "t1")).length,
      2,
    );
    assert.equal(
      await store.pruneAudit({
        kind: "skill",
        id: "s1",
        keepLast: 0,
        keepTagged: false,
      }),
      2,
    );
    assert.deepEqual(await history(), []);
    assert.equal(await store.pruneAudit({ keepLast: 1 }), 1);
    assert.deepEqual(
      names(await store.listAuditHistory(SkillSchema, "tool", "t1")),
      ["t2"],
    );
    assert.equal(await store.pruneAudit({ keepLast: 1 }), 0);
    assert.equal(await store.currentRevision(), revision);
  },
);

behaviour(
  "pruneAudit refuses without keepLast or olderThan, and bad values, before writing",
  async (store) => {
    await fiveSnapshots(store);
    const refused = [
      { kind: "skill" },
      {},
      { keepLast: -1 },
      { keepLast: 1.5 },
      { olderThan: new Date("nonsense") },
      { keepLast: 1, id: "s1" },
      { keepLast: 1, kind: "" },
      { keepLast: 1, orphans: "yes" as unknown as boolean },
    ];
    for (const options of refused) {
      await rejects(
        store.pruneAudit(options),
        (e) => e instanceof StoreError && e.code === undefined,
      );
    }
    await rejects(
      store.pruneAudit({ kind: "skill" }),
      (e) => e instanceof StoreError && /keepLast or olderThan/.test(e.message),
    );
    assert.equal(
      (await store.listAuditHistory(SkillSchema, "skill", "s1")).length,
      5,
    );
  },
);

behaviour(
  "pruneAudit inside transaction() is part of it: rolled back with it, committed with it",
  async (store) => {
    await fiveSnapshots(store);
    await assert.rejects(
      store.transaction(async (tx) => {
        assert.equal(await tx.pruneAudit({ keepLast: 1 }), 3);
        assert.equal(
          (await tx.listAuditHistory(SkillSchema, "skill", "s1")).length,
          2,
        );
        throw new Error("undo");
      }),
      /undo/,
    );
    assert.equal(
      (await store.listAuditHistory(SkillSchema, "skill", "s1")).length,
      5,
    );
    const removed = await store.transaction(async (tx) => {
      await tx.saveResource(SkillSchema, "skill", "s2", skill("x"));
      return await tx.pruneAudit({ keepLast: 1, keepTagged: false });
    });
    assert.equal(removed, 4);
    assert.deepEqual(
      names(await store.listAuditHistory(SkillSchema, "skill", "s1")),
      ["v5"],
    );
  },
);

behaviour(
  "pruneAudit over many resources and kinds removes exactly the selected snapshots",
  async (store) => {
    // Enough resources for several batches whatever the batch size settles at.
    await store.transaction(async (tx) => {
      for (const kind of ["a", "b", "c"]) {
        for (let i = 0; i < 40; i++) {
          const id = `r${String(i).padStart(2, "0")}`;
          await tx.saveResource(SkillSchema, kind, id, skill(id));
          for (let n = 0; n < 3; n++) {
            await tx.saveAudit(SkillSchema, kind, id, skill(`${id}-${n}`));
          }
        }
      }
    });
    assert.equal(await store.pruneAudit({ keepLast: 2, kind: "b" }), 40);
    assert.equal(await store.pruneAudit({ keepLast: 1 }), 200);
    for (const kind of ["a", "b", "c"]) {
      const left = await store.listAuditHistory(SkillSchema, kind, "r39");
      assert.deepEqual(names(left), ["r39-2"]);
    }
  },
);

behaviour(
  "orphaned snapshots: listed newest first with their labels, pruned only with orphans: true",
  async (store, fixture) => {
    const data = (n: string) => toBinary(SkillSchema, skill(n));
    const ids = await fixture.insertOrphans([
      {
        kind: "skill",
        resourceId: "gone",
        data: data("o1"),
        archivedAt: DAY(1),
        tag: "v1",
      },
      {
        kind: "skill",
        resourceId: "gone",
        data: data("o2"),
        archivedAt: DAY(2),
        versionHash: "h2",
      },
      {
        kind: "skill",
        resourceId: "gone",
        data: data("o3"),
        archivedAt: DAY(2),
      },
    ]);
    const orphans = await store.listOrphanedAudit(SkillSchema, "skill", "gone");
    assert.deepEqual(orphans, [
      {
        id: ids[2],
        archivedAt: new Date(DAY(2)),
        revision: 0,
        message: skill("o3"),
      },
      {
        id: ids[1],
        archivedAt: new Date(DAY(2)),
        revision: 0,
        message: skill("o2"),
        versionHash: "h2",
      },
      {
        id: ids[0],
        archivedAt: new Date(DAY(1)),
        revision: 0,
        message: skill("o1"),
        tag: "v1",
      },
    ]);
    assert.deepEqual(
      await store.listOrphanedAudit(SkillSchema, "skill", "other"),
      [],
    );
    assert.equal(await store.pruneAudit({ keepLast: 0 }), 0);
    assert.equal(
      await store.pruneAudit({ keepLast: 1, orphans: true }),
      1, // o2: o3 is the newest, o1 is tagged
    );
    assert.deepEqual(
      names(await store.listOrphanedAudit(SkillSchema, "skill", "gone")),
      ["o3", "o1"],
    );
    assert.equal(await store.deleteAuditByResourceId("skill", "gone"), 2);
  },
);

behaviour(
  "restoreResource: a new change at a new revision, in the change feed; ifRevision honoured; errors carry their fields",
  async (store) => {
    await store.saveResource(SkillSchema, "skill", "s1", skill("v1"));
    const tagged = await store.saveAudit(
      SkillSchema,
      "skill",
      "s1",
      skill("v1"),
      { tag: "stable", versionHash: "h1" },
    );
    const broken = await store.saveResource(
      SkillSchema,
      "skill",
      "s1",
      skill("v2"),
    );
    await store.saveAudit(SkillSchema, "skill", "s1", skill("v2"));
    await rejects(
      store.restoreResource(SkillSchema, "skill", "s1", { tag: "stable" }, {
        ifRevision: broken.revision - 1,
      }),
      (e) =>
        e instanceof ConflictError && e.kind === "skill" && e.id === "s1" &&
        e.expected === broken.revision - 1 && e.actual === broken.revision,
    );
    await rejects(
      store.restoreResource(SkillSchema, "skill", "s1", { tag: "nope" }),
      (e) =>
        e instanceof AuditNotFoundError && e.id === "s1" &&
        e.lookup.tag === "nope",
    );
    await rejects(
      store.restoreResource(SkillSchema, "skill", "s1", { auditId: 999 }),
      (e) => e instanceof AuditNotFoundError && e.lookup.auditId === 999,
    );
    await rejects(
      store.restoreResource(SkillSchema, "skill", "s1", {} as SnapshotRef),
      (e) => e instanceof StoreError && !(e instanceof AuditNotFoundError),
    );
    await rejects(
      store.restoreResource(AgentSchema, "skill", "s1", { versionHash: "h1" }),
      (e) =>
        e instanceof TypeMismatchError &&
        e.recordedType === SkillSchema.typeName &&
        e.requestedType === AgentSchema.typeName,
    );
    assert.equal(await store.currentRevision(), broken.revision);
    const restored = await store.restoreResource(
      SkillSchema,
      "skill",
      "s1",
      { versionHash: "h1" },
      { ifRevision: broken.revision },
    );
    assert.equal(restored.revision, broken.revision + 1);
    assert.ok(restored.updatedAt instanceof Date);
    const entry = await store.getResourceEntry(SkillSchema, "skill", "s1");
    assert.deepEqual(
      [entry.message.name, entry.revision, entry.createRevision],
      ["v1", restored.revision, 1],
    );
    assert.deepEqual(await store.changesSince(broken.revision), [
      { revision: restored.revision, kind: "skill", id: "s1", type: "put" },
    ]);
    assert.equal(
      (await store.listAuditHistory(SkillSchema, "skill", "s1")).length,
      2,
    );
    const again = await store.restoreResource(SkillSchema, "skill", "s1", {
      auditId: tagged.id,
    });
    assert.equal(again.revision, restored.revision + 1);
    await rejects(
      store.restoreResource(SkillSchema, "skill", "missing", { tag: "stable" }),
      (e) => e instanceof AuditNotFoundError && e.id === "missing",
    );
    // In a transaction: one revision with the other writes, undone with them.
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.restoreResource(SkillSchema, "skill", "s1", { tag: "x" })
          .catch(() => {});
        await tx.restoreResource(SkillSchema, "skill", "s1", {
          tag: "stable",
        });
        throw new Error("undo");
      }),
      /undo/,
    );
    assert.equal(await store.currentRevision(), again.revision);
  },
);

behaviour(
  "getResourceAt: the newest snapshot at or before a Date or a revision",
  async (store) => {
    const first = await store.saveResource(
      SkillSchema,
      "skill",
      "s1",
      skill("v1"),
    );
    await atTimes(
      [DAY(1)],
      () =>
        store.saveAudit(SkillSchema, "skill", "s1", skill("v1"), {
          tag: "one",
        }),
    );
    const second = await store.saveResource(
      SkillSchema,
      "skill",
      "s1",
      skill("v2"),
    );
    await atTimes(
      [DAY(3)],
      () => store.saveAudit(SkillSchema, "skill", "s1", skill("v2")),
    );
    const byDate = await store.getResourceAt(
      SkillSchema,
      "skill",
      "s1",
      new Date(DAY(2)),
    );
    assert.deepEqual(
      [byDate.message.name, byDate.tag, byDate.revision],
      ["v1", "one", first.revision],
    );
    assert.deepEqual(byDate.archivedAt, new Date(DAY(1)));
    assert.equal(
      (await store.getResourceAt(SkillSchema, "skill", "s1", new Date(DAY(3))))
        .message.name,
      "v2",
    );
    assert.equal(
      (await store.getResourceAt(SkillSchema, "skill", "s1", first.revision))
        .message.name,
      "v1",
    );
    const latest = await store.getResourceAt(
      SkillSchema,
      "skill",
      "s1",
      second.revision,
    );
    assert.equal(latest.message.name, "v2");
    assert.equal(latest.tag, undefined);
    await rejects(
      store.getResourceAt(SkillSchema, "skill", "s1", new Date("2025-12-31")),
      (e) =>
        e instanceof AuditNotFoundError && e.kind === "skill" &&
        e.id === "s1" && e.lookup.at instanceof Date,
    );
    await rejects(
      store.getResourceAt(SkillSchema, "skill", "s1", 0),
      (e) => e instanceof AuditNotFoundError && e.lookup.at === 0,
    );
    for (const at of [-1, 1.5, new Date("nonsense")]) {
      await rejects(
        store.getResourceAt(SkillSchema, "skill", "s1", at),
        (e) => e instanceof StoreError && !(e instanceof AuditNotFoundError),
      );
    }
    await rejects(
      store.getResourceAt(AgentSchema, "skill", "s1", first.revision),
      (e) => e instanceof TypeMismatchError,
    );
  },
);

behaviour(
  "acceptTypes: every typed read decodes rows recorded as a type it names, and only those",
  async (store, fixture) => {
    await store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    const snap = await store.saveAudit(
      SkillSchema,
      "skill",
      "s1",
      skill("s1"),
      { tag: "v1", versionHash: "h1" },
    );
    await fixture.insertOrphans([{
      kind: "skill",
      resourceId: "gone",
      data: toBinary(SkillSchema, skill("o")),
      archivedAt: DAY(1),
    }]);
    const accept: ReadOptions = { acceptTypes: [SkillSchema.typeName] };
    const wrong: ReadOptions = { acceptTypes: ["example.v1.Other"] };
    const reads: ((o: ReadOptions) => Promise<unknown>)[] = [
      (o) => store.getResource(AgentSchema, "skill", "s1", o),
      (o) => store.getResourceEntry(AgentSchema, "skill", "s1", o),
      (o) => store.listResources(AgentSchema, "skill", o),
      (o) => store.listResourceEntries(AgentSchema, "skill", o),
      (o) => store.getAuditByHash(AgentSchema, "skill", "s1", "h1", o),
      (o) => store.getAuditByTag(AgentSchema, "skill", "s1", "v1", o),
      (o) => store.listAuditHistory(AgentSchema, "skill", "s1", o),
      (o) =>
        store.listAuditHistory(AgentSchema, "skill", "s1", {
          ...o,
          limit: 5,
        }),
      (o) => store.getResourceAt(AgentSchema, "skill", "s1", snap.revision, o),
    ];
    for (const read of reads) {
      await read(accept);
      await rejects(
        read(wrong),
        (e) =>
          e instanceof TypeMismatchError &&
          e.recordedType === SkillSchema.typeName &&
          e.requestedType === AgentSchema.typeName,
      );
    }
    assert.equal(
      (await store.getResource(AgentSchema, "skill", "s1", accept)).name,
      "s1",
    );
    // { acceptTypes } alone is a plain call (the whole history), a limit asks a page.
    const whole = await store.listAuditHistory(
      AgentSchema,
      "skill",
      "s1",
      accept,
    );
    assert.ok(Array.isArray(whole));
    assert.equal(whole[0].message.name, "s1");
    const page = await store.listAuditHistory(AgentSchema, "skill", "s1", {
      ...accept,
      limit: 1,
    });
    assert.deepEqual(page.entries.map((e) => e.id), [snap.id]);
    const entries = await store.listResourceEntries(AgentSchema, "skill", {
      ...accept,
      limit: 1,
    });
    assert.equal(entries.entries[0].message.name, "s1");
    // Orphans carry no recorded type: any schema reads them.
    assert.equal(
      (await store.listOrphanedAudit(AgentSchema, "skill", "gone", wrong))[0]
        .message.name,
      "o",
    );
    await rejects(
      store.getResource(SkillSchema, "skill", "s1", {
        acceptTypes: "x" as unknown as string[],
      }),
      (e) => e instanceof StoreError && /acceptTypes/.test(e.message),
    );
  },
);

behaviour(
  "pruneAudit lets other work run between its batches; a transaction opened meanwhile neither joins it nor takes it in",
  async (store) => {
    // More snapshots than one batch holds (SQLite starts at 2,000 a batch).
    await store.transaction(async (tx) => {
      for (let r = 0; r < 50; r++) {
        const id = `r${String(r).padStart(2, "0")}`;
        await tx.saveResource(SkillSchema, "skill", id, skill(id));
        for (let n = 0; n < 50; n++) {
          await tx.saveAudit(SkillSchema, "skill", id, skill(`${n}`));
        }
      }
    });
    let ticks = 0;
    let rolledBack: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      ticks++;
      // A transaction on the same store while the prune is between batches.
      rolledBack ??= store.transaction(async (tx) => {
        await tx.saveResource(SkillSchema, "skill", "inside", skill("x"));
        throw new Error("undo");
      }).catch((error) => error);
    }, 1);
    let removed: number;
    try {
      removed = await store.pruneAudit({ keepLast: 1 });
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks > 0, "no timer ran while the prune was going");
    assert.match(String(await rolledBack), /undo/);
    assert.equal(removed, 50 * 49);
    assert.equal(
      (await store.listAuditHistory(SkillSchema, "skill", "r49")).length,
      1,
    );
    await rejects(
      store.getResource(SkillSchema, "skill", "inside"),
      (e) => e instanceof NotFoundError,
    );
  },
);
