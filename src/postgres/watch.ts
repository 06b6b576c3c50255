/**
 * `watch` on PostgreSQL: one `LISTEN` connection per store wakes its watchers; each
 * watcher reads the change log from the last revision it delivered.
 *
 * Why nothing is missed: revisions are taken in commit order (see store.ts), so "the
 * changes after R" read at any moment hold every change after R that is visible then,
 * and a later read finds the rest. A notification only says "read again". The watcher
 * notes the listener's wake count before each read, and waits only while it is
 * unchanged, so a commit between the read and the wait still wakes it. A dropped
 * connection re-subscribes (the driver reconnects and calls `onlisten` again), which
 * counts as a wake: the watcher re-reads from its last revision. A read that fails
 * because the server is away is retried with backoff. A one-second safety poll covers
 * a notification lost in any other way.
 *
 * @module
 */
import { CompactedError, StoreError } from "../errors.ts";
import type { ChangesOptions, ResourceChange } from "../store/changes.ts";
import { isConnectionLost, type Sql } from "./connection.ts";

/** Changes read per batch. */
const BATCH = 1000;
/** A waiting watcher reads again at least this often (a lost notification). */
export const PG_SAFETY_POLL_MS = 1000;

/**
 * The store's `LISTEN` on its channel, shared by its watchers, started on first use
 * and kept until the store closes.
 */
export class ChangeListener {
  #pool: Sql;
  #channel: string;
  #wakes = 0;
  #waiters = new Set<() => void>();
  #listening: Promise<{ unlisten(): Promise<void> }> | null = null;

  /** A listener on `channel` of `pool` (nothing is sent until {@linkcode start}). */
  constructor(pool: Sql, channel: string) {
    this.#pool = pool;
    this.#channel = channel;
  }

  /** How many times it was woken; compare before and after a read. */
  get wakes(): number {
    return this.#wakes;
  }

  /** Subscribes (once); resolves when the `LISTEN` is in place. */
  async start(): Promise<void> {
    this.#listening ??= this.#pool.listen(
      this.#channel,
      () => this.#wake(),
      // Called on the first LISTEN and again after every reconnect.
      () => this.#wake(),
    );
    try {
      await this.#listening;
    } catch (error) {
      this.#listening = null;
      throw error;
    }
  }

  /** Resolves when woken after `seen` wakes, after the safety poll, or on abort (false). */
  wait(seen: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.#wakes !== seen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        signal?.removeEventListener("abort", abort);
        resolve(ok);
      };
      const wake = () => done(true);
      const abort = () => done(false);
      const timer = setTimeout(wake, PG_SAFETY_POLL_MS);
      this.#waiters.add(wake);
      signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /** Wakes every waiter (also used when the store closes). */
  #wake(): void {
    this.#wakes++;
    for (const wake of [...this.#waiters]) wake();
  }

  /** Stops listening and releases waiters. */
  async close(): Promise<void> {
    const listening = this.#listening;
    this.#listening = null;
    this.#wake();
    if (listening !== null) {
      try {
        await (await listening).unlisten();
      } catch {
        // The connection is already gone.
      }
    }
  }
}

/** What the watch loop needs from the store. */
export interface PgWatchSource {
  /** The shared listener. */
  listener: ChangeListener;
  /** The changes after a revision and the revision they were read at. */
  since(
    after: number,
    options: ChangesOptions,
  ): Promise<{ changes: ResourceChange[]; revision: number }>;
  /** The current revision. */
  current(): Promise<number>;
  /** Whether the store closed. */
  closed(): boolean;
}

/**
 * The changes after `afterRevision` (a revision, or the pending read of the current one
 * taken when `watch()` was called; default: the current revision when the iteration
 * starts), then every later one, in revision order, each once.
 */
export async function* watchPostgres(
  source: PgWatchSource,
  afterRevision: number | Promise<number> | undefined,
  kind: string | undefined,
  signal: AbortSignal | undefined,
): AsyncGenerator<ResourceChange, void, undefined> {
  // Listen before the first read: a commit after the read then always wakes us.
  await source.listener.start();
  let after = afterRevision === undefined
    ? await source.current()
    : await afterRevision;
  let failures = 0;
  while (!signal?.aborted && !source.closed()) {
    const seen = source.listener.wakes;
    let batch: { changes: ResourceChange[]; revision: number };
    try {
      batch = await source.since(after, { kind, limit: BATCH });
      failures = 0;
    } catch (error) {
      if (source.closed()) return; // closing the store ends the watch
      if (error instanceof CompactedError) throw error;
      if (
        !(error instanceof StoreError && isConnectionLost(error.cause)) ||
        failures > 600
      ) {
        throw error;
      }
      // The server is away: try again from the same revision, backing off to 1 s.
      failures++;
      await sleep(Math.min(1000, 10 * 2 ** failures), signal);
      continue;
    }
    for (const change of batch.changes) {
      yield change;
      after = change.revision;
      if (signal?.aborted) return;
    }
    // Revisions that held nothing of this kind need not be read again.
    if (batch.changes.length < BATCH) after = Math.max(after, batch.revision);
    else continue;
    if (!await source.listener.wait(seen, signal)) return;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
