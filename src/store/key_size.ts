/**
 * The size of a row's names: PostgreSQL's B-tree indexes hold at most ~2,700 bytes per
 * entry, and the store indexes a resource's kind and id (with a snapshot's version hash
 * or tag), so every backend behind `AsyncStore` refuses longer names with the same
 * error (the synchronous SQLite `Store` still accepts them, as it always has).
 *
 * @module
 */
import { StoreError } from "../errors.ts";

/**
 * The most UTF-8 bytes a kind, an id and the longer of a snapshot's version hash and tag
 * may take together: an index entry of them, a time and an id stays under PostgreSQL's
 * B-tree limit (2,704 bytes) even when nothing compresses.
 */
export const MAX_KEY_BYTES = 2_600;

const encoder = new TextEncoder();

function utf8Length(value: unknown): number {
  return typeof value === "string" ? encoder.encode(value).length : 0;
}

/**
 * Throws {@linkcode StoreError} (`code: "too_big"`) when `kind`, `id` and the longer
 * of `versionHash` and `tag` take more than {@linkcode MAX_KEY_BYTES} bytes of UTF-8.
 * Arguments that are not strings count as empty (their own checks refuse them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuseLongKeys } from "./key_size.ts";
 *
 * refuseLongKeys("agent", "a1");
 * assert.throws(() => refuseLongKeys("agent", "a".repeat(3000)), /2600 bytes/);
 * ```
 */
export function refuseLongKeys(
  kind: unknown,
  id: unknown,
  versionHash?: unknown,
  tag?: unknown,
): void {
  const units = (typeof kind === "string" ? kind.length : 0) +
    (typeof id === "string" ? id.length : 0) +
    Math.max(
      typeof versionHash === "string" ? versionHash.length : 0,
      typeof tag === "string" ? tag.length : 0,
    );
  // A UTF-16 unit takes at most 3 bytes of UTF-8: short names need no encoding.
  if (units * 3 <= MAX_KEY_BYTES) return;
  const bytes = utf8Length(kind) + utf8Length(id) +
    Math.max(utf8Length(versionHash), utf8Length(tag));
  if (bytes <= MAX_KEY_BYTES) return;
  throw new StoreError(
    `the kind, id${
      versionHash || tag ? " and version hash or tag" : ""
    } take ${bytes} bytes of UTF-8 together, more than the ${MAX_KEY_BYTES} bytes ` +
      "PostgreSQL's indexes hold; protostore refuses them on every backend behind " +
      "AsyncStore: use shorter names",
    { code: "too_big" },
  );
}
