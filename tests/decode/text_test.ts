import assert from "node:assert/strict";
import { escapeControl } from "../../src/decode/text.ts";

Deno.test("escapeControl makes control characters visible", () => {
  assert.equal(escapeControl("a\nb\rc\td"), "a\\nb\\rc\\td");
  assert.equal(escapeControl("\x00\x1b[2J\x7f"), "\\x00\\x1b[2J\\x7f");
  assert.equal(escapeControl("\u0085\u009b"), "\\x85\\x9b");
  assert.equal(
    escapeControl("\u202eabc\u2066\u2028"),
    "\\u202eabc\\u2066\\u2028",
  );
  assert.equal(
    escapeControl("lone \ud800 surrogate"),
    "lone \\ud800 surrogate",
  );
});

Deno.test("escapeControl keeps printable text, including non-ASCII and emoji", () => {
  for (const text of ["", "plain", "grüße 世界 😀", 'back\\slash "quoted"']) {
    assert.equal(escapeControl(text), text);
  }
});
