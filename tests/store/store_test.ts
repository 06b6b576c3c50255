/**
 * The Store on real SQLite files: a port of the Go store's suite plus the behaviour users
 * rely on (cascade, history that survives upserts, exact audit order, transactions,
 * read-only opens, permissions, recorded message types, indexed queries).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  create,
  createFileRegistry,
  fromBinary,
  type MessageInitShape,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import {
  FileDescriptorSetSchema,
  timestampFromDate,
} from "@bufbuild/protobuf/wkt";
import {
  AuditNotFoundError,
  MigrationError,
  NotFoundError,
  openStore,
  Store,
  StoreClosedError,
  StoreError,
  TypeMismatchError,
} from "../../mod.ts";
import { SQL } from "../../src/store/sql.ts";
import {
  AgentSchema,
  type Skill,
  SkillSchema,
  Visibility,
} from "../fixtures/gen/example/v1/example_pb.ts";
import { assertThrows } from "../helpers/assert.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

/** A Skill named `name`; the name doubles as a marker of which version was read. */
function skill(
  name: string,
  init: MessageInitShape<typeof SkillSchema> = {},
): Skill {
  return create(SkillSchema, { name, ...init });
}

/** Runs `fn` with a store on a new file in a fresh temp dir; closes and cleans up. */
function withStore(
  fn: (store: Store, path: string, dir: string) => void | Promise<void>,
): Promise<void> {
  return withTempDir(async (dir) => {
    const path = `${dir}/store.sqlite`;
    using store = openStore(path);
    await fn(store, path, dir);
  });
}

/** Runs `fn` with `Date.now()` returning the values of `times`, one per call, then the last. */
function withClock<T>(times: number[], fn: () => T): T {
  const original = Date.now;
  let i = 0;
  Date.now = () => times[Math.min(i++, times.length - 1)];
  try {
    return fn();
  } finally {
    Date.now = original;
  }
}

function names(messages: { name: string }[]): string[] {
  return messages.map((m) => m.name);
}

function count(path: string, sql: string, ...params: string[]): number {
  const db = new DatabaseSync(path);
  try {
    const row = db.prepare(sql).get(...params) as Record<string, number>;
    return Object.values(row)[0];
  } finally {
    db.close();
  }
}

// --- The Go store's suite --------------------------------------------------------------

Deno.test("a saved resource reads back with every field intact", () =>
  withStore((store) => {
    const original = skill("lint", {
      versionHash: "sha256:abc",
      tag: "v1",
      description: "checks style",
      tools: ["deno", "eslint"],
      labels: { team: "core", "ünï": "cödé" },
      visibility: Visibility.PUBLIC,
      createdAt: timestampFromDate(new Date("2026-01-25T10:00:00.123Z")),
      limits: { maxTokens: 4096, temperature: 0.25, timeoutMs: 30_000n },
      payload: new Uint8Array([0, 1, 2, 255]),
    });
    store.saveResource(SkillSchema, "skill", "lint", original);
    const read = store.getResource(SkillSchema, "skill", "lint");
    assert.deepEqual(toJson(SkillSchema, read), toJson(SkillSchema, original));
    assert.deepEqual(read.payload, new Uint8Array([0, 1, 2, 255]));
    assert.equal(read.limits?.timeoutMs, 30_000n);
  }));

Deno.test("getResource of a missing resource throws NotFoundError naming it", () =>
  withStore((store) => {
    assert.throws(
      () => store.getResource(SkillSchema, "skill", "nope"),
      (error: unknown) =>
        error instanceof NotFoundError && error.kind === "skill" &&
        error.id === "nope",
    );
  }));

Deno.test("saving an existing resource replaces its data (upsert)", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("first"));
    store.saveResource(SkillSchema, "skill", "s1", skill("second"));
    assert.equal(store.getResource(SkillSchema, "skill", "s1").name, "second");
    assert.deepEqual(names(store.listResources(SkillSchema, "skill")), [
      "second",
    ]);
  }));

Deno.test("listing a kind with no resources returns an empty array", () =>
  withStore((store) => {
    assert.deepEqual(store.listResources(SkillSchema, "skill"), []);
    store.saveResource(SkillSchema, "other", "o1", skill("o"));
    assert.deepEqual(store.listResources(SkillSchema, "skill"), []);
  }));

Deno.test("resources of different kinds with the same id are independent", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "x", skill("a skill"));
    store.saveResource(
      AgentSchema,
      "agent",
      "x",
      create(AgentSchema, {
        name: "an agent",
        model: "m-1",
        trigger: { case: "cron", value: "* * * * *" },
      }),
    );
    assert.equal(store.getResource(SkillSchema, "skill", "x").name, "a skill");
    const agent = store.getResource(AgentSchema, "agent", "x");
    assert.equal(agent.name, "an agent");
    assert.deepEqual(agent.trigger, { case: "cron", value: "* * * * *" });
    assert.equal(store.listResources(SkillSchema, "skill").length, 1);
    assert.equal(store.deleteResource("skill", "x"), true);
    assert.equal(store.getResource(AgentSchema, "agent", "x").name, "an agent");
    assertThrows(
      () => store.getResource(SkillSchema, "skill", "x"),
      NotFoundError,
    );
  }));

Deno.test("deleting a missing resource returns false; an existing one true", () =>
  withStore((store) => {
    assert.equal(store.deleteResource("skill", "missing"), false);
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    assert.equal(store.deleteResource("skill", "s1"), true);
    assert.equal(store.deleteResource("skill", "s1"), false);
    assertThrows(
      () => store.getResource(SkillSchema, "skill", "s1"),
      NotFoundError,
    );
  }));

Deno.test("deleteResourcesByKind deletes that kind only and returns the count", () =>
  withStore((store) => {
    for (const id of ["a", "b", "c"]) {
      store.saveResource(SkillSchema, "skill", id, skill(id));
    }
    store.saveResource(SkillSchema, "skillset", "a", skill("other kind"));
    assert.equal(store.deleteResourcesByKind("skill"), 3);
    assert.deepEqual(store.listResources(SkillSchema, "skill"), []);
    assert.deepEqual(names(store.listResources(SkillSchema, "skillset")), [
      "other kind",
    ]);
    assert.equal(store.deleteResourcesByKind("skill"), 0);
    assert.equal(store.deleteResourcesByKind("never-used"), 0);
  }));

Deno.test("deleteResourcesByIdPrefix deletes ids starting with the prefix", () =>
  withStore((store) => {
    for (const id of ["team-a/1", "team-a/2", "team-ab/1", "team-b/1"]) {
      store.saveResource(SkillSchema, "skill", id, skill(id));
    }
    store.saveResource(SkillSchema, "agent", "team-a/1", skill("agent"));
    assert.equal(store.deleteResourcesByIdPrefix("skill", "team-a/"), 2);
    assert.deepEqual(names(store.listResources(SkillSchema, "skill")), [
      "team-ab/1",
      "team-b/1",
    ]);
    assert.equal(
      store.getResource(SkillSchema, "agent", "team-a/1").name,
      "agent",
    );
    assert.equal(store.deleteResourcesByIdPrefix("skill", "no-such-prefix"), 0);
    assert.equal(store.listResources(SkillSchema, "skill").length, 2);
    // The whole id is a prefix of itself.
    assert.equal(store.deleteResourcesByIdPrefix("skill", "team-b/1"), 1);
  }));

Deno.test("deleteResourcesByIdPrefix with an empty prefix deletes the whole kind", () =>
  withStore((store) => {
    for (const id of ["a", "b"]) {
      store.saveResource(SkillSchema, "skill", id, skill(id));
    }
    store.saveResource(SkillSchema, "agent", "a", skill("agent"));
    assert.equal(store.deleteResourcesByIdPrefix("skill", ""), 2);
    assert.deepEqual(store.listResources(SkillSchema, "skill"), []);
    assert.equal(store.listResources(SkillSchema, "agent").length, 1);
    assert.equal(store.deleteResourcesByIdPrefix("skill", ""), 0);
  }));

Deno.test("prefix delete treats %, _, *, ?, [ and unicode as literal text", () =>
  withStore((store) => {
    const cases: { prefix: string; match: string[]; keep: string[] }[] = [
      { prefix: "100%", match: ["100%", "100%off"], keep: ["1000", "100"] },
      { prefix: "%", match: ["%x"], keep: ["x", "a%"] },
      { prefix: "a_", match: ["a_", "a_bc"], keep: ["ab", "axb", "a"] },
      { prefix: "_", match: ["_x"], keep: ["x", "a_"] },
      { prefix: "a*", match: ["a*", "a*b"], keep: ["ab", "a", "b*"] },
      { prefix: "*", match: ["*", "*x"], keep: ["x"] },
      { prefix: "a?", match: ["a?", "a?b"], keep: ["ab", "a"] },
      { prefix: "[x]", match: ["[x]1", "[x]"], keep: ["x1", "[y]1", "["] },
      { prefix: "[", match: ["[", "[]"], keep: ["]", "a"] },
      { prefix: "é/", match: ["é/1", "é/é"], keep: ["e/1", "é", "éa"] },
      { prefix: "🎉", match: ["🎉", "🎉/2"], keep: ["🎊", "x🎉"] },
      { prefix: "日本", match: ["日本語", "日本"], keep: ["日", "本日本"] },
      // Upper-bound edge cases of the range the prefix turns into.
      {
        prefix: "\u{10FFFF}",
        match: ["\u{10FFFF}", "\u{10FFFF}a"],
        keep: ["\u{10FFFE}", "a"],
      },
      { prefix: "\uD7FF", match: ["\uD7FFa"], keep: ["\uE000", "\uD7FE"] },
      { prefix: "a\\", match: ["a\\b"], keep: ["ab", "a/b"] },
      { prefix: "it's", match: ["it's-1"], keep: ["its-1"] },
    ];
    cases.forEach(({ prefix, match, keep }, i) => {
      const kind = `case${i}`;
      for (const id of [...match, ...keep]) {
        store.saveResource(SkillSchema, kind, id, skill(id));
      }
      assert.equal(
        store.deleteResourcesByIdPrefix(kind, prefix),
        match.length,
        `prefix ${JSON.stringify(prefix)}`,
      );
      assert.deepEqual(
        names(store.listResources(SkillSchema, kind)).sort(),
        [...keep].sort(),
        `prefix ${JSON.stringify(prefix)}`,
      );
    });
  }));

Deno.test("ids with special characters are stored and found literally", () =>
  withStore((store) => {
    const ids = [
      "a/b/c",
      "with space",
      "quote'\"",
      "'; DROP TABLE resources; --",
      "100%",
      "under_score",
      "star*",
      "question?",
      "[bracket]",
      "back\\slash",
      "tab\tnewline\n",
      "ünïcödé",
      "emoji🎉",
      "日本語",
      "x".repeat(1000),
    ];
    for (const id of ids) {
      store.saveResource(SkillSchema, "skill", id, skill(id));
      store.saveAudit(SkillSchema, "skill", id, skill(id), { tag: id });
    }
    for (const id of ids) {
      assert.equal(store.getResource(SkillSchema, "skill", id).name, id);
      assert.equal(store.getAuditByTag(SkillSchema, "skill", id, id).name, id);
      assert.equal(store.listAuditHistory(SkillSchema, "skill", id).length, 1);
    }
    assert.deepEqual(
      names(store.listResources(SkillSchema, "skill")).sort(),
      [...ids].sort(),
    );
    for (const id of ids) assert.equal(store.deleteResource("skill", id), true);
    assert.deepEqual(store.listResources(SkillSchema, "skill"), []);
  }));

Deno.test("a 1,000-resource kind lists in id order and deletes by prefix and kind", () =>
  withStore((store) => {
    const ids = Array.from(
      { length: 1000 },
      (_, i) => `skill-${String(i).padStart(4, "0")}`,
    );
    for (const id of [...ids].reverse()) {
      store.saveResource(SkillSchema, "skill", id, skill(id));
    }
    const listed = store.listResources(SkillSchema, "skill");
    assert.equal(listed.length, 1000);
    assert.deepEqual(names(listed), ids);
    assert.equal(
      store.getResource(SkillSchema, "skill", "skill-0500").name,
      "skill-0500",
    );
    assert.equal(store.deleteResourcesByIdPrefix("skill", "skill-00"), 100);
    assert.equal(store.listResources(SkillSchema, "skill").length, 900);
    assert.equal(store.deleteResourcesByKind("skill"), 900);
    assert.deepEqual(store.listResources(SkillSchema, "skill"), []);
  }));

Deno.test("a listing returns every row's exact bytes, across chunks and in a UTF-16 file", () =>
  withTempDir((dir) => {
    const expected = Array.from(
      { length: 700 },
      (_, i) =>
        i % 7 === 0
          ? create(SkillSchema) // encodes to zero bytes
          : skill(`s${i}`, {
            payload: Uint8Array.from(
              { length: i % 300 },
              (_, j) => (i + j) % 256,
            ),
          }),
    );
    const ids = expected.map((_, i) => `r${String(i).padStart(4, "0")}`);
    const utf16 = `${dir}/utf16.sqlite`;
    const raw = new DatabaseSync(utf16);
    raw.exec("PRAGMA encoding = 'UTF-16le'; CREATE TABLE t (x); DROP TABLE t;");
    raw.close();
    for (const path of [`${dir}/utf8.sqlite`, utf16]) {
      using store = openStore(path);
      store.transaction(() => {
        ids.forEach((id, i) =>
          store.saveResource(SkillSchema, "skill", id, expected[i])
        );
      });
      const listed = store.listResources(SkillSchema, "skill");
      assert.equal(listed.length, expected.length, path);
      listed.forEach((message, i) =>
        assert.deepEqual(
          toBinary(SkillSchema, message),
          toBinary(SkillSchema, expected[i]),
          `${path} row ${i}`,
        )
      );
      // A message's bytes are its own: changing one leaves the others as they were.
      listed[1].payload.fill(0);
      assert.deepEqual(
        store.listResources(SkillSchema, "skill")[2].payload,
        expected[2].payload,
      );
      assert.deepEqual(listed[2].payload, expected[2].payload);
    }
  }));

Deno.test("closing a store twice is harmless", () =>
  withTempDir((dir) => {
    const store = openStore(`${dir}/db.sqlite`);
    store.close();
    store.close();
    store[Symbol.dispose]();
  }));

Deno.test("every method of a closed store throws StoreClosedError", () =>
  withTempDir((dir) => {
    const store = openStore(`${dir}/db.sqlite`);
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    store.close();
    const calls: [string, () => unknown][] = [
      [
        "saveResource",
        () => store.saveResource(SkillSchema, "skill", "s1", skill("x")),
      ],
      ["getResource", () => store.getResource(SkillSchema, "skill", "s1")],
      ["listResources", () => store.listResources(SkillSchema, "skill")],
      ["deleteResource", () => store.deleteResource("skill", "s1")],
      ["deleteResourcesByKind", () => store.deleteResourcesByKind("skill")],
      [
        "deleteResourcesByIdPrefix",
        () => store.deleteResourcesByIdPrefix("skill", "s"),
      ],
      [
        "deleteResourcesByIdPrefix ''",
        () => store.deleteResourcesByIdPrefix("skill", ""),
      ],
      [
        "saveAudit",
        () => store.saveAudit(SkillSchema, "skill", "s1", skill("x")),
      ],
      [
        "getAuditByHash",
        () => store.getAuditByHash(SkillSchema, "skill", "s1", "h"),
      ],
      [
        "getAuditByTag",
        () => store.getAuditByTag(SkillSchema, "skill", "s1", "t"),
      ],
      [
        "listAuditHistory",
        () => store.listAuditHistory(SkillSchema, "skill", "s1"),
      ],
      [
        "deleteAuditByResourceId",
        () => store.deleteAuditByResourceId("skill", "s1"),
      ],
      ["transaction", () => store.transaction(() => 1)],
    ];
    for (const [name, call] of calls) {
      assert.throws(call, StoreClosedError, name);
    }
    // The data is still there for the next open.
    using again = openStore(`${dir}/db.sqlite`);
    assert.equal(again.getResource(SkillSchema, "skill", "s1").name, "s1");
  }));

Deno.test("audit snapshots are found by hash and tag, listed newest first, deleted", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("v3"));
    const e1 = store.saveAudit(SkillSchema, "skill", "s1", skill("v1"), {
      versionHash: "h1",
      tag: "t1",
    });
    const e2 = store.saveAudit(SkillSchema, "skill", "s1", skill("v2"), {
      versionHash: "h2",
      tag: "t2",
    });
    const e3 = store.saveAudit(SkillSchema, "skill", "s1", skill("v3"), {
      versionHash: "h3",
    });
    assert.ok(e1.id < e2.id && e2.id < e3.id);
    assert.ok(e1.archivedAt instanceof Date);

    assert.equal(
      store.getAuditByHash(SkillSchema, "skill", "s1", "h2").name,
      "v2",
    );
    assert.equal(
      store.getAuditByTag(SkillSchema, "skill", "s1", "t1").name,
      "v1",
    );
    const history = store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(
      history.map((e) => [e.id, e.message.name, e.versionHash, e.tag]),
      [
        [e3.id, "v3", "h3", undefined],
        [e2.id, "v2", "h2", "t2"],
        [e1.id, "v1", "h1", "t1"],
      ],
    );
    assert.deepEqual(history[2].archivedAt, e1.archivedAt);

    assert.throws(
      () => store.getAuditByHash(SkillSchema, "skill", "s1", "h9"),
      (error: unknown) =>
        error instanceof AuditNotFoundError && error.kind === "skill" &&
        error.id === "s1" && error.lookup.versionHash === "h9",
    );
    assert.throws(
      () => store.getAuditByTag(SkillSchema, "skill", "s1", "t9"),
      (error: unknown) =>
        error instanceof AuditNotFoundError && error.lookup.tag === "t9",
    );
    assert.deepEqual(
      store.listAuditHistory(SkillSchema, "skill", "nobody"),
      [],
    );

    assert.equal(store.deleteAuditByResourceId("skill", "s1"), 3);
    assert.deepEqual(store.listAuditHistory(SkillSchema, "skill", "s1"), []);
    assert.equal(store.getResource(SkillSchema, "skill", "s1").name, "v3");
    assert.equal(store.deleteAuditByResourceId("skill", "s1"), 0);
    assertThrows(
      () => store.getAuditByHash(SkillSchema, "skill", "s1", "h1"),
      AuditNotFoundError,
    );
  }));

Deno.test("audit histories of the same id in different kinds are separate", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "x", skill("skill"));
    store.saveResource(SkillSchema, "tool", "x", skill("tool"));
    store.saveAudit(SkillSchema, "skill", "x", skill("skill v1"), {
      tag: "v1",
    });
    store.saveAudit(SkillSchema, "tool", "x", skill("tool v1"), { tag: "v1" });
    assert.equal(
      store.getAuditByTag(SkillSchema, "tool", "x", "v1").name,
      "tool v1",
    );
    assert.equal(store.deleteAuditByResourceId("skill", "x"), 1);
    assert.equal(store.listAuditHistory(SkillSchema, "tool", "x").length, 1);
  }));

// --- Behaviour users rely on -----------------------------------------------------------

Deno.test("saving an existing resource keeps its audit history", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("v1"));
    store.saveAudit(SkillSchema, "skill", "s1", skill("v1"), { tag: "v1" });
    store.saveResource(SkillSchema, "skill", "s1", skill("v2"));
    store.saveAudit(SkillSchema, "skill", "s1", skill("v2"), { tag: "v2" });
    store.saveResource(SkillSchema, "skill", "s1", skill("v3"));
    assert.deepEqual(
      store.listAuditHistory(SkillSchema, "skill", "s1").map((e) => e.tag),
      ["v2", "v1"],
    );
    assert.equal(count(path, "SELECT count(*) FROM resource_audit"), 2);
  }));

Deno.test("deleting a resource deletes its audit history (cascade)", () =>
  withStore((store, path) => {
    for (const id of ["s1", "s2"]) {
      store.saveResource(SkillSchema, "skill", id, skill(id));
      store.saveAudit(SkillSchema, "skill", id, skill(id), { tag: "v1" });
      store.saveAudit(SkillSchema, "skill", id, skill(id), { tag: "v2" });
    }
    assert.equal(store.deleteResource("skill", "s1"), true);
    assert.deepEqual(store.listAuditHistory(SkillSchema, "skill", "s1"), []);
    assert.equal(store.listAuditHistory(SkillSchema, "skill", "s2").length, 2);
    assert.equal(
      count(
        path,
        "SELECT count(*) FROM resource_audit WHERE resource_id = ?",
        "s1",
      ),
      0,
    );
    // A resource saved again under the same id starts with an empty history.
    store.saveResource(SkillSchema, "skill", "s1", skill("again"));
    assert.deepEqual(store.listAuditHistory(SkillSchema, "skill", "s1"), []);
  }));

Deno.test("deleteResourcesByKind and prefix delete also delete audit histories", () =>
  withStore((store, path) => {
    for (const kind of ["skill", "agent"]) {
      for (const id of ["a/1", "a/2", "b/1"]) {
        store.saveResource(SkillSchema, kind, id, skill(id));
        store.saveAudit(SkillSchema, kind, id, skill(id));
      }
    }
    assert.equal(store.deleteResourcesByIdPrefix("agent", "a/"), 2);
    assert.deepEqual(store.listAuditHistory(SkillSchema, "agent", "a/1"), []);
    assert.equal(store.listAuditHistory(SkillSchema, "agent", "b/1").length, 1);
    assert.equal(store.deleteResourcesByKind("skill"), 3);
    for (const id of ["a/1", "a/2", "b/1"]) {
      assert.deepEqual(store.listAuditHistory(SkillSchema, "skill", id), []);
    }
    assert.equal(count(path, "SELECT count(*) FROM resource_audit"), 1);
  }));

Deno.test("archivedAt has millisecond precision and orders the history", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    const t = Date.parse("2026-01-25T10:00:00.001Z");
    const [a, b, c] = withClock(
      [t, t + 1, t + 3],
      () =>
        ["a", "b", "c"].map((name) =>
          store.saveAudit(SkillSchema, "skill", "s1", skill(name))
        ),
    );
    assert.equal(a.archivedAt.getTime(), t);
    assert.equal(b.archivedAt.toISOString(), "2026-01-25T10:00:00.002Z");
    const history = store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(names(history.map((e) => e.message)), ["c", "b", "a"]);
    assert.deepEqual(
      history.map((e) => e.archivedAt.getTime()),
      [t + 3, t + 1, t],
    );
    assert.equal(history[0].id, c.id);
    const db = new DatabaseSync(path);
    try {
      const row = db.prepare(
        "SELECT archived_at FROM resource_audit WHERE id = ?",
      ).get(b.id) as { archived_at: string };
      assert.equal(row.archived_at, "2026-01-25T10:00:00.002Z");
    } finally {
      db.close();
    }
  }));

Deno.test("newest means last saved when the clock steps back an hour between saves", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("live"));
    const t = Date.parse("2026-01-25T10:00:00.000Z");
    const hour = 3_600_000;
    // An NTP correction between the two saves: the second save's clock reads an hour earlier.
    const [before, after] = withClock([t, t - hour], () => [
      store.saveAudit(SkillSchema, "skill", "s1", skill("older"), {
        versionHash: "h",
        tag: "v",
      }),
      store.saveAudit(SkillSchema, "skill", "s1", skill("newer"), {
        versionHash: "h",
        tag: "v",
      }),
    ]);
    // Clamped to the latest archive time: never earlier than what the history holds.
    assert.equal(before.archivedAt.getTime(), t);
    assert.equal(after.archivedAt.getTime(), t);
    const history = store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(names(history.map((e) => e.message)), ["newer", "older"]);
    assert.deepEqual(history.map((e) => e.id), [after.id, before.id]);
    assert.equal(
      store.getAuditByTag(SkillSchema, "skill", "s1", "v").name,
      "newer",
    );
    assert.equal(
      store.getAuditByHash(SkillSchema, "skill", "s1", "h").name,
      "newer",
    );
    // A later save on the stepped-back clock stays after both; another resource's
    // history is not affected by this one's latest time.
    store.saveResource(SkillSchema, "skill", "s2", skill("other"));
    const [third, other] = withClock([t - hour + 1], () => [
      store.saveAudit(SkillSchema, "skill", "s1", skill("third")),
      store.saveAudit(SkillSchema, "skill", "s2", skill("other")),
    ]);
    assert.equal(third.archivedAt.getTime(), t);
    assert.equal(other.archivedAt.getTime(), t - hour + 1);
    assert.equal(
      store.listAuditHistory(SkillSchema, "skill", "s1")[0].message.name,
      "third",
    );
    // What is stored is what was returned.
    assert.equal(
      count(
        path,
        "SELECT count(*) FROM resource_audit WHERE archived_at = ?",
        new Date(t).toISOString(),
      ),
      3,
    );
  }));

Deno.test("a long run of autocommit saveAudit calls lets SQLite checkpoint the WAL", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    const big = skill("big", { payload: new Uint8Array(3000).fill(7) });
    for (let i = 0; i < 600; i++) {
      store.saveAudit(SkillSchema, "skill", "s1", big);
    }
    // Each save writes several pages; without the auto-checkpoint (every 1,000 pages)
    // the -wal file would hold them all (over 3,000 pages).
    const { page_size } = Store.connectionOf(store).prepare("PRAGMA page_size")
      .get() as { page_size: number };
    const walPages = Deno.statSync(`${path}-wal`).size / page_size;
    assert.ok(walPages < 2000, `-wal holds ${walPages} pages`);
    assert.equal(
      store.listAuditHistory(SkillSchema, "skill", "s1").length,
      600,
    );
  }));

Deno.test("a resource's updated_at never goes back when the clock does", () =>
  withStore((store, path) => {
    const t = Date.parse("2026-01-25T10:00:00.000Z");
    const [first, second, conditional] = withClock(
      [t, t - 3_600_000, t - 7_200_000],
      () => [
        store.saveResource(SkillSchema, "skill", "s1", skill("first")),
        store.saveResource(SkillSchema, "skill", "s1", skill("second")),
        store.saveResource(SkillSchema, "skill", "s1", skill("second"), {
          ifRevision: 2,
        }),
      ],
    );
    // saveResource returns the stored time, the upsert's and the conditional write's.
    assert.equal(first.updatedAt.getTime(), t);
    assert.equal(second.updatedAt.getTime(), t);
    assert.equal(conditional.updatedAt.getTime(), t);
    assert.equal(
      store.getResourceEntry(SkillSchema, "skill", "s1").updatedAt.getTime(),
      t,
    );
    assert.equal(store.getResource(SkillSchema, "skill", "s1").name, "second");
    assert.equal(
      count(
        path,
        "SELECT count(*) FROM resources WHERE updated_at = ?",
        new Date(t).toISOString(),
      ),
      1,
    );
    // A clock that moves forward again is taken as is.
    withClock([t + 5], () => {
      store.saveResource(SkillSchema, "skill", "s1", skill("third"));
    });
    assert.equal(
      count(
        path,
        "SELECT count(*) FROM resources WHERE updated_at = ?",
        new Date(t + 5).toISOString(),
      ),
      1,
    );
  }));

Deno.test("imported snapshots keep their recorded order", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("live"));
    const db = new DatabaseSync(path);
    try {
      // As an import writes them: recorded times, inserted out of time order.
      const insert = db.prepare(
        "INSERT INTO resource_audit (kind, resource_id, data, archived_at) VALUES ('skill', 's1', ?, ?)",
      );
      insert.run(
        toBinary(SkillSchema, skill("jan")),
        "2026-01-10T00:00:00.000Z",
      );
      insert.run(
        toBinary(SkillSchema, skill("dec")),
        "2025-12-01T00:00:00.000Z",
      );
    } finally {
      db.close();
    }
    assert.deepEqual(
      names(
        store.listAuditHistory(SkillSchema, "skill", "s1").map((e) =>
          e.message
        ),
      ),
      ["jan", "dec"],
    );
    const t = Date.parse("2026-01-25T10:00:00.000Z");
    const saved = withClock(
      [t],
      () => store.saveAudit(SkillSchema, "skill", "s1", skill("now")),
    );
    assert.equal(saved.archivedAt.getTime(), t);
  }));

Deno.test("many snapshots saved within one millisecond list newest first", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    const t = Date.parse("2026-01-25T10:00:00.000Z");
    const saved = withClock([t], () =>
      Array.from(
        { length: 50 },
        (_, i) => store.saveAudit(SkillSchema, "skill", "s1", skill(`v${i}`)),
      ));
    const history = store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.ok(history.every((e) => e.archivedAt.getTime() === t));
    assert.deepEqual(
      names(history.map((e) => e.message)),
      Array.from({ length: 50 }, (_, i) => `v${49 - i}`),
    );
    assert.deepEqual(
      history.map((e) => e.id),
      saved.map((e) => e.id).reverse(),
    );
  }));

Deno.test("a burst of snapshots on the real clock lists in reverse save order", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    const saved = Array.from(
      { length: 300 },
      (_, i) => store.saveAudit(SkillSchema, "skill", "s1", skill(`v${i}`)),
    );
    const history = store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(
      history.map((e) => e.id),
      saved.map((e) => e.id).reverse(),
    );
    assert.deepEqual(
      names(history.map((e) => e.message)),
      Array.from({ length: 300 }, (_, i) => `v${299 - i}`),
    );
  }));

Deno.test("getAuditByHash and getAuditByTag return the newest of several matches", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    const t = Date.parse("2026-01-25T10:00:00.000Z");
    withClock([t, t, t + 7, t + 7, t + 7], () => {
      store.saveAudit(SkillSchema, "skill", "s1", skill("old"), {
        versionHash: "h",
        tag: "t",
      });
      store.saveAudit(SkillSchema, "skill", "s1", skill("same ms, later"), {
        versionHash: "h",
        tag: "t",
      });
      store.saveAudit(SkillSchema, "skill", "s1", skill("other"), {
        versionHash: "x",
      });
      store.saveAudit(SkillSchema, "skill", "s1", skill("newest"), {
        versionHash: "h",
        tag: "t",
      });
      store.saveAudit(SkillSchema, "skill", "s1", skill("untagged"), {});
    });
    assert.equal(
      store.getAuditByHash(SkillSchema, "skill", "s1", "h").name,
      "newest",
    );
    assert.equal(
      store.getAuditByTag(SkillSchema, "skill", "s1", "t").name,
      "newest",
    );
    store.saveAudit(SkillSchema, "skill", "s1", skill("newer still"), {
      versionHash: "h",
    });
    assert.equal(
      store.getAuditByHash(SkillSchema, "skill", "s1", "h").name,
      "newer still",
    );
    assert.equal(
      store.getAuditByTag(SkillSchema, "skill", "s1", "t").name,
      "newest",
    );
  }));

Deno.test("an empty or absent hash or tag reads back as undefined", () =>
  withStore((store) => {
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    store.saveAudit(SkillSchema, "skill", "s1", skill("none"));
    store.saveAudit(SkillSchema, "skill", "s1", skill("empty"), {
      versionHash: "",
      tag: "",
    });
    store.saveAudit(SkillSchema, "skill", "s1", skill("undef"), {
      versionHash: undefined,
      tag: undefined,
    });
    store.saveAudit(SkillSchema, "skill", "s1", skill("hash only"), {
      versionHash: "h",
    });
    const history = store.listAuditHistory(SkillSchema, "skill", "s1");
    assert.deepEqual(
      history.map((e) => [e.message.name, e.versionHash, e.tag]),
      [
        ["hash only", "h", undefined],
        ["undef", undefined, undefined],
        ["empty", undefined, undefined],
        ["none", undefined, undefined],
      ],
    );
    // An empty label is absent, so it is not something to look up.
    assertThrows(
      () => store.getAuditByTag(SkillSchema, "skill", "s1", ""),
      AuditNotFoundError,
    );
    assertThrows(
      () => store.getAuditByHash(SkillSchema, "skill", "s1", ""),
      AuditNotFoundError,
    );
  }));

Deno.test("an empty kind or id is a StoreError in every method", () =>
  withStore((store) => {
    const s = skill("x");
    const calls: [string, () => unknown][] = [
      ["saveResource kind", () => store.saveResource(SkillSchema, "", "a", s)],
      ["saveResource id", () => store.saveResource(SkillSchema, "k", "", s)],
      ["getResource kind", () => store.getResource(SkillSchema, "", "a")],
      ["getResource id", () => store.getResource(SkillSchema, "k", "")],
      ["listResources", () => store.listResources(SkillSchema, "")],
      ["deleteResource kind", () => store.deleteResource("", "a")],
      ["deleteResource id", () => store.deleteResource("k", "")],
      ["deleteResourcesByKind", () => store.deleteResourcesByKind("")],
      [
        "deleteResourcesByIdPrefix",
        () => store.deleteResourcesByIdPrefix("", "a"),
      ],
      ["saveAudit kind", () => store.saveAudit(SkillSchema, "", "a", s)],
      ["saveAudit id", () => store.saveAudit(SkillSchema, "k", "", s)],
      [
        "getAuditByHash kind",
        () => store.getAuditByHash(SkillSchema, "", "a", "h"),
      ],
      [
        "getAuditByHash id",
        () => store.getAuditByHash(SkillSchema, "k", "", "h"),
      ],
      [
        "getAuditByTag kind",
        () => store.getAuditByTag(SkillSchema, "", "a", "t"),
      ],
      [
        "getAuditByTag id",
        () => store.getAuditByTag(SkillSchema, "k", "", "t"),
      ],
      [
        "listAuditHistory kind",
        () => store.listAuditHistory(SkillSchema, "", "a"),
      ],
      [
        "listAuditHistory id",
        () => store.listAuditHistory(SkillSchema, "k", ""),
      ],
      [
        "deleteAuditByResourceId kind",
        () => store.deleteAuditByResourceId("", "a"),
      ],
      [
        "deleteAuditByResourceId id",
        () => store.deleteAuditByResourceId("k", ""),
      ],
    ];
    for (const [name, call] of calls) {
      assert.throws(call, (error: unknown) => {
        assert.ok(error instanceof StoreError, `${name}: ${String(error)}`);
        assert.ok(!(error instanceof NotFoundError), name);
        assert.match(error.message, /non-empty/, name);
        return true;
      });
    }
    assert.deepEqual(store.listResources(SkillSchema, "k"), []);
  }));

Deno.test("saveAudit for a resource that does not exist throws NotFoundError", () =>
  withStore((store, path) => {
    assertThrows(
      () =>
        store.saveAudit(SkillSchema, "skill", "ghost", skill("x"), {
          tag: "v1",
        }),
      NotFoundError,
      /"skill"/,
      /"ghost"/,
      /save the resource first/,
    );
    store.saveResource(SkillSchema, "other", "ghost", skill("other kind"));
    assertThrows(
      () => store.saveAudit(SkillSchema, "skill", "ghost", skill("x")),
      NotFoundError,
    );
    assert.equal(count(path, "SELECT count(*) FROM resource_audit"), 0);
    assert.equal(count(path, "SELECT count(*) FROM resource_audit_orphans"), 0);
  }));

/** Asserts `fn` throws a TypeMismatchError with these fields. */
function assertMismatch(
  fn: () => unknown,
  kind: string,
  id: string,
  recordedType: string,
  requestedType: string,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TypeMismatchError, String(error));
    assert.ok(error instanceof StoreError);
    assert.deepEqual(
      [error.kind, error.id, error.recordedType, error.requestedType],
      [kind, id, recordedType, requestedType],
    );
    return true;
  });
}

Deno.test("every typed read of a row saved as another type throws TypeMismatchError", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "lint", skill("lint"));
    store.saveAudit(SkillSchema, "skill", "lint", skill("lint"), {
      versionHash: "h",
      tag: "v1",
    });
    const Skill = "example.v1.Skill";
    const Agent = "example.v1.Agent";
    // Twice: the first read looks the recorded type up, the second uses the cache.
    for (let i = 0; i < 2; i++) {
      assertMismatch(
        () => store.getResource(AgentSchema, "skill", "lint"),
        "skill",
        "lint",
        Skill,
        Agent,
      );
      assertMismatch(
        () => store.listResources(AgentSchema, "skill"),
        "skill",
        "lint",
        Skill,
        Agent,
      );
      assertMismatch(
        () => store.getAuditByTag(AgentSchema, "skill", "lint", "v1"),
        "skill",
        "lint",
        Skill,
        Agent,
      );
      assertMismatch(
        () => store.getAuditByHash(AgentSchema, "skill", "lint", "h"),
        "skill",
        "lint",
        Skill,
        Agent,
      );
      assertMismatch(
        () => store.listAuditHistory(AgentSchema, "skill", "lint"),
        "skill",
        "lint",
        Skill,
        Agent,
      );
      // The revisions' reads: entries, pages of a kind and of a history, a past state.
      assertMismatch(
        () => store.getResourceAt(AgentSchema, "skill", "lint", new Date()),
        "skill",
        "lint",
        Skill,
        Agent,
      );
      assertMismatch(
        () => store.getResourceEntry(AgentSchema, "skill", "lint"),
        "skill",
        "lint",
        Skill,
        Agent,
      );
      assertMismatch(
        () => store.listResourceEntries(AgentSchema, "skill", { limit: 5 }),
        "skill",
        "lint",
        Skill,
        Agent,
      );
      assertMismatch(
        () =>
          store.listAuditHistory(AgentSchema, "skill", "lint", { limit: 5 }),
        "skill",
        "lint",
        Skill,
        Agent,
      );
    }
    // acceptTypes alone keeps the plain call's array; a limit makes it a page.
    const accepted = store.listAuditHistory(AgentSchema, "skill", "lint", {
      acceptTypes: [Skill],
    });
    assert.ok(Array.isArray(accepted));
    assert.equal(accepted.length, 1);
    const page = store.listAuditHistory(AgentSchema, "skill", "lint", {
      acceptTypes: [Skill],
      limit: 5,
    });
    assert.equal(page.entries.length, 1);
    assert.equal(
      store.getResourceEntry(AgentSchema, "skill", "lint", {
        acceptTypes: [Skill],
      }).id,
      "lint",
    );
    assert.equal(
      store.listResourceEntries(AgentSchema, "skill", { acceptTypes: [Skill] })
        .entries.length,
      1,
    );
    assert.equal(store.getResource(SkillSchema, "skill", "lint").name, "lint");
    // Another process (no cached ids) sees the same.
    using other = openStore(path);
    assertMismatch(
      () => other.getResource(AgentSchema, "skill", "lint"),
      "skill",
      "lint",
      Skill,
      Agent,
    );
    assert.equal(other.listResources(SkillSchema, "skill").length, 1);
  }));

Deno.test("a listing names the first row of another type among rows of the right one", () =>
  withStore((store) => {
    for (const id of ["a", "b", "d"]) {
      store.saveResource(SkillSchema, "mixed", id, skill(id));
    }
    store.saveResource(
      AgentSchema,
      "mixed",
      "c",
      create(AgentSchema, { name: "c" }),
    );
    assertMismatch(
      () => store.listResources(SkillSchema, "mixed"),
      "mixed",
      "c",
      "example.v1.Agent",
      "example.v1.Skill",
    );
  }));

Deno.test("acceptTypes reads across a type rename; rows with no recorded type decode as before", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "lint", skill("lint"));
    store.saveAudit(SkillSchema, "skill", "lint", skill("lint"), { tag: "v1" });
    const accept = { acceptTypes: ["example.v1.Skill"] };
    // Agent's field 1 is its name too, so the bytes decode.
    assert.equal(
      store.getResource(AgentSchema, "skill", "lint", accept).name,
      "lint",
    );
    assert.equal(store.listResources(AgentSchema, "skill", accept).length, 1);
    assert.equal(
      store.getAuditByTag(AgentSchema, "skill", "lint", "v1", accept).name,
      "lint",
    );
    assert.equal(
      store.listAuditHistory(AgentSchema, "skill", "lint", accept).length,
      1,
    );
    // Accepting does not stick: the next read without the option still refuses.
    assert.throws(
      () => store.getResource(AgentSchema, "skill", "lint"),
      TypeMismatchError,
    );
    assert.throws(
      () =>
        store.getResource(AgentSchema, "skill", "lint", {
          acceptTypes: ["other"],
        }),
      TypeMismatchError,
    );
    assert.throws(
      () =>
        store.getResource(AgentSchema, "skill", "lint", {
          acceptTypes: "example.v1.Skill" as unknown as string[],
        }),
      StoreError,
    );
    // Go-written and imported rows have no recorded type; an id with no row in
    // message_schemas counts as none. The same type name with other descriptors (a new
    // version of the .proto) is the same type.
    const db = new DatabaseSync(path);
    try {
      db.exec("PRAGMA foreign_keys = OFF");
      const data = toBinary(SkillSchema, skill("go"));
      db.prepare(
        "INSERT INTO resources (kind, id, data, updated_at) VALUES ('skill', 'go', ?, '2026-01-25T10:00:00.000Z')",
      ).run(data);
      db.prepare(
        "INSERT INTO resources (kind, id, data, updated_at, schema_id) VALUES ('skill', 'dangling', ?, '2026-01-25T10:00:00.000Z', 999)",
      ).run(data);
      const { id } = db.prepare(
        `INSERT INTO message_schemas (type_name, digest, descriptor_set, created_at)
         VALUES ('example.v1.Agent', 'other-digest', x'', '2026-01-25T10:00:00.000Z') RETURNING id`,
      ).get() as { id: number };
      db.prepare(
        "INSERT INTO resources (kind, id, data, updated_at, schema_id) VALUES ('agent', 'v2', ?, '2026-01-25T10:00:00.000Z', ?)",
      ).run(toBinary(AgentSchema, create(AgentSchema, { name: "v2" })), id);
    } finally {
      db.close();
    }
    assert.equal(store.getResource(AgentSchema, "skill", "go").name, "go");
    assert.equal(
      store.getResource(AgentSchema, "skill", "dangling").name,
      "go",
    );
    assert.equal(store.getResource(AgentSchema, "agent", "v2").name, "v2");
    assert.deepEqual(
      names(store.listResources(SkillSchema, "skill")),
      ["go", "go", "lint"],
    );
  }));

Deno.test("bytes that do not decode give a StoreError naming kind and id", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "broken/1", skill("ok"));
    store.saveAudit(SkillSchema, "skill", "broken/1", skill("ok"), {
      versionHash: "h",
      tag: "t",
    });
    // Field 1, length-delimited, says 5 bytes but only 1 follows.
    const garbage = new Uint8Array([0x0a, 0x05, 0x61]);
    assert.throws(() => fromBinary(SkillSchema, garbage));
    const raw = new DatabaseSync(path);
    try {
      raw.prepare("UPDATE resources SET data = ? WHERE kind = ? AND id = ?")
        .run(garbage, "skill", "broken/1");
      raw.prepare(
        "UPDATE resource_audit SET data = ? WHERE kind = ? AND resource_id = ?",
      )
        .run(garbage, "skill", "broken/1");
    } finally {
      raw.close();
    }
    const isDecodeError = (error: unknown) =>
      error instanceof StoreError && !(error instanceof NotFoundError) &&
      /"skill"/.test(error.message) && /do not decode/.test(error.message);
    const calls: [string, () => unknown, boolean][] = [
      [
        "getResource",
        () => store.getResource(SkillSchema, "skill", "broken/1"),
        true,
      ],
      ["listResources", () => store.listResources(SkillSchema, "skill"), false],
      [
        "getAuditByHash",
        () => store.getAuditByHash(SkillSchema, "skill", "broken/1", "h"),
        true,
      ],
      [
        "getAuditByTag",
        () => store.getAuditByTag(SkillSchema, "skill", "broken/1", "t"),
        true,
      ],
      [
        "listAuditHistory",
        () => store.listAuditHistory(SkillSchema, "skill", "broken/1"),
        true,
      ],
    ];
    for (const [name, call, namesId] of calls) {
      assert.throws(call, (error: unknown) => {
        assert.ok(isDecodeError(error), `${name}: ${String(error)}`);
        if (namesId) {
          assert.match((error as Error).message, /"broken\/1"/, name);
        }
        return true;
      });
    }
    // The store stays usable, and the row can be repaired by saving it again.
    store.saveResource(SkillSchema, "skill", "broken/1", skill("fixed"));
    assert.equal(
      store.getResource(SkillSchema, "skill", "broken/1").name,
      "fixed",
    );
  }));

Deno.test("a transaction commits all its writes together and returns the callback's value", () =>
  withStore((store, path) => {
    const result = store.transaction(() => {
      store.saveResource(SkillSchema, "skill", "a", skill("a"));
      store.saveResource(SkillSchema, "skill", "b", skill("b"));
      store.saveAudit(SkillSchema, "skill", "a", skill("a"), { tag: "v1" });
      store.deleteResource("skill", "b");
      return 42;
    });
    assert.equal(result, 42);
    assert.deepEqual(names(store.listResources(SkillSchema, "skill")), ["a"]);
    // Committed: visible to another connection.
    assert.equal(count(path, "SELECT count(*) FROM resources"), 1);
    assert.equal(count(path, "SELECT count(*) FROM resource_audit"), 1);
  }));

Deno.test("a throw inside a transaction rolls back every write and is rethrown", () =>
  withStore((store, path) => {
    store.saveResource(SkillSchema, "skill", "keep", skill("before"));
    const boom = new Error("boom");
    assert.throws(
      () =>
        store.transaction(() => {
          store.saveResource(SkillSchema, "skill", "new", skill("new"));
          store.saveResource(SkillSchema, "skill", "keep", skill("changed"));
          store.saveAudit(SkillSchema, "skill", "keep", skill("changed"));
          store.deleteResourcesByKind("skill");
          throw boom;
        }),
      (error) => error === boom,
    );
    assert.deepEqual(names(store.listResources(SkillSchema, "skill")), [
      "before",
    ]);
    assert.deepEqual(store.listAuditHistory(SkillSchema, "skill", "keep"), []);
    assert.equal(count(path, "SELECT count(*) FROM resources"), 1);
    // The store is usable afterwards, inside and outside transactions.
    store.transaction(() =>
      store.saveResource(SkillSchema, "skill", "after", skill("after"))
    );
    assert.equal(store.listResources(SkillSchema, "skill").length, 2);
  }));

Deno.test("nested transactions: an inner throw caught by the outer keeps the outer writes", () =>
  withStore((store) => {
    store.transaction(() => {
      store.saveResource(SkillSchema, "skill", "outer-1", skill("outer-1"));
      assert.throws(
        () =>
          store.transaction(() => {
            store.saveResource(SkillSchema, "skill", "inner", skill("inner"));
            store.saveResource(
              SkillSchema,
              "skill",
              "outer-1",
              skill("overwritten"),
            );
            throw new Error("inner fails");
          }),
        /inner fails/,
      );
      store.transaction(() => {
        store.saveResource(SkillSchema, "skill", "inner-ok", skill("inner-ok"));
      });
      store.saveResource(SkillSchema, "skill", "outer-2", skill("outer-2"));
    });
    assert.deepEqual(names(store.listResources(SkillSchema, "skill")), [
      "inner-ok",
      "outer-1",
      "outer-2",
    ]);
  }));

Deno.test("an outer throw rolls back inner transactions that succeeded", () =>
  withStore((store) => {
    assert.throws(() =>
      store.transaction(() => {
        store.transaction(() => {
          store.transaction(() =>
            store.saveResource(SkillSchema, "skill", "deep", skill("deep"))
          );
        });
        throw new Error("outer fails");
      }), /outer fails/);
    assert.deepEqual(store.listResources(SkillSchema, "skill"), []);
  }));

Deno.test("a transaction callback that returns a promise is rolled back with a StoreError", () =>
  withStore((store) => {
    assertThrows(
      () =>
        store.transaction(() => {
          store.saveResource(SkillSchema, "skill", "async", skill("async"));
          return Promise.resolve("late");
        }),
      StoreError,
      /synchronous/,
    );
    assert.deepEqual(store.listResources(SkillSchema, "skill"), []);
    // A rejected promise is swallowed, not reported as unhandled.
    assertThrows(
      () => store.transaction(() => Promise.reject(new Error("rejected"))),
      StoreError,
      /synchronous/,
    );
    store.saveResource(SkillSchema, "skill", "sync", skill("sync"));
    assert.equal(store.listResources(SkillSchema, "skill").length, 1);
  }));

Deno.test("a message type recorded in a rolled-back write is recorded again", () =>
  withStore((store, path) => {
    const agent = create(AgentSchema, { name: "a" });
    assert.throws(() =>
      store.transaction(() => {
        store.saveResource(AgentSchema, "agent", "a1", agent);
        throw new Error("undo");
      }), /undo/);
    assertThrows(
      () => store.saveAudit(AgentSchema, "agent", "missing", agent),
      NotFoundError,
    );
    store.saveResource(AgentSchema, "agent", "a1", agent);
    store.saveAudit(AgentSchema, "agent", "a1", agent);
    assert.equal(store.getResource(AgentSchema, "agent", "a1").name, "a");
    const db = new DatabaseSync(path);
    try {
      assert.deepEqual(db.prepare("PRAGMA foreign_key_check").all(), []);
      const row = db.prepare(
        `SELECT s.type_name FROM resources r JOIN message_schemas s ON s.id = r.schema_id
         WHERE r.kind = 'agent' AND r.id = 'a1'`,
      ).get() as { type_name: string } | undefined;
      assert.equal(row?.type_name, "example.v1.Agent");
    } finally {
      db.close();
    }
  }));

Deno.test("`using` closes the store at the end of the block", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    let escaped: Store;
    {
      using store = openStore(path);
      escaped = store;
      store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    }
    assertThrows(
      () => escaped.listResources(SkillSchema, "skill"),
      StoreClosedError,
    );
    using again = openStore(path);
    assert.equal(again.getResource(SkillSchema, "skill", "s1").name, "s1");
  }));

Deno.test("a read-only store reads, and every write throws StoreError", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    {
      using store = openStore(path);
      store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
      store.saveAudit(SkillSchema, "skill", "s1", skill("s1"), {
        versionHash: "h",
        tag: "t",
      });
    }
    const before = Deno.readFileSync(path);
    {
      using ro = openStore(path, { readOnly: true });
      assert.equal(ro.path, path);
      assert.equal(ro.getResource(SkillSchema, "skill", "s1").name, "s1");
      assert.equal(ro.listResources(SkillSchema, "skill").length, 1);
      assert.equal(
        ro.getAuditByHash(SkillSchema, "skill", "s1", "h").name,
        "s1",
      );
      assert.equal(
        ro.getAuditByTag(SkillSchema, "skill", "s1", "t").name,
        "s1",
      );
      assert.equal(ro.listAuditHistory(SkillSchema, "skill", "s1").length, 1);
      assert.equal(
        ro.transaction(() => ro.listResources(SkillSchema, "skill").length),
        1,
      );
      const writes: [string, () => unknown][] = [
        [
          "saveResource",
          () => ro.saveResource(SkillSchema, "skill", "s2", skill("s2")),
        ],
        ["deleteResource", () => ro.deleteResource("skill", "s1")],
        ["deleteResourcesByKind", () => ro.deleteResourcesByKind("skill")],
        [
          "deleteResourcesByIdPrefix",
          () => ro.deleteResourcesByIdPrefix("skill", "s"),
        ],
        [
          "saveAudit",
          () => ro.saveAudit(SkillSchema, "skill", "s1", skill("s1")),
        ],
        [
          "deleteAuditByResourceId",
          () => ro.deleteAuditByResourceId("skill", "s1"),
        ],
        [
          "write in transaction",
          () =>
            ro.transaction(() =>
              ro.saveResource(SkillSchema, "skill", "s3", skill("s3"))
            ),
        ],
      ];
      for (const [name, write] of writes) {
        assert.throws(write, (error: unknown) => {
          assert.ok(error instanceof StoreError, `${name}: ${String(error)}`);
          assert.ok(!(error instanceof StoreClosedError), name);
          assert.equal(error.code, "read_only", name);
          return true;
        });
      }
    }
    assert.deepEqual(Deno.readFileSync(path), before);
    using store = openStore(path);
    assert.equal(store.listResources(SkillSchema, "skill").length, 1);
    assert.equal(store.listAuditHistory(SkillSchema, "skill", "s1").length, 1);
  }));

Deno.test("a read-only open of a missing file throws StoreError and creates nothing", () =>
  withTempDir((dir) => {
    const path = `${dir}/sub/missing.sqlite`;
    assert.throws(
      () => openStore(path, { readOnly: true }),
      (error: unknown) =>
        error instanceof StoreError && error.code === "cant_open",
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  }));

Deno.test("a read-only open with pending migrations throws MigrationError saying to migrate", () =>
  withTempDir((dir) => {
    const path = `${dir}/empty.sqlite`;
    Deno.writeFileSync(path, new Uint8Array());
    assertThrows(
      () => openStore(path, { readOnly: true }),
      MigrationError,
      /pending/,
      /migrate/,
    );
    assertThrows(
      () => openStore(path, { migrate: false }),
      MigrationError,
      /migrate/,
    );
    assert.equal(Deno.statSync(path).size, 0);
    // Migrating then makes the read-only open work.
    openStore(path).close();
    openStore(path, { readOnly: true }).close();
  }));

Deno.test("openStore creates the parent directory; new file 0600 and directory 0700", () =>
  withTempDir((dir) => {
    const path = `${dir}/nested/deeper/db.sqlite`;
    using store = openStore(path);
    store.saveResource(SkillSchema, "skill", "s1", skill("s1"));
    assert.equal(store.path, path);
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(Deno.statSync(`${dir}/nested`).mode! & 0o777, 0o700);
    assert.equal(Deno.statSync(`${dir}/nested/deeper`).mode! & 0o777, 0o700);
    // SQLite's side files inherit the database file's mode.
    for (const suffix of ["-wal", "-shm"]) {
      const info = Deno.statSync(path + suffix);
      assert.equal(info.mode! & 0o777, 0o600, suffix);
    }
  }));

Deno.test("connections use WAL, synchronous=NORMAL, foreign keys and a busy timeout", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    openStore(path, { busyTimeoutMs: 1234 }).close();
    const db = new DatabaseSync(path);
    try {
      const mode = db.prepare("PRAGMA journal_mode").get() as {
        journal_mode: string;
      };
      assert.equal(mode.journal_mode, "wal");
    } finally {
      db.close();
    }
    // The per-connection settings, read through the store's own connection.
    using store = openStore(path, { busyTimeoutMs: 1234 });
    const conn = Store.connectionOf(store);
    const pragma = (name: string) =>
      Object.values(conn.prepare(`PRAGMA ${name}`).get()!)[0];
    assert.equal(pragma("synchronous"), 1); // NORMAL
    assert.equal(pragma("foreign_keys"), 1);
    assert.equal(pragma("busy_timeout"), 1234);
    assert.equal(pragma("journal_mode"), "wal");
  }));

Deno.test("each message type is recorded once with a FileDescriptorSet that decodes its rows", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const original = skill("described", {
      createdAt: timestampFromDate(new Date("2026-01-25T10:00:00.000Z")),
      labels: { a: "b" },
      limits: { maxTokens: 7 },
    });
    {
      using store = openStore(path);
      for (let i = 0; i < 10; i++) {
        store.saveResource(
          SkillSchema,
          "skill",
          `s${i}`,
          i === 0 ? original : skill(`s${i}`),
        );
        store.saveAudit(SkillSchema, "skill", `s${i}`, skill(`s${i}`));
      }
      for (let i = 0; i < 3; i++) {
        store.saveResource(
          AgentSchema,
          "agent",
          `a${i}`,
          create(AgentSchema, { name: "a" }),
        );
      }
    }
    {
      using store = openStore(path); // a new connection: no cached ids
      store.saveResource(SkillSchema, "skill", "s99", skill("s99"));
      store.saveResource(
        AgentSchema,
        "agent",
        "a99",
        create(AgentSchema, { name: "a" }),
      );
    }
    const db = new DatabaseSync(path);
    try {
      const schemas = db.prepare(
        "SELECT id, type_name, digest, descriptor_set FROM message_schemas ORDER BY type_name",
      ).all() as {
        id: number;
        type_name: string;
        digest: string;
        descriptor_set: Uint8Array;
      }[];
      assert.deepEqual(schemas.map((s) => s.type_name), [
        "example.v1.Agent",
        "example.v1.Skill",
      ]);
      const skillRow = schemas[1];

      const set = fromBinary(FileDescriptorSetSchema, skillRow.descriptor_set);
      assert.deepEqual(set.file.map((f) => f.name), [
        "google/protobuf/timestamp.proto",
        "example/v1/example.proto",
      ]);
      const registry = createFileRegistry(set);
      const desc = registry.getMessage("example.v1.Skill");
      assert.ok(desc, "the descriptor set describes example.v1.Skill");
      const row = db.prepare(
        "SELECT data, schema_id FROM resources WHERE kind = 'skill' AND id = 's0'",
      ).get() as { data: Uint8Array; schema_id: number };
      assert.equal(row.schema_id, skillRow.id);
      assert.deepEqual(
        toJson(desc, fromBinary(desc, row.data)),
        toJson(SkillSchema, original),
      );
      // Every row written through the store names its type.
      const untyped = db.prepare(
        `SELECT (SELECT count(*) FROM resources WHERE schema_id IS NULL) +
                (SELECT count(*) FROM resource_audit WHERE schema_id IS NULL) AS n`,
      ).get() as { n: number };
      assert.equal(untyped.n, 0);
      const auditTypes = db.prepare(
        `SELECT DISTINCT s.type_name FROM resource_audit a
         JOIN message_schemas s ON s.id = a.schema_id`,
      ).all() as { type_name: string }[];
      assert.deepEqual(auditTypes.map((r) => r.type_name), [
        "example.v1.Skill",
      ]);
      // The blob is the message's bytes, nothing else.
      assert.deepEqual(row.data, toBinary(SkillSchema, original));
    } finally {
      db.close();
    }
  }));

Deno.test("queries by kind, (kind, id), hash, tag, history and the cascade use indexes", () =>
  withStore((store, path) => {
    // Some data, so the plan is the one a used database gets.
    for (let i = 0; i < 50; i++) {
      store.saveResource(SkillSchema, "skill", `s${i}`, skill(`s${i}`));
      store.saveAudit(SkillSchema, "skill", `s${i}`, skill(`s${i}`), {
        versionHash: `h${i}`,
        tag: "t",
      });
    }
    // The statements of src/store.ts (its SQL map). `ordered`: the index must also give the order (no
    // sort); `cascades`: the plan must show the indexed lookup of the audit rows that
    // ON DELETE CASCADE deletes.
    const plans: Record<
      Exclude<keyof typeof SQL, "upsert" | "create" | "currentRevision">,
      { ordered?: boolean; cascades?: boolean }
    > = {
      get: {},
      entry: {},
      revisionOf: {},
      updateIf: {},
      deleteIf: { cascades: true },
      page: { ordered: true },
      historyFirst: { ordered: true },
      historyPage: { ordered: true },
      list: { ordered: true },
      listConcat: { ordered: true },
      listTypeMismatch: { ordered: true },
      delete: { cascades: true },
      deleteKind: { cascades: true },
      deleteIdRange: { cascades: true },
      deleteIdFrom: { cascades: true },
      insertAudit: {},
      auditByHash: { ordered: true },
      auditByTag: { ordered: true },
      history: { ordered: true },
      deleteAudit: {},
      deleteOrphanAudit: {},
      orphanHistory: { ordered: true },
    };
    // The upsert's plan has no table access line to check; every other statement is.
    const queries = Object.entries(plans).map(([name, expect]) => ({
      name,
      sql: SQL[name as keyof typeof plans],
      ...expect,
    }));
    const db = new DatabaseSync(path);
    try {
      for (const { name, sql, ordered, cascades } of queries) {
        const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as {
          detail: string;
        }[];
        const plan = rows.map((r) => r.detail).join(" | ");
        const why = `${name}: ${plan}`;
        assert.doesNotMatch(
          plan,
          /\bSCAN (resources|resource_audit|resource_audit_orphans)\b/,
          why,
        );
        assert.match(
          plan,
          /\bSEARCH (resources|resource_audit|resource_audit_orphans)\b/,
          why,
        );
        // Rows come in index order, never sorted; the listing's set of distinct schema
        // ids (a few integers) is the only temporary b-tree allowed.
        if (ordered) {
          assert.doesNotMatch(
            plan,
            /TEMP B-TREE FOR (?!group_concat\(DISTINCT\))/,
            why,
          );
        }
        if (cascades) assert.match(plan, /\bSEARCH resource_audit\b/, why);
      }
    } finally {
      db.close();
    }
  }));
