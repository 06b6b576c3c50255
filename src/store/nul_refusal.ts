/**
 * NUL (U+0000) in names: PostgreSQL's `text` cannot hold it, so every backend behind
 * `AsyncStore` refuses it in kinds, ids, version hashes and tags with the same error
 * (the synchronous SQLite `Store` still accepts it, as it always has).
 *
 * @module
 */
import { StoreError } from "../errors.ts";

/**
 * Throws {@linkcode StoreError} when a named string argument holds NUL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuseNul } from "./nul_refusal.ts";
 *
 * refuseNul({ kind: "agent", id: "a1" });
 * assert.throws(() => refuseNul({ id: "a\u0000b" }), /NUL/);
 * ```
 */
export function refuseNul(args: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(args)) {
    if (typeof value === "string" && value.includes("\u0000")) {
      throw new StoreError(
        `${name} ${
          JSON.stringify(value)
        } contains NUL (\\u0000), which PostgreSQL cannot ` +
          "store in text; protostore refuses it on every backend behind AsyncStore",
      );
    }
  }
}

/**
 * Whether any of the values is a string holding NUL: the allocation-free check to run
 * before {@linkcode refuseNul} builds its message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasNul } from "./nul_refusal.ts";
 *
 * assert.equal(hasNul("agent", "a1"), false);
 * assert.equal(hasNul("agent", "a\u0000"), true);
 * ```
 */
export function hasNul(
  a: unknown,
  b?: unknown,
  c?: unknown,
  d?: unknown,
): boolean {
  return (typeof a === "string" && a.includes("\u0000")) ||
    (typeof b === "string" && b.includes("\u0000")) ||
    (typeof c === "string" && c.includes("\u0000")) ||
    (typeof d === "string" && d.includes("\u0000"));
}

/**
 * Throws {@linkcode StoreError} when a restore's kind, id, or snapshot hash or tag
 * holds NUL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuseNulInRestore } from "./nul_refusal.ts";
 *
 * refuseNulInRestore("agent", "a1", { tag: "v1" });
 * assert.throws(() => refuseNulInRestore("agent", "a1", { tag: "v\u00001" }), /NUL/);
 * ```
 */
export function refuseNulInRestore(
  kind: unknown,
  id: unknown,
  snapshot: unknown,
): void {
  const ref = snapshot as { versionHash?: unknown; tag?: unknown } | null;
  if (hasNul(kind, id, ref?.versionHash, ref?.tag)) {
    refuseNul({ kind, id, versionHash: ref?.versionHash, tag: ref?.tag });
  }
}
