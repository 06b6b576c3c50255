/**
 * The mapping of Badger keys to protostore: resources (`<kind>/<id>`), legacy audit
 * snapshots (`<kind>/<kind>_audit/<resourceId>/<unixNanos>`), Badger's own `!badger!`
 * keys, and keys that cannot be mapped.
 *
 * @module
 */

/** What a Badger key becomes in protostore. */
export type BadgerKeyClass =
  | { type: "resource"; kind: string; id: string }
  | {
    type: "audit";
    kind: string;
    resourceId: string;
    /** Milliseconds since the epoch: the key's nanoseconds divided by 10^6, truncated. */
    archivedAtMs: number;
  }
  | { type: "badger-internal" }
  | { type: "invalid"; reason: string };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// "!badger!"
const INTERNAL_PREFIX = [0x21, 0x62, 0x61, 0x64, 0x67, 0x65, 0x72, 0x21];

function decodeKey(key: Uint8Array): string | undefined {
  const n = key.length;
  // Short ASCII keys (the usual case) without a TextDecoder call.
  if (n <= 64) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (key[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      return String.fromCharCode.apply(null, key as unknown as number[]);
    }
  }
  try {
    return utf8.decode(key);
  } catch {
    return undefined;
  }
}

/**
 * Classifies a Badger key:
 * - `!badger!…`: Badger's own bookkeeping, `badger-internal`;
 * - not valid UTF-8, no `/`, empty kind or empty id: `invalid` with the reason;
 * - `<kind>/<kind>_audit/<resourceId>/<unixNanos>` (resourceId non-empty, may contain
 *   `/`; unixNanos 1 to 19 ASCII digits): `audit`, archived at the nanoseconds
 *   truncated to the millisecond;
 * - any other `<kind>/<id>`: `resource`.
 *
 * @param key The key bytes.
 * @returns The classification.
 *
 * @example
 * ```ts
 * import { classifyKey } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * assert.deepEqual(classifyKey(bytes("skill/s1")), { type: "resource", kind: "skill", id: "s1" });
 * assert.deepEqual(classifyKey(bytes("skill/skill_audit/s1/1700000000123456789")), {
 *   type: "audit",
 *   kind: "skill",
 *   resourceId: "s1",
 *   archivedAtMs: 1700000000123,
 * });
 * assert.equal(classifyKey(bytes("!badger!head")).type, "badger-internal");
 * assert.equal(classifyKey(bytes("no-slash")).type, "invalid");
 * ```
 */
export function classifyKey(key: Uint8Array): BadgerKeyClass {
  if (key.length >= 8) {
    let internal = true;
    for (let i = 0; i < 8; i++) {
      if (key[i] !== INTERNAL_PREFIX[i]) {
        internal = false;
        break;
      }
    }
    if (internal) return { type: "badger-internal" };
  }
  const text = decodeKey(key);
  if (text === undefined) {
    return { type: "invalid", reason: "key is not valid UTF-8" };
  }
  return classifyKeyText(text);
}

/**
 * {@linkcode classifyKey} for a key already decoded from UTF-8 (no `!badger!` check).
 *
 * @param text The key as text.
 * @returns The classification (never `badger-internal`).
 *
 * @example
 * ```ts
 * import { classifyKeyText } from "./keys.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(classifyKeyText("agent/a/b"), { type: "resource", kind: "agent", id: "a/b" });
 * ```
 */
export function classifyKeyText(text: string): BadgerKeyClass {
  const slash = text.indexOf("/");
  if (slash < 0) {
    return { type: "invalid", reason: "key has no '/' separating kind and id" };
  }
  if (slash === 0) {
    return {
      type: "invalid",
      reason: "key has an empty kind (starts with '/')",
    };
  }
  if (slash === text.length - 1) {
    return {
      type: "invalid",
      reason: "key has an empty id (ends with its first '/')",
    };
  }
  const kind = text.slice(0, slash);
  // rest = "<kind>_audit/<resourceId>/<digits>"
  const auditStart = slash + 1;
  const tailStart = auditStart + kind.length + 7;
  if (
    text.length > tailStart + 2 &&
    text.charCodeAt(tailStart - 1) === 0x2f &&
    text.startsWith("_audit", auditStart + kind.length) &&
    text.startsWith(kind, auditStart)
  ) {
    const lastSlash = text.lastIndexOf("/");
    const digits = text.length - lastSlash - 1;
    if (lastSlash > tailStart && digits >= 1 && digits <= 19) {
      let allDigits = true;
      for (let i = lastSlash + 1; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c < 0x30 || c > 0x39) {
          allDigits = false;
          break;
        }
      }
      if (allDigits) {
        // Integer division by 10^6 on the digit string: exact, no float rounding.
        const archivedAtMs = digits > 6
          ? Number(text.slice(lastSlash + 1, text.length - 6))
          : 0;
        return {
          type: "audit",
          kind,
          resourceId: text.slice(tailStart, lastSlash),
          archivedAtMs,
        };
      }
    }
  }
  return { type: "resource", kind, id: text.slice(slash + 1) };
}
