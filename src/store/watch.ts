/**
 * The change feed as an async iterator: reads the change log, and between reads waits
 * for a commit. A commit by another connection or process shows in SQLite's
 * `PRAGMA data_version` (a read of the WAL index, ~9 µs); commits of the watching
 * connection itself are counted by the Store. The log is queried only when one of the
 * two moved.
 *
 * What wakes a waiting watcher to look: a change event of the database file or its
 * `-wal` file (inotify through `Deno.watchFs`; every commit appends to the WAL), and a
 * poll every {@linkcode WATCH_SAFETY_POLL_MS} in case an event is missed. Polling alone
 * every 10 ms cost 1.7-2.1% of a core on the busy 2-core test machine (100 wake-ups a
 * second); with file events an idle watcher wakes 5 times a second. Where file events
 * are unavailable it polls every {@linkcode WATCH_POLL_MS}.
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

/** How often a waiting watcher polls when file events are unavailable, in ms. */
export const WATCH_POLL_MS = 10;
/** How often a waiting watcher looks even without a file event, in ms. */
export const WATCH_SAFETY_POLL_MS = 200;
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
  /** Waits until a commit may have happened; resolves false when `signal` aborted. */
  wait(signal: AbortSignal | undefined): Promise<boolean>;
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
 *   wait: () => Promise.resolve(true),
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
      if (!await source.wait(signal)) return;
    }
  }
}

/**
 * Wakes waiting watchers of one database file on change events of the file and its
 * `-wal`, or after a timeout. One file watcher per store, running only while some
 * `watch` iterates (an open `Deno.watchFs` keeps a process alive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CommitWaker } from "./watch.ts";
 *
 * const path = await Deno.makeTempFile();
 * const waker = new CommitWaker(path);
 * const release = waker.hold();
 * const woke = waker.wait(undefined);
 * await Deno.writeTextFile(path, "x");
 * assert.equal(await woke, true);
 * release();
 * ```
 */
export class CommitWaker {
  #paths: string[];
  #watcher: Deno.FsWatcher | null = null;
  #failed = false;
  #holders = 0;
  #waiters = new Set<() => void>();

  /** A waker for the database at `path` (and its `-wal`). */
  constructor(path: string) {
    this.#paths = [path, `${path}-wal`];
  }

  /** Starts the file watcher for one more watch; call the result when it ends. */
  hold(): () => void {
    this.#holders++;
    if (this.#watcher === null && !this.#failed) this.#start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#holders === 0) this.close();
    };
  }

  /**
   * Resolves true on the next change event, or after the poll interval; false at once
   * when `signal` aborts.
   */
  wait(signal: AbortSignal | undefined): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        signal?.removeEventListener("abort", abort);
        resolve(ok);
      };
      const wake = () => done(true);
      const abort = () => done(false);
      const timer = setTimeout(
        wake,
        this.#watcher === null ? WATCH_POLL_MS : WATCH_SAFETY_POLL_MS,
      );
      this.#waiters.add(wake);
      signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /** Stops the file watcher; waiting watchers fall back to polling. */
  close(): void {
    const watcher = this.#watcher;
    this.#watcher = null;
    try {
      watcher?.close();
    } catch {
      // Already closed.
    }
  }

  #start(): void {
    const paths = this.#paths.filter((p) => {
      try {
        Deno.statSync(p);
        return true;
      } catch {
        return false;
      }
    });
    let watcher: Deno.FsWatcher;
    try {
      if (paths.length === 0) throw new Error("nothing to watch");
      watcher = Deno.watchFs(paths, { recursive: false });
    } catch {
      // No permission or no inotify: poll instead.
      this.#failed = true;
      return;
    }
    this.#watcher = watcher;
    (async () => {
      try {
        for await (const _event of watcher) {
          for (const wake of [...this.#waiters]) wake();
        }
      } catch {
        // Closed, or the watch failed: the timeouts keep watchers going.
      } finally {
        if (this.#watcher === watcher) {
          this.#watcher = null;
          this.#failed = true;
        }
      }
    })();
  }
}
