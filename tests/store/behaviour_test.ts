/**
 * One behaviour suite, run against every backend through `AsyncStore`: the same calls
 * must give the same results and the same errors (classes and fields) on the embedded
 * SQLite store and on PostgreSQL.
 */
import assert from "node:assert/strict";
import { create, fromJson } from "@bufbuild/protobuf";
import { BytesValueSchema, StructSchema } from "@bufbuild/protobuf/wkt";
import {
  type AsyncStore,
  type AuditEntry,
  AuditNotFoundError,
  CompactedError,
  ConflictError,
  NotFoundError,
  type Page,
  type ResourceChange,
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
    ];
    for (const write of writes) {
      await rejects(write(), (e) => e instanceof StoreError);
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
