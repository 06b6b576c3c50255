/**
 * Counting a staged dump into an {@linkcode ImportSummary}: every count that depends
 * only on the dump (what depends on the target database is added by `apply.ts`), and
 * the list of keys that cannot be imported.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import {
  CLASS_INTERNAL,
  CLASS_INVALID,
  type StagedResources,
  STATE_DELETED,
  STATE_EXPIRED,
  STATE_LIVE,
} from "./staging.ts";
import type { ImportSummary, InvalidBadgerKey } from "./summary.ts";

/** What {@linkcode countStaged} lists besides the counts. */
export interface CountContext {
  /** How many invalid keys `summary.invalidKeys` lists. */
  maxListed: number;
  /** Called for every invalid key, in key order. */
  onInvalidKey?: (key: InvalidBadgerKey) => void;
}

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) {
    s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  }
  return s;
}

type Row = Record<string, number | string | null | Uint8Array>;

/**
 * Fills the summary's counts: resources from the counts kept while staging, the rest
 * from the (small) audit and other staging tables, which hold one row per key. Lists
 * invalid keys. Returns the number of live audit snapshots.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countStaged } from "./counts.ts";
 * import { openStaging } from "./staging.ts";
 * import { emptySummary } from "./summary.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const staging = openStaging(`${dir}/staging.sqlite`, dir);
 * staging.exec("INSERT INTO other (key, cls, reason, version, state) VALUES (x'00', 3, 'no /', 1, 0)");
 * const summary = emptySummary(null, false, undefined);
 * const resources = { byState: [2, 1, 0], kinds: new Map([["agent", 2]]) };
 * countStaged(staging, resources, summary, { maxListed: 10 });
 * assert.deepEqual([summary.keysSeen, summary.resources, summary.skippedInvalid], [4, 2, 1]);
 * assert.deepEqual(summary.invalidKeys, [{ keyHex: "00", reason: "no /" }]);
 * staging.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function countStaged(
  staging: DatabaseSync,
  resources: StagedResources,
  summary: ImportSummary,
  context: CountContext,
): number {
  const { maxListed, onInvalidKey } = context;
  const add = (state: number, count: number) => {
    if (state === STATE_DELETED) summary.skippedDeleted += count;
    else if (state === STATE_EXPIRED) summary.skippedExpired += count;
  };
  const [live, deleted, expired] = resources.byState;
  summary.keysSeen += live + deleted + expired;
  summary.resources = live;
  add(STATE_DELETED, deleted);
  add(STATE_EXPIRED, expired);
  const kinds: Record<string, number> = {};
  for (const kind of [...resources.kinds.keys()].sort()) {
    const n = resources.kinds.get(kind)!;
    if (n === 0) continue;
    // defineProperty: a kind named "__proto__" must become an own property.
    Object.defineProperty(kinds, kind, {
      value: n,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  summary.kinds = kinds;
  let liveAudits = 0;
  for (
    const row of staging.prepare(
      "SELECT state, count(*) AS n FROM aud GROUP BY state",
    ).all() as Row[]
  ) {
    const n = row.n as number;
    summary.keysSeen += n;
    // Live snapshots are split into attached and orphans in phase 2.
    if (row.state === STATE_LIVE) liveAudits = n;
    else add(row.state as number, n);
  }
  for (
    const row of staging.prepare(
      "SELECT cls, state, count(*) AS n FROM other GROUP BY cls, state",
    ).all() as Row[]
  ) {
    const n = row.n as number;
    summary.keysSeen += n;
    if (row.cls === CLASS_INTERNAL) summary.skippedInternal += n;
    else if (row.state === STATE_LIVE) summary.skippedInvalid += n;
    else add(row.state as number, n);
  }
  if (summary.skippedInvalid > 0) {
    const rows = staging.prepare(
      `SELECT key, reason FROM other WHERE cls = ${CLASS_INVALID} AND state = 0 ORDER BY key`,
    ).iterate() as Iterable<Row>;
    for (const row of rows) {
      const invalid = {
        keyHex: toHex(row.key as Uint8Array),
        reason: row.reason as string,
      };
      onInvalidKey?.(invalid);
      if (summary.invalidKeys.length < maxListed) {
        summary.invalidKeys.push(invalid);
      } else if (onInvalidKey === undefined) break;
    }
    summary.invalidKeysTruncated =
      summary.invalidKeys.length < summary.skippedInvalid;
  }
  return liveAudits;
}
