/**
 * The change log (`resource_changes`): one row per resource changed at a revision, put
 * or delete, read by `changesSince` and `watch`, and compacted. This module owns the
 * log's SQL; the revision counter is in `revisions.ts`.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { returnArrays } from "../sqlite/connection.ts";
import { CompactedError, StoreError } from "../errors.ts";
import { CURRENT_REVISION } from "./revisions.ts";

/** One change of the change feed: resource (kind, id) was saved or deleted at `revision`. */
export interface ResourceChange {
  /** The revision of the transaction that made the change. */
  revision: number;
  /** The resource's kind. */
  kind: string;
  /** The resource's id. */
  id: string;
  /** `"put"`: saved (created or updated); `"delete"`: deleted. */
  type: "put" | "delete";
}

/** Options of `Store.changesSince`. */
export interface ChangesOptions {
  /** Only changes of this kind. */
  kind?: string;
  /**
   * At most about this many changes: the changes of the last revision returned are
   * always complete, so reading on from that revision misses nothing. Default: all.
   */
  limit?: number;
}

/** The default number of revisions the change log keeps (see `OpenOptions`). */
export const DEFAULT_CHANGE_RETENTION = 100_000;
/** Automatic compaction runs in the commit of every revision divisible by this. */
export const COMPACT_EVERY = 1024;

const SQL = {
  record:
    `INSERT INTO resource_changes (revision, kind, id, deleted) VALUES (?, ?, ?, ?)
    ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = excluded.deleted`,
  // Before a bulk delete: one delete per resource that is about to go.
  recordKind: `INSERT INTO resource_changes (revision, kind, id, deleted)
    SELECT ?1, kind, id, 1 FROM resources WHERE kind = ?2
    ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = 1`,
  recordIdRange: `INSERT INTO resource_changes (revision, kind, id, deleted)
    SELECT ?1, kind, id, 1 FROM resources WHERE kind = ?2 AND id >= ?3 AND id < ?4
    ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = 1`,
  recordIdFrom: `INSERT INTO resource_changes (revision, kind, id, deleted)
    SELECT ?1, kind, id, 1 FROM resources WHERE kind = ?2 AND id >= ?3
    ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = 1`,
  since: `SELECT revision, kind, id, deleted FROM resource_changes
    WHERE revision > ? ORDER BY revision, kind, id LIMIT ?`,
  sinceKind: `SELECT revision, kind, id, deleted FROM resource_changes
    WHERE revision > ? AND kind = ? ORDER BY revision, kind, id LIMIT ?`,
  // The rest of a revision a limit cut into.
  restOf: `SELECT revision, kind, id, deleted FROM resource_changes
    WHERE revision = ?1 AND (kind, id) > (?2, ?3) AND (?4 IS NULL OR kind = ?4)
    ORDER BY kind, id`,
  compactedThrough:
    "SELECT coalesce((SELECT compacted_through FROM change_log WHERE id = 1), 0) AS r",
  current: `SELECT ${CURRENT_REVISION} AS r`,
  compact: "DELETE FROM resource_changes WHERE revision <= ?",
  markCompacted: `INSERT INTO change_log (id, compacted_through) VALUES (1, ?1)
    ON CONFLICT (id) DO UPDATE SET compacted_through = max(compacted_through, ?1)`,
} as const;

type Row = [number, string, string, number];

/** The extent of the change log: what `changesSince` can answer. */
export interface ChangeLogExtent {
  /** The current revision. */
  revision: number;
  /** Changes after this revision are kept; `changesSince` from before it throws. */
  compactedThrough: number;
  /** How many changes the log holds. */
  changes: number;
}

/**
 * The change log's statements on one connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "../../mod.ts";
 * import { Store } from "./store.ts";
 * import { ChangeLog } from "./changes.ts";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * const log = new ChangeLog(Store.connectionOf(store));
 * assert.deepEqual(log.since(0, undefined, Infinity).changes, []);
 * ```
 */
export class ChangeLog {
  #s: { [K in keyof typeof SQL]: StatementSync };

  /** Prepares the statements on `db`, whose schema must be migrated. */
  constructor(db: DatabaseSync) {
    const statements = {} as Record<string, StatementSync>;
    for (const [name, sql] of Object.entries(SQL)) {
      statements[name] = db.prepare(sql);
    }
    this.#s = statements as { [K in keyof typeof SQL]: StatementSync };
    for (const name of ["since", "sinceKind", "restOf"] as const) {
      returnArrays(this.#s[name]);
    }
  }

  /** Records that (kind, id) was saved (`deleted` false) or deleted at `revision`. */
  record(revision: number, kind: string, id: string, deleted: boolean): void {
    this.#s.record.run(revision, kind, id, deleted ? 1 : 0);
  }

  /** Records deletes of the resources of `kind` with ids in [from, to) (all when absent). */
  recordDeletes(
    revision: number,
    kind: string,
    from?: string,
    to?: string | null,
  ): void {
    if (from === undefined) this.#s.recordKind.run(revision, kind);
    else if (to === null) this.#s.recordIdFrom.run(revision, kind, from);
    else this.#s.recordIdRange.run(revision, kind, from, to!);
  }

  /**
   * Changes after `after`, oldest first, and the revision they were read at. Throws
   * {@linkcode CompactedError} when the log no longer reaches back to `after`. Call in
   * a read transaction, so the two agree.
   */
  since(
    after: number,
    kind: string | undefined,
    limit: number,
  ): { changes: ResourceChange[]; revision: number } {
    const compacted = (this.#s.compactedThrough.get() as { r: number }).r;
    if (after < compacted) throw new CompactedError(after, compacted);
    const revision = (this.#s.current.get() as { r: number }).r;
    if (after >= revision) return { changes: [], revision };
    const max = Number.isFinite(limit) ? limit : -1;
    const rows =
      (kind === undefined
        ? this.#s.since.all(after, max)
        : this.#s.sinceKind.all(after, kind, max)) as unknown as Row[];
    if (max > 0 && rows.length === max) {
      const [r, k, i] = rows[rows.length - 1];
      rows.push(
        ...this.#s.restOf.all(r, k, i, kind ?? null) as unknown as Row[],
      );
    }
    const changes: ResourceChange[] = new Array(rows.length);
    for (let n = 0; n < rows.length; n++) {
      const [r, k, i, deleted] = rows[n];
      changes[n] = {
        revision: r,
        kind: k,
        id: i,
        type: deleted ? "delete" : "put",
      };
    }
    return { changes, revision };
  }

  /**
   * Drops the changes at or below `through` and records that the log starts after it.
   * Returns how many changes were dropped. Call in a write transaction.
   */
  compact(through: number): number {
    const dropped = Number(this.#s.compact.run(through).changes);
    this.#s.markCompacted.run(through);
    return dropped;
  }
}

/**
 * The change log's extent on `db`, for admin reads (`inspect`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "../../mod.ts";
 * import { Store } from "./store.ts";
 * import { readChangeLogExtent } from "./changes.ts";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * assert.deepEqual(readChangeLogExtent(Store.connectionOf(store)), {
 *   revision: 0,
 *   compactedThrough: 0,
 *   changes: 0,
 * });
 * ```
 */
export function readChangeLogExtent(db: DatabaseSync): ChangeLogExtent {
  const row = db.prepare(
    `SELECT ${CURRENT_REVISION} AS revision,
       coalesce((SELECT compacted_through FROM change_log WHERE id = 1), 0) AS compacted,
       (SELECT count(*) FROM resource_changes) AS changes`,
  ).get() as { revision: number; compacted: number; changes: number };
  return {
    revision: row.revision,
    compactedThrough: row.compacted,
    changes: row.changes,
  };
}

/**
 * A revision argument: a whole number >= 0, or `undefined` when optional and absent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { requireRevision } from "./changes.ts";
 *
 * assert.equal(requireRevision("afterRevision", 3), 3);
 * assert.throws(() => requireRevision("afterRevision", -1));
 * ```
 */
export function requireRevision(name: string, value: unknown): number {
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < 0
  ) {
    throw new StoreError(
      `${name} must be a revision (a whole number >= 0), got ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
  }
  return value;
}
