/**
 * The revision counter: one per database, shared by every connection and process. Every
 * transaction that changes resources takes the next revision, once, for all its changes
 * (as etcd does). The counter has no row of its own: it is the newest revision in
 * `resource_changes`, or `change_log.compacted_through` when compaction emptied the log,
 * and a write appends its changes in the same transaction that reads it, under the write
 * lock. So a revision is never reused, across restarts, crashes and processes, and a
 * write costs no extra page. This module owns `change_log` and the counter's reads.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

/**
 * SQL of the current revision: an expression usable inside another statement.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CURRENT_REVISION } from "./revisions.ts";
 *
 * assert.match(CURRENT_REVISION, /resource_changes/);
 * ```
 */
export const CURRENT_REVISION =
  `max(coalesce((SELECT max(revision) FROM resource_changes), 0),
       coalesce((SELECT compacted_through FROM change_log WHERE id = 1), 0))`;

/**
 * The current revision of the database `db` is connected to (0 for a new one), as a
 * read of its own; for admin reads that have no {@linkcode RevisionCounter}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "../../mod.ts";
 * import { Store } from "./store.ts";
 * import { readCurrentRevision } from "./revisions.ts";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * assert.equal(readCurrentRevision(Store.connectionOf(store)), 0);
 * ```
 */
export function readCurrentRevision(db: DatabaseSync): number {
  return (db.prepare(`SELECT ${CURRENT_REVISION} AS r`).get() as { r: number })
    .r;
}

/**
 * Hands out revisions on one connection: {@linkcode RevisionCounter.next} gives the
 * revision of the open write transaction (the same one for every change in it), and
 * {@linkcode RevisionCounter.end} forgets it when the transaction ends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "../../mod.ts";
 * import { Store } from "./store.ts";
 * import { RevisionCounter } from "./revisions.ts";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * const db = Store.connectionOf(store);
 * const counter = new RevisionCounter(db);
 * db.exec("BEGIN IMMEDIATE");
 * assert.equal(counter.next(), 1);
 * assert.equal(counter.next(), 1);
 * db.exec("ROLLBACK");
 * counter.end();
 * assert.equal(counter.current(), 0);
 * ```
 */
export class RevisionCounter {
  #current: StatementSync;
  #pending = 0;

  /** Prepares the counter's statement on `db`, whose schema must be migrated. */
  constructor(db: DatabaseSync) {
    this.#current = db.prepare(`SELECT ${CURRENT_REVISION} AS r`);
  }

  /** The newest revision this connection can see (inside a transaction: its own). */
  current(): number {
    return (this.#current.get() as { r: number }).r;
  }

  /**
   * The revision of the open write transaction, taken on first use. Call only inside a
   * write transaction, before its first change is recorded.
   */
  next(): number {
    if (this.#pending === 0) this.#pending = this.current() + 1;
    return this.#pending;
  }

  /** The revision taken by the open transaction, or 0 when it has taken none. */
  pending(): number {
    return this.#pending;
  }

  /** The transaction ended (committed or rolled back): the next one takes afresh. */
  end(): void {
    this.#pending = 0;
  }
}
