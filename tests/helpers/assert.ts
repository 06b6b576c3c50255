/**
 * Assertions shared by test files beyond `node:assert/strict`.
 *
 * @module
 */
import assert from "node:assert/strict";

/**
 * Asserts `fn` throws an instance of `type` whose message matches every pattern.
 *
 * @example
 * ```ts
 * import { assertThrows } from "./assert.ts";
 *
 * assertThrows(() => {
 *   throw new RangeError("id 7 is out of range");
 * }, RangeError, /id 7/, /range/);
 * ```
 */
export function assertThrows(
  fn: () => unknown,
  type: new (...args: never[]) => Error,
  ...patterns: RegExp[]
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(
      error instanceof type,
      `expected ${type.name}, got ${String(error)}`,
    );
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}
