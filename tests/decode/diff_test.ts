import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { decodeBlob, RegistryCache } from "../../src/decode/descriptors.ts";
import { type Change, diffJson, formatChange } from "../../src/decode/diff.ts";
import {
  SkillSchema,
  Visibility,
} from "../fixtures/gen/example/v1/example_pb.ts";

const descriptorSet = Deno.readFileSync(
  new URL("../fixtures/example.binpb", import.meta.url),
);

Deno.test("equal values have no changes", () => {
  const value = { a: [1, { b: null }], c: "x", d: true };
  assert.deepEqual(diffJson(value, structuredClone(value)), []);
  assert.deepEqual(diffJson(null, null), []);
  assert.deepEqual(diffJson([], []), []);
});

Deno.test("changed, added and removed fields are listed with their paths", () => {
  const before = {
    name: "a",
    limits: { maxTokens: 1, temperature: 0.5 },
    tools: ["x", "y", "z"],
    labels: { "a.b": "1", 'say "hi"': "2", "": "3", "1": "4", ok_key$: "5" },
  };
  const after = {
    name: "b",
    limits: { maxTokens: 2 },
    tools: ["x", "Y"],
    labels: {
      "a.b": "1",
      'say "hi"': "two",
      "": "3",
      "1": "4",
      ok_key$: "five",
    },
    createdAt: "2026-01-25T10:00:00Z",
  };
  assert.deepEqual(diffJson(before, after), [
    { path: "name", op: "changed", before: "a", after: "b" },
    { path: "limits.maxTokens", op: "changed", before: 1, after: 2 },
    { path: "limits.temperature", op: "removed", before: 0.5 },
    { path: "tools[1]", op: "changed", before: "y", after: "Y" },
    { path: "tools[2]", op: "removed", before: "z" },
    {
      path: 'labels["say \\"hi\\""]',
      op: "changed",
      before: "2",
      after: "two",
    },
    { path: "labels.ok_key$", op: "changed", before: "5", after: "five" },
    { path: "createdAt", op: "added", after: "2026-01-25T10:00:00Z" },
  ]);
});

Deno.test("the order is traversal order: before's keys, then keys only after has", () => {
  const changes = diffJson(
    { z: 1, a: 1, m: { y: 1, b: 1 } },
    { n: 2, m: { c: 2, b: 2 }, a: 2, z: 2 },
  );
  assert.deepEqual(changes.map((change) => change.path), [
    "z",
    "a",
    "m.y",
    "m.b",
    "m.c",
    "n",
  ]);
});

Deno.test("quoted keys, numeric keys and array indexes make unambiguous paths", () => {
  const paths = diffJson(
    { "1": 0, "a-b": 0, "$ok": 0, list: [[0]] },
    { "1": 1, "a-b": 1, "$ok": 1, list: [[1]] },
  ).map((change) => change.path);
  // numeric keys come first: JavaScript orders integer-like keys before others
  assert.deepEqual(paths, ['["1"]', '["a-b"]', "$ok", "list[0][0]"]);
});

Deno.test("a whole added or removed object is one change, and type changes are changes", () => {
  assert.deepEqual(diffJson({}, { limits: { maxTokens: 1 } }), [
    { path: "limits", op: "added", after: { maxTokens: 1 } },
  ]);
  assert.deepEqual(diffJson({ tools: ["a"] }, {}), [
    { path: "tools", op: "removed", before: ["a"] },
  ]);
  assert.deepEqual(diffJson({ v: { a: 1 } }, { v: [1] }), [
    { path: "v", op: "changed", before: { a: 1 }, after: [1] },
  ]);
  assert.deepEqual(diffJson({ v: null }, { v: 0 }), [
    { path: "v", op: "changed", before: null, after: 0 },
  ]);
  assert.deepEqual(diffJson(1, 2), [{
    path: "",
    op: "changed",
    before: 1,
    after: 2,
  }]);
  assert.deepEqual(diffJson([1], [1, 2]), [{
    path: "[1]",
    op: "added",
    after: 2,
  }]);
  // undefined is absence, as in JSON
  assert.deepEqual(diffJson({ a: undefined }, {}), []);
  assert.deepEqual(diffJson({ a: undefined }, { a: 1 }), [
    { path: "a", op: "added", after: 1 },
  ]);
});

Deno.test("two decoded Skill snapshots diff field by field", () => {
  const cache = new RegistryCache();
  const decode = (init: Parameters<typeof create<typeof SkillSchema>>[1]) =>
    decodeBlob(toBinary(SkillSchema, create(SkillSchema, init)), {
      stored: { typeName: "example.v1.Skill", descriptorSet, key: "1" },
      cache,
    }).message;
  const before = decode({
    name: "s",
    tools: ["a", "b"],
    labels: { "a.b": "1" },
    limits: { maxTokens: 100 },
  });
  const after = decode({
    name: "s",
    tools: ["a", "b", "c"],
    labels: { "a.b": "2" },
    visibility: Visibility.PRIVATE,
    createdAt: timestampFromDate(new Date("2026-01-25T10:00:00.000Z")),
    limits: { maxTokens: 200 },
  });
  assert.deepEqual(
    diffJson(before, after).map((change) => formatChange(change)),
    [
      '+ tools[2]: "c"',
      'labels["a.b"]: "1" → "2"',
      "limits.maxTokens: 100 → 200",
      '+ visibility: "VISIBILITY_PRIVATE"',
      '+ createdAt: "2026-01-25T10:00:00Z"',
    ],
  );
});

Deno.test("wire dumps diff too", () => {
  const before =
    decodeBlob(new Uint8Array([0x08, 0x01, 0x12, 0x01, 0x61]), {}).message;
  const after =
    decodeBlob(new Uint8Array([0x08, 0x02, 0x12, 0x01, 0x62]), {}).message;
  assert.deepEqual(diffJson(before, after).map((change) => change.path), [
    "[0].value",
    "[0].zigzag",
    "[1].string",
  ]);
});

Deno.test("formatChange writes one line per change", () => {
  const cases: [Change, string][] = [
    [{ path: "a.b", op: "changed", before: 1, after: "1" }, 'a.b: 1 → "1"'],
    [
      { path: "tools[0]", op: "added", after: { x: [1] } },
      '+ tools[0]: {"x":[1]}',
    ],
    [{ path: "tag", op: "removed", before: null }, "- tag: null"],
    [{ path: "", op: "changed", before: 1, after: 2 }, "(root): 1 → 2"],
    [{ path: "n", op: "added", after: 12n }, '+ n: "12"'],
  ];
  for (const [change, line] of cases) assert.equal(formatChange(change), line);
});

Deno.test("formatChange never lets control characters through", () => {
  const hostile = "\x1b]0;pwned\x07\x1b[2J\r\u009b31m\u202egnp.exe\u2028\x7f";
  const line = formatChange({
    path: `labels[${JSON.stringify(hostile)}]`,
    op: "changed",
    before: hostile,
    after: "ok",
  });
  assert.doesNotMatch(line, /[\p{Cc}\u2028\u202e]/u);
  assert.ok(line.includes("\\u001b]0;pwned"), line); // JSON escaped C0 controls
  assert.ok(line.includes("\\x9b31m"), line); // escapeControl escaped C1 controls
  assert.ok(line.includes("\\u202egnp.exe"), line);
});

Deno.test("formatChange cuts long values, never inside a surrogate pair", () => {
  const line = formatChange(
    { path: "payload", op: "added", after: "x".repeat(1000) },
  );
  assert.equal(line, `+ payload: "${"x".repeat(198)}…`);
  assert.equal(
    formatChange({ path: "p", op: "added", after: "😀😀" }, {
      maxValueLength: 3,
    }),
    '+ p: "…',
  );
  const full = formatChange(
    { path: "payload", op: "added", after: "x".repeat(1000) },
    { maxValueLength: Infinity },
  );
  assert.equal(full.length, "+ payload: ".length + 1002);
});
