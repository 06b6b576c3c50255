/**
 * Page tokens of keyset-paged lists: opaque to callers, they hold the key of the last
 * entry of a page and what was listed, so the next page starts right after it with an
 * index seek (never OFFSET) and a token cannot be used on another list.
 *
 * @module
 */
import { StoreError } from "../errors.ts";

/** Options of a paged list. */
export interface PageOptions {
  /** Entries per page, 1 or more (default 1000). */
  limit?: number;
  /** `nextPageToken` of the previous page; absent for the first page. */
  pageToken?: string;
}

/** The default page size. */
export const DEFAULT_PAGE_LIMIT = 1000;

const PREFIX = "ps1.";
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The token for the page after the entry keyed `key` of the list named by `scope`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePageToken, encodePageToken } from "./paging.ts";
 *
 * const token = encodePageToken(["resources", "agent"], ["a9"]);
 * assert.deepEqual(decodePageToken(token, ["resources", "agent"]), ["a9"]);
 * ```
 */
export function encodePageToken(
  scope: readonly string[],
  key: readonly (string | number)[],
): string {
  const bytes = encoder.encode(JSON.stringify([scope, key]));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return PREFIX +
    btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * The key in `token`, which must have been issued for the list named by `scope`;
 * throws {@linkcode StoreError} otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePageToken, encodePageToken } from "./paging.ts";
 *
 * const token = encodePageToken(["resources", "agent"], ["a9"]);
 * assert.throws(() => decodePageToken(token, ["resources", "skill"]));
 * ```
 */
export function decodePageToken(
  token: unknown,
  scope: readonly string[],
): (string | number)[] {
  let parsed: unknown;
  if (typeof token === "string" && token.startsWith(PREFIX)) {
    try {
      const base64 = token.slice(PREFIX.length).replaceAll("-", "+")
        .replaceAll("_", "/");
      const binary = atob(base64);
      const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
      parsed = JSON.parse(decoder.decode(bytes));
    } catch {
      parsed = undefined;
    }
  }
  if (
    Array.isArray(parsed) && parsed.length === 2 &&
    JSON.stringify(parsed[0]) === JSON.stringify(scope) &&
    Array.isArray(parsed[1])
  ) {
    return parsed[1];
  }
  throw new StoreError(
    typeof token === "string"
      ? "pageToken is not a token this list issued (it comes from another list, or was changed); " +
        "start again without pageToken"
      : `pageToken must be a string, got ${typeof token}`,
  );
}

/**
 * The page size of `options`: {@linkcode DEFAULT_PAGE_LIMIT} when absent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageLimit } from "./paging.ts";
 *
 * assert.equal(pageLimit({ limit: 10 }), 10);
 * assert.throws(() => pageLimit({ limit: 0 }));
 * ```
 */
export function pageLimit(options: PageOptions | undefined): number {
  const limit = options?.limit ?? DEFAULT_PAGE_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreError(
      `limit must be a whole number >= 1, got ${String(limit)}`,
    );
  }
  return limit;
}
