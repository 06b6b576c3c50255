/**
 * Retention of the audit history (Kubernetes `revisionHistoryLimit`, etcd compaction):
 * which snapshots a prune removes — outside the newest N of their resource, archived
 * before a time, untagged unless told otherwise — counted per kind and deleted in short
 * write transactions of whole resources. This module owns the prune queries on
 * `resource_audit` and `resource_audit_orphans`; the Store and the admin tools call it
 * on their connection.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { messageOf, StoreError } from "../errors.ts";
import { sqliteFailure } from "../sqlite/errors.ts";

/** What {@linkcode pruneSnapshots} removes: every criterion given must hold. */
export interface PruneOptions {
  /** Only snapshots of this kind. */
  kind?: string;
  /** Only snapshots of this resource id (needs `kind`). */
  id?: string;
  /** Keep the newest N snapshots of each resource (by archive time, then save order). */
  keepLast?: number;
  /** Remove only snapshots archived before this time. */
  olderThan?: Date;
  /** Keep tagged snapshots (default true): a tag is a reference `getAuditByTag` resolves. */
  keepTagged?: boolean;
  /** Prune orphaned snapshots (kept after their resource was deleted) too; default false. */
  orphans?: boolean;
}

/** How many snapshots a prune removed (or, in a dry run, would remove) from one kind. */
export interface PruneCount {
  /** Snapshots of existing resources. */
  audit: number;
  /** Orphaned snapshots (only with `orphans: true`). */
  orphans: number;
}

/** What a prune removed, in total and per kind. */
export interface PruneResult {
  /** Snapshots removed, orphans included. */
  removed: number;
  /** Per kind, in kind order; kinds with nothing removed are absent. */
  kinds: Record<string, PruneCount>;
  /** Nothing was written. */
  dryRun: boolean;
}

/**
 * Runs `fn` in one write transaction (the caller's, when one is open) and returns what it
 * returns; given by the Store so its transaction rules apply.
 */
export type RunInTransaction = <T>(fn: () => T) => T;

/**
 * How a prune paces its write transactions. Each batch prunes whole resources, about
 * `batchRows` snapshots to start with; with `targetMs` the size adapts so a batch holds
 * the write lock about that long; after each batch it pauses `pauseMs` with the lock
 * free. The pause is what lets other processes in: SQLite's busy handler polls a waiting
 * writer only every 100 ms, so a shorter gap between two batches can be missed again
 * and again (measured: with no pause, a writer still hit "database is locked" once in
 * 200 batches).
 */
export interface PrunePacing {
  /** Snapshots in the first batch (and every batch without `targetMs`). */
  batchRows: number;
  /** Adapt the batch size so a batch takes about this long; absent: fixed size. */
  targetMs?: number;
  /** Pause after each batch, lock released (not inside the caller's transaction). */
  pauseMs: number;
}

/** The default pacing: ~200 ms batches, 100 ms pauses (one busy-handler poll). */
export const PRUNE_PACING: PrunePacing = {
  batchRows: 2000,
  targetMs: 200,
  pauseMs: 100,
};

type Table = "resource_audit" | "resource_audit_orphans";

interface Criteria {
  kind: string | null;
  id: string | null;
  keepLast: number;
  olderThan: string | null;
  keepTagged: boolean;
}

/**
 * Checks prune options and returns them normalised; throws {@linkcode StoreError} on a
 * bad value or when neither `keepLast` nor `olderThan` is given (that would remove every
 * snapshot: use `deleteAuditByResourceId` for one resource on purpose).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StoreError } from "../errors.ts";
 * import { pruneCriteria } from "./retention.ts";
 *
 * assert.throws(() => pruneCriteria({ kind: "skill" }), StoreError);
 * assert.equal(pruneCriteria({ keepLast: 3 }).keepLast, 3);
 * ```
 */
export function pruneCriteria(options: PruneOptions): Criteria & {
  orphans: boolean;
} {
  if (typeof options !== "object" || options === null) {
    throw new StoreError("pruneAudit takes an options object");
  }
  const { kind, id, keepLast, olderThan, keepTagged, orphans } = options;
  if (kind !== undefined && (typeof kind !== "string" || kind === "")) {
    throw new StoreError(
      `kind must be a non-empty string, got ${String(kind)}`,
    );
  }
  if (id !== undefined) {
    if (typeof id !== "string" || id === "") {
      throw new StoreError(`id must be a non-empty string, got ${String(id)}`);
    }
    if (kind === undefined) {
      throw new StoreError(
        "pruneAudit: id needs kind (a resource is kind and id)",
      );
    }
  }
  if (
    keepLast !== undefined && (!Number.isSafeInteger(keepLast) || keepLast < 0)
  ) {
    throw new StoreError(
      `keepLast must be a whole number >= 0, got ${String(keepLast)}`,
    );
  }
  if (
    olderThan !== undefined &&
    (!(olderThan instanceof Date) || Number.isNaN(olderThan.getTime()))
  ) {
    throw new StoreError(
      `olderThan must be a valid Date, got ${String(olderThan)}`,
    );
  }
  if (keepLast === undefined && olderThan === undefined) {
    throw new StoreError(
      "pruneAudit needs keepLast or olderThan: without either it would remove every " +
        "snapshot (to drop one resource's whole history, use deleteAuditByResourceId)",
    );
  }
  for (
    const [name, value] of [["keepTagged", keepTagged], [
      "orphans",
      orphans,
    ]] as const
  ) {
    if (value !== undefined && typeof value !== "boolean") {
      throw new StoreError(`${name} must be a boolean, got ${String(value)}`);
    }
  }
  return {
    kind: kind ?? null,
    id: id ?? null,
    keepLast: keepLast ?? 0,
    olderThan: olderThan?.toISOString() ?? null,
    keepTagged: keepTagged ?? true,
    orphans: orphans ?? false,
  };
}

// The snapshots to remove among the resources in (lo, hi] (or of one kind or resource):
// ranked newest first per resource, as listAuditHistory orders them. The range is on the
// (kind, resource_id, archived_at) index, so each batch reads only its own resources.
const candidates = (table: Table, scope: Scope) => `
  SELECT id, kind FROM (
    SELECT id, kind, archived_at, tag, row_number() OVER (
      PARTITION BY kind, resource_id ORDER BY archived_at DESC, id DESC) AS rank
    FROM ${table}
    WHERE ${
  scope === "id"
    ? "kind = :kind AND resource_id = :id"
    : scope === "kind"
    ? "kind = :kind AND resource_id > :loId AND resource_id <= :hiId"
    : "(kind, resource_id) > (:loKind, :loId) AND (kind, resource_id) <= (:hiKind, :hiId)"
}
  )
  WHERE rank > :keepLast
    AND (:olderThan IS NULL OR archived_at < :olderThan)
    AND (NOT :keepTagged OR coalesce(tag, '') = '')`;

// The last resource of the next batch: the one holding the row a batch size ahead.
const boundary = (table: Table, scope: "range" | "kind") =>
  scope === "kind"
    ? `SELECT kind, resource_id FROM ${table} WHERE kind = :kind AND resource_id > :loId
       ORDER BY kind, resource_id LIMIT 1 OFFSET :offset`
    : `SELECT kind, resource_id FROM ${table} WHERE (kind, resource_id) > (:loKind, :loId)
       ORDER BY kind, resource_id LIMIT 1 OFFSET :offset`;

/**
 * Removes the snapshots `options` select (see {@linkcode PruneOptions}) and returns how
 * many, per kind. Each write transaction (`run`) removes the selected snapshots of a
 * batch of whole resources, chosen afresh inside it, and a pause with the lock free
 * follows ({@linkcode PrunePacing}), so a writer in another process waits for one batch,
 * never for the whole prune; inside the caller's transaction all batches are part of
 * it. With `dryRun` nothing is written: the counts are read in one read transaction.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Store } from "../../mod.ts";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 * import { pruneSnapshots } from "./retention.ts";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
 * for (let i = 0; i < 3; i++) store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { i }));
 * const db = Store.connectionOf(store);
 * const plan = pruneSnapshots(db, { keepLast: 1 }, (fn) => store.transaction(fn), true);
 * assert.deepEqual(plan.kinds, { agent: { audit: 2, orphans: 0 } });
 * assert.equal(store.listAuditHistory(StructSchema, "agent", "a1").length, 3);
 * ```
 */
export function pruneSnapshots(
  db: DatabaseSync,
  options: PruneOptions,
  run: RunInTransaction,
  dryRun = false,
  pacing: PrunePacing = PRUNE_PACING,
): PruneResult {
  const steps = pruneSteps(db, options, run, dryRun, pacing);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    sleep(step.value);
  }
}

/**
 * {@linkcode pruneSnapshots} one batch at a time: each `next()` runs one write
 * transaction and yields the pause (ms) to take before the next, with the lock free;
 * the return value is the result. The synchronous Store blocks through the pauses; the
 * async wrapper awaits them, so its event loop runs between batches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Store } from "../../mod.ts";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 * import { pruneSteps } from "./retention.ts";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
 * for (let i = 0; i < 3; i++) store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { i }));
 * const steps = pruneSteps(Store.connectionOf(store), { keepLast: 1 }, (fn) => store.transaction(fn));
 * let step = steps.next();
 * while (!step.done) step = steps.next();
 * assert.equal(step.value.removed, 2);
 * ```
 */
export function* pruneSteps(
  db: DatabaseSync,
  options: PruneOptions,
  run: RunInTransaction,
  dryRun = false,
  pacing: PrunePacing = PRUNE_PACING,
): Generator<number, PruneResult, void> {
  const criteria = pruneCriteria(options);
  const result: PruneResult = { removed: 0, kinds: {}, dryRun };
  const tables: Table[] = criteria.orphans
    ? ["resource_audit", "resource_audit_orphans"]
    : ["resource_audit"];
  try {
    if (dryRun) {
      // One read transaction, so the per-kind counts are of one moment.
      const own = !db.isTransaction;
      if (own) db.exec("BEGIN");
      try {
        for (const table of tables) count(db, table, criteria, result);
      } finally {
        if (own) db.exec("COMMIT");
      }
    } else {
      ensureBatchTable(db);
      for (const table of tables) {
        yield* remove(db, table, criteria, run, result, pacing);
      }
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw sqliteFailure(`pruneAudit failed: ${messageOf(error)}`, error);
  }
  result.kinds = Object.fromEntries(
    Object.entries(result.kinds).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
  );
  return result;
}

type Scope = "range" | "kind" | "id";

function scopeOf(criteria: Criteria): Scope {
  return criteria.id !== null
    ? "id"
    : criteria.kind !== null
    ? "kind"
    : "range";
}

/** The named parameters of {@linkcode candidates} but the batch bounds. */
function params(criteria: Criteria, scope: Scope) {
  return {
    ...(scope === "range" ? {} : { kind: criteria.kind }),
    ...(scope === "id" ? { id: criteria.id } : {}),
    keepLast: criteria.keepLast,
    olderThan: criteria.olderThan,
    keepTagged: criteria.keepTagged ? 1 : 0,
  };
}

function add(result: PruneResult, table: Table, kind: string, n: number) {
  const entry = result.kinds[kind] ??= { audit: 0, orphans: 0 };
  if (table === "resource_audit") entry.audit += n;
  else entry.orphans += n;
  result.removed += n;
}

function count(
  db: DatabaseSync,
  table: Table,
  criteria: Criteria,
  result: PruneResult,
): void {
  const scope = scopeOf(criteria);
  // One statement over the whole scope: the range bounds are opened wide.
  const sql = `SELECT kind, count(*) AS n FROM (${
    candidates(table, scope)
  }) GROUP BY kind`;
  const p = {
    ...params(criteria, scope),
    ...(scope === "id"
      ? {}
      : scope === "kind"
      ? { loId: "", hiId: MAX_KEY }
      : { loKind: "", loId: "", hiKind: MAX_KEY, hiId: MAX_KEY }),
  };
  for (const row of db.prepare(sql).all(p) as { kind: string; n: number }[]) {
    add(result, table, row.kind, row.n);
  }
}

/** Blocks the thread (the Store's API is synchronous) with the lock released. */
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// Sorts after every string SQLite holds as valid UTF-8 text.
const MAX_KEY = "\u{10ffff}\u{10ffff}";

function ensureBatchTable(db: DatabaseSync): void {
  db.exec(
    "CREATE TEMP TABLE IF NOT EXISTS prune_batch (id INTEGER PRIMARY KEY, kind TEXT NOT NULL)",
  );
}

function* remove(
  db: DatabaseSync,
  table: Table,
  criteria: Criteria,
  run: RunInTransaction,
  result: PruneResult,
  pacing: PrunePacing,
): Generator<number, void, void> {
  const scope = scopeOf(criteria);
  const base = params(criteria, scope);
  const select = db.prepare(
    `INSERT INTO temp.prune_batch (id, kind) ${candidates(table, scope)}`,
  );
  const perKind = db.prepare(
    "SELECT kind, count(*) AS n FROM temp.prune_batch GROUP BY kind",
  );
  const del = db.prepare(
    `DELETE FROM ${table} WHERE id IN (SELECT id FROM temp.prune_batch)`,
  );
  const clear = db.prepare("DELETE FROM temp.prune_batch");
  // Inside the caller's transaction the lock is held throughout: no point pausing.
  const pause = db.isTransaction ? 0 : pacing.pauseMs;
  let batchRows = pacing.batchRows;
  const batch = (bounds: Record<string, string>) =>
    run(() => {
      clear.run();
      select.run({ ...base, ...bounds });
      const counts = perKind.all() as { kind: string; n: number }[];
      if (counts.length > 0) del.run();
      clear.run();
      for (const { kind, n } of counts) add(result, table, kind, n);
    });
  if (scope === "id") {
    batch({});
    return;
  }
  const next = db.prepare(boundary(table, scope));
  let loKind = criteria.kind ?? "";
  let loId = "";
  for (let first = true;; first = false) {
    if (!first && pause > 0) yield pause;
    // Outside the batch's transaction: the bound only sizes the batch; the batch
    // itself re-reads its resources under the write lock.
    const lastRow = (next.get(
      scope === "kind"
        ? { kind: loKind, loId, offset: batchRows - 1 }
        : { loKind, loId, offset: batchRows - 1 },
    ) ?? null) as { kind: string; resource_id: string } | null;
    const hi = lastRow ?? { kind: MAX_KEY, resource_id: MAX_KEY };
    const started = performance.now();
    batch(
      scope === "kind"
        ? { loId, hiId: hi.resource_id }
        : { loKind, loId, hiKind: hi.kind, hiId: hi.resource_id },
    );
    if (lastRow === null) return;
    if (pacing.targetMs !== undefined) {
      const ms = Math.max(performance.now() - started, 1);
      batchRows = Math.round(
        Math.min(Math.max(batchRows * pacing.targetMs / ms, 100), 100_000),
      );
    }
    loKind = hi.kind;
    loId = hi.resource_id;
  }
}

/**
 * @internal The SQL a prune runs in each scope, for tests that check their query plans.
 */
export function pruneSql(
  table: Table,
): Record<string, string> {
  return {
    range: candidates(table, "range"),
    kind: candidates(table, "kind"),
    id: candidates(table, "id"),
    boundaryRange: boundary(table, "range"),
    boundaryKind: boundary(table, "kind"),
  };
}
