/**
 * The checks of the Store's arguments (kinds, ids, labels, read options) and the small
 * conversions of what it reads back, shared by the SQLite and PostgreSQL stores so both
 * refuse the same input with the same error.
 *
 * @module
 */
import { readText } from "../sqlite/connection.ts";
import { StoreError } from "../errors.ts";
import type { ReadOptions } from "./types.ts";

/** `options.acceptTypes` as a set, checked; `undefined` when none. */
export function acceptedTypes(
  options: ReadOptions | undefined,
): ReadonlySet<string> | undefined {
  const types = options?.acceptTypes;
  if (types === undefined) return undefined;
  if (!Array.isArray(types) || types.some((t) => typeof t !== "string")) {
    throw new StoreError("acceptTypes must be an array of type names");
  }
  return new Set(types);
}

/** Throws unless `value` is a non-empty, well-formed string (a kind or an id). */
export function requireKey(name: string, value: unknown): void {
  if (typeof value !== "string" || value.length === 0) {
    throw new StoreError(
      `${name} must be a non-empty string, got ${
        typeof value === "string" ? '""' : String(value)
      }`,
    );
  }
  requireWellFormed(name, value);
}

/** A version hash or tag: `null` when absent or empty, else a well-formed string. */
export function optionalLabel(name: string, value: unknown): string | null {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value !== "string") {
    throw new StoreError(`${name} must be a string, got ${typeof value}`);
  }
  requireWellFormed(name, value);
  return value;
}

/**
 * A lone surrogate has no UTF-8 form: SQLite would store U+FFFD instead, so two
 * different strings would name the same row, and a read would not give back the text.
 */
export function requireWellFormed(name: string, value: string): void {
  if (value.isWellFormed()) return;
  const shown = JSON.stringify(
    value.length > 80 ? `${value.slice(0, 80)}…` : value,
  );
  throw new StoreError(
    `${name} ${shown} is not well-formed Unicode: it has a lone surrogate (\\uD800-\\uDFFF), ` +
      "which cannot be stored as UTF-8; pass well-formed text",
  );
}

/** A hash or tag as read by the history query; empty reads back as absent. */
export function readLabel(
  value: string | Uint8Array | null,
): string | undefined {
  return readText(value) || undefined;
}

/**
 * The smallest string greater than every string that starts with `prefix`, in SQLite's
 * BINARY order (UTF-8 bytes, which is code point order); `null` when there is none.
 */
export function prefixUpperBound(prefix: string): string | null {
  const codePoints = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last < 0x10ffff) {
      // Surrogates are not characters; the next code point after U+D7FF is U+E000.
      codePoints.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return null;
}
