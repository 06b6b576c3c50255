/**
 * Field-level differences between two decoded messages (JSON data), for
 * `audit-history --diff`.
 *
 * @module
 */

import { escapeControl } from "./text.ts";

/**
 * One difference found by {@linkcode diffJson}. `path` locates the value: object keys
 * joined with `.` when they are identifiers (`limits.maxTokens`), in brackets and
 * quoted otherwise (`labels["a.b"]`), array indexes in brackets (`tools[2]`); the empty
 * string is the whole value. `before` is present for `"removed"` and `"changed"`,
 * `after` for `"added"` and `"changed"`.
 *
 * @example
 * ```ts
 * import type { Change } from "./diff.ts";
 * import assert from "node:assert/strict";
 *
 * const change: Change = { path: "limits.maxTokens", op: "changed", before: 100, after: 200 };
 * assert.ok(change.op === "changed" && change.after === 200);
 * ```
 */
export type Change =
  | { path: string; op: "added"; after: unknown }
  | { path: string; op: "removed"; before: unknown }
  | { path: string; op: "changed"; before: unknown; after: unknown };

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function keyPath(parent: string, key: string): string {
  if (!IDENTIFIER.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function walk(
  path: string,
  before: unknown,
  after: unknown,
  out: Change[],
): void {
  if (before === after) return;
  if (Array.isArray(before) && Array.isArray(after)) {
    const length = Math.max(before.length, after.length);
    for (let i = 0; i < length; i++) {
      const itemPath = `${path}[${i}]`;
      if (i >= before.length) {
        out.push({ path: itemPath, op: "added", after: after[i] });
      } else if (i >= after.length) {
        out.push({ path: itemPath, op: "removed", before: before[i] });
      } else {
        walk(itemPath, before[i], after[i], out);
      }
    }
    return;
  }
  if (isObject(before) && isObject(after)) {
    // A key whose value is undefined is absent, as in JSON.
    for (const key of Object.keys(before)) {
      const old = before[key];
      if (old === undefined) continue;
      const now = Object.hasOwn(after, key) ? after[key] : undefined;
      if (now === undefined) {
        out.push({ path: keyPath(path, key), op: "removed", before: old });
      } else {
        walk(keyPath(path, key), old, now, out);
      }
    }
    for (const key of Object.keys(after)) {
      const now = after[key];
      if (now === undefined) continue;
      if (Object.hasOwn(before, key) && before[key] !== undefined) continue;
      out.push({ path: keyPath(path, key), op: "added", after: now });
    }
    return;
  }
  if (Number.isNaN(before) && Number.isNaN(after)) return;
  out.push({ path, op: "changed", before, after });
}

/**
 * Lists the differences between two JSON values, e.g. two snapshots of a message
 * decoded by `decodeBlob`. Objects are compared key by key and arrays index by index
 * (an element inserted at the front shows as every later index changed, plus one
 * added at the end); anything else that differs, including a change of type, is one
 * `"changed"` entry. An added or removed object is one entry, not one per leaf.
 *
 * The order is traversal order, so it is deterministic: depth first; within an object
 * the keys of `before` in their order, then the keys only `after` has in theirs (for
 * protobuf JSON that is field order); within an array by index.
 *
 * @param before The older value (JSON data: objects, arrays, strings, numbers,
 * booleans, null).
 * @param after The newer value.
 * @returns The changes; empty when the values are equal.
 *
 * @example
 * ```ts
 * import { diffJson } from "./diff.ts";
 * import assert from "node:assert/strict";
 *
 * const before = { name: "a", tools: ["x"], labels: { "a.b": "1" }, limits: { maxTokens: 1 } };
 * const after = { name: "a", tools: ["x", "y"], labels: {}, limits: { maxTokens: 2 } };
 * assert.deepEqual(diffJson(before, after), [
 *   { path: "tools[1]", op: "added", after: "y" },
 *   { path: 'labels["a.b"]', op: "removed", before: "1" },
 *   { path: "limits.maxTokens", op: "changed", before: 1, after: 2 },
 * ]);
 * ```
 */
export function diffJson(before: unknown, after: unknown): Change[] {
  const out: Change[] = [];
  walk("", before, after, out);
  return out;
}

/**
 * Options of {@linkcode formatChange}.
 *
 * @example
 * ```ts
 * import { formatChange, type FormatChangeOptions } from "./diff.ts";
 * import assert from "node:assert/strict";
 *
 * const options: FormatChangeOptions = { maxValueLength: 5 };
 * const line = formatChange({ path: "name", op: "added", after: "abcdefgh" }, options);
 * assert.ok(line === '+ name: "abc…');
 * ```
 */
export interface FormatChangeOptions {
  /**
   * Longest value shown, in UTF-16 code units of its JSON text; longer values are cut
   * and end in `…`. Default 200; `Infinity` shows everything.
   */
  maxValueLength?: number;
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

function showValue(value: unknown, max: number): string {
  const text = JSON.stringify(value, bigintAsString) ?? String(value);
  if (text.length <= max) return text;
  let cut = Math.max(0, max - 1);
  // never split a surrogate pair
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return `${text.slice(0, cut)}…`;
}

/**
 * One line of human output for a change: `path: old → new`, `+ path: new` or
 * `- path: old`, values as JSON (strings quoted). The whole value is `(root)`. Control
 * characters are escaped (see `escapeControl` in `text.ts`), so message contents can
 * never act on the terminal.
 *
 * @param change A change from {@linkcode diffJson}.
 * @param options `maxValueLength`: cut long values (default 200).
 * @returns The line, without a newline.
 *
 * @example
 * ```ts
 * import { formatChange } from "./diff.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   formatChange({ path: "limits.maxTokens", op: "changed", before: 1, after: 2 }),
 *   "limits.maxTokens: 1 → 2",
 * );
 * assert.equal(formatChange({ path: "tools[1]", op: "added", after: "y" }), '+ tools[1]: "y"');
 * assert.equal(formatChange({ path: "tag", op: "removed", before: "\x9b2J" }), '- tag: "\\x9b2J"');
 * ```
 */
export function formatChange(
  change: Change,
  options?: FormatChangeOptions,
): string {
  const max = options?.maxValueLength ?? 200;
  const path = change.path === "" ? "(root)" : change.path;
  let line: string;
  switch (change.op) {
    case "added":
      line = `+ ${path}: ${showValue(change.after, max)}`;
      break;
    case "removed":
      line = `- ${path}: ${showValue(change.before, max)}`;
      break;
    case "changed":
      line = `${path}: ${showValue(change.before, max)} → ${
        showValue(change.after, max)
      }`;
      break;
  }
  return escapeControl(line);
}
