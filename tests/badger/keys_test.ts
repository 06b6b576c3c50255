import assert from "node:assert/strict";
import { classifyKey } from "../../src/badger/keys.ts";
import { mulberry32 } from "../helpers/prng.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("keys are classified as resource, audit, badger-internal or invalid", () => {
  const cases: [string | Uint8Array, ReturnType<typeof classifyKey>][] = [
    ["skill/s1", { type: "resource", kind: "skill", id: "s1" }],
    ["skill/a/b/c", { type: "resource", kind: "skill", id: "a/b/c" }],
    [
      "skill/skill_audit/s1/1700000300123456789",
      {
        type: "audit",
        kind: "skill",
        resourceId: "s1",
        archivedAtMs: 1700000300123,
      },
    ],
    [
      "skill/skill_audit/a/b/12/1700000000999999999",
      {
        type: "audit",
        kind: "skill",
        resourceId: "a/b/12",
        archivedAtMs: 1700000000999,
      },
    ],
    ["skill/skill_audit/s1/999999", {
      type: "audit",
      kind: "skill",
      resourceId: "s1",
      archivedAtMs: 0,
    }],
    ["skill/skill_audit/s1/9999999999999999999", {
      type: "audit",
      kind: "skill",
      resourceId: "s1",
      archivedAtMs: 9999999999999,
    }],
    // Not audits: 20 digits, non-digit tail, empty resource id, too few segments, other
    // kind's audit prefix, `_` not a wildcard.
    ["skill/skill_audit/s1/12345678901234567890", {
      type: "resource",
      kind: "skill",
      id: "skill_audit/s1/12345678901234567890",
    }],
    ["skill/skill_audit/s1/12a", {
      type: "resource",
      kind: "skill",
      id: "skill_audit/s1/12a",
    }],
    ["skill/skill_audit/s1/", {
      type: "resource",
      kind: "skill",
      id: "skill_audit/s1/",
    }],
    ["skill/skill_audit//123", {
      type: "resource",
      kind: "skill",
      id: "skill_audit//123",
    }],
    ["skill/skill_audit/123", {
      type: "resource",
      kind: "skill",
      id: "skill_audit/123",
    }],
    ["skill/agent_audit/a1/123", {
      type: "resource",
      kind: "skill",
      id: "agent_audit/a1/123",
    }],
    ["skill/skillxaudit/s1/123", {
      type: "resource",
      kind: "skill",
      id: "skillxaudit/s1/123",
    }],
    ["x/xaudit/s1/123", { type: "resource", kind: "x", id: "xaudit/s1/123" }],
    ["!badger!head", { type: "badger-internal" }],
    ["!badger!", { type: "badger-internal" }],
    ["!badger", {
      type: "invalid",
      reason: "key has no '/' separating kind and id",
    }],
    ["noslash", {
      type: "invalid",
      reason: "key has no '/' separating kind and id",
    }],
    ["", { type: "invalid", reason: "key has no '/' separating kind and id" }],
    ["/id", {
      type: "invalid",
      reason: "key has an empty kind (starts with '/')",
    }],
    ["kind/", {
      type: "invalid",
      reason: "key has an empty id (ends with its first '/')",
    }],
    [new Uint8Array([0x61, 0x2f, 0xff]), {
      type: "invalid",
      reason: "key is not valid UTF-8",
    }],
    [new Uint8Array([0x61, 0x2f, 0xc3]), {
      type: "invalid",
      reason: "key is not valid UTF-8",
    }],
    [
      new Uint8Array([0x61, 0x2f, 0xed, 0xa0, 0x80]), // an encoded surrogate
      { type: "invalid", reason: "key is not valid UTF-8" },
    ],
    ["\uFEFFkind/id", { type: "resource", kind: "\uFEFFkind", id: "id" }],
    ["grüße/ünï\u0000cødé", {
      type: "resource",
      kind: "grüße",
      id: "ünï\u0000cødé",
    }],
    [
      `k/${"é".repeat(40)}`, // longer than the ASCII fast path
      { type: "resource", kind: "k", id: "é".repeat(40) },
    ],
    [`k/${"x".repeat(100)}`, {
      type: "resource",
      kind: "k",
      id: "x".repeat(100),
    }],
  ];
  for (const [key, expected] of cases) {
    const raw = typeof key === "string" ? bytes(key) : key;
    assert.deepEqual(classifyKey(raw), expected, hex(raw));
  }
});

Deno.test("fuzz: classifyKey accepts any bytes", () => {
  const rand = mulberry32(7);
  for (let i = 0; i < 20_000; i++) {
    const key = new Uint8Array(rand() % 80).map(() =>
      rand() % 3 === 0
        ? 0x2f
        : rand() % 2
        ? 0x30 + (rand() % 10)
        : rand() & 0xff
    );
    const result = classifyKey(key);
    assert.ok(
      ["resource", "audit", "badger-internal", "invalid"].includes(result.type),
    );
  }
});
