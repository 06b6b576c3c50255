/**
 * The change feed as an async iterator: reads the change log, and between reads waits
 * for a commit. A commit by another connection or process shows in SQLite's
 * `PRAGMA data_version` (a read of the WAL index, ~9 µs), polled every
 * {@linkcode WATCH_POLL_MS}; commits of the watching connection itself are counted by
 * the Store. The log is queried only after a commit, so a waiting watcher costs one
 * pragma per poll.
 *
 * @module
 */
import type { ChangesOptions, ResourceChange } from "./changes.ts";

/** Options of `Store.watch`. */
export interface WatchOptions {
  /** Only changes of this kind. */
  kind?: string;
  /**
   * Deliver the changes after this revision (default: the current revision when
   * `watch` is called, so only later changes).
   */
  afterRevision?: number;
  /** Ends the iteration (the loop ends without an error) when aborted. */
  signal?: AbortSignal;
}

/** How often a waiting watcher looks for a commit, in milliseconds. */
export const WATCH_POLL_MS = 10;
/** Changes read per query of the log while catching up. */
const BATCH = 1000;

/** What {@linkcode watchChanges} reads from; the Store provides it. */
export interface WatchSource {
  /** Changes after `after` and the revision read at; throws `CompactedError`. */
  since(
    after: number,
    options: ChangesOptions,
  ): { changes: ResourceChange[]; revision: number };
  /** A value that changes whenever anyone commits; `null` once the store is closed. */
  commitStamp(): string | null;
}

/**
 * Yields every change after `afterRevision` in revision order, then waits for more,
 * until `signal` aborts or the store closes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { watchChanges } from "./watch.ts";
 *
 * const controller = new AbortController();
 * const source = {
 *   since: (after: number) => ({
 *     changes: after < 1 ? [{ revision: 1, kind: "k", id: "a", type: "put" as const }] : [],
 *     revision: 1,
 *   }),
 *   commitStamp: () => "0",
 * };
 * for await (const change of watchChanges(source, 0, undefined, controller.signal)) {
 *   assert.equal(change.id, "a");
 *   controller.abort();
 * }
 * ```
 */
export async function* watchChanges(
  source: WatchSource,
  afterRevision: number,
  kind: string | undefined,
  signal: AbortSignal | undefined,
): AsyncGenerator<ResourceChange, void, undefined> {
  let after = afterRevision;
  while (!signal?.aborted) {
    // Read the stamp before the log: a commit between the two is seen next time.
    const stamp = source.commitStamp();
    if (stamp === null) return;
    const { changes, revision } = source.since(after, { kind, limit: BATCH });
    for (const change of changes) {
      yield change;
      after = change.revision;
      if (signal?.aborted) return;
    }
    // Skip revisions that held nothing of this kind, so they are not read again.
    if (changes.length === 0 || changes.length < BATCH) {
      after = Math.max(after, revision);
    }
    if (changes.length >= BATCH) continue;
    while (source.commitStamp() === stamp) {
      if (!await sleep(WATCH_POLL_MS, signal)) return;
    }
  }
}

/** Waits `ms`; false when `signal` aborted first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
