/**
 * Listing without one JS array and one `Uint8Array` per row: SQLite hands over the rows'
 * bytes as one blob (`group_concat(data, '')`) plus their lengths as text
 * (`group_concat(length(data))`), which {@linkcode parseLengths} reads back; each row is
 * then a view (`subarray`) of the one blob.
 *
 * Each row still gets its own `fromBinary` on its own view, so a row is decoded exactly
 * as on its own: decoding all rows as one wrapper message's repeated field was faster
 * again, but protobuf-es does not check that a nested message ends at its length, so a
 * corrupt row could read into the next one instead of failing.
 *
 * @module
 */

/**
 * Parses `group_concat(length(data))` text ("12,0,345") into `count` lengths; `null`
 * when it does not hold exactly `count` of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLengths } from "./concat.ts";
 *
 * assert.deepEqual(Array.from(parseLengths("12,0,345", 3)!), [12, 0, 345]);
 * assert.equal(parseLengths("12,0", 3), null);
 * ```
 */
export function parseLengths(text: string, count: number): Uint32Array | null {
  const lengths = new Uint32Array(count);
  let k = 0;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 44) {
      if (k === count) return null;
      lengths[k++] = value;
      value = 0;
    } else if (c >= 48 && c <= 57) {
      value = value * 10 + c - 48;
    } else {
      return null;
    }
  }
  if (k !== count - 1) return null;
  lengths[k] = value;
  return lengths;
}
