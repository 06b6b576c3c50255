/**
 * Retention for the admin tools: a prune that reports per kind (or only counts, in a dry
 * run), and compaction of the file afterwards, since SQLite does not give freed pages
 * back to the file system by itself.
 *
 * @module
 */
import { messageOf, StoreError } from "../errors.ts";
import {
  type PruneOptions,
  type PruneResult,
  pruneSnapshots,
} from "../store/retention.ts";
import { Store } from "../store/store.ts";

/** Options of {@linkcode pruneHistory}: what to prune, and whether to only count. */
export interface PruneHistoryOptions extends PruneOptions {
  /** Count what would go, per kind; write nothing. */
  dryRun?: boolean;
}

/**
 * Prunes the audit history of `store` as {@linkcode Store.pruneAudit} does and returns
 * what went, per kind (`{ removed, kinds: { [kind]: { audit, orphans } }, dryRun }`).
 * With `dryRun` it only counts, in one read transaction, and writes nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, pruneHistory } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
 * for (let i = 0; i < 3; i++) store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { i }));
 * const plan = pruneHistory(store, { keepLast: 1, dryRun: true });
 * assert.deepEqual(plan.kinds, { agent: { audit: 2, orphans: 0 } });
 * assert.equal(pruneHistory(store, { keepLast: 1 }).removed, 2);
 * assert.equal(store.listAuditHistory(StructSchema, "agent", "a1").length, 1);
 * ```
 */
export function pruneHistory(
  store: Store,
  options: PruneHistoryOptions,
): PruneResult {
  const { dryRun, ...criteria } = options ?? {};
  if (dryRun !== undefined && typeof dryRun !== "boolean") {
    throw new StoreError(`dryRun must be a boolean, got ${String(dryRun)}`);
  }
  return pruneSnapshots(
    Store.connectionOf(store),
    criteria,
    (fn) => store.transaction(fn),
    dryRun ?? false,
  );
}

/** File sizes around {@linkcode vacuumStore}. */
export interface VacuumResult {
  /** Bytes of the database file (pages in use and free) before. */
  bytesBefore: number;
  /** Bytes after. */
  bytesAfter: number;
  /** Free pages before (space a prune left inside the file). */
  freePagesBefore: number;
}

/**
 * Rebuilds the database of `store` in place with SQLite's `VACUUM`, so the file shrinks
 * to the pages in use (a prune frees pages inside the file but never shrinks it), then
 * checkpoints the WAL so the main file is rewritten. It holds the write lock for the
 * whole rebuild (other processes' writes wait, and fail after their busy timeout on a
 * big file) and needs free disk space of about twice the file; `backup --vacuum` writes
 * a compacted copy instead, without blocking writers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, vacuumStore } from "@protostore/store";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * const sizes = vacuumStore(store);
 * assert(sizes.bytesAfter <= sizes.bytesBefore);
 * ```
 */
export function vacuumStore(store: Store): VacuumResult {
  const db = Store.connectionOf(store);
  if (db.isTransaction) {
    throw new StoreError(
      "VACUUM cannot run inside a transaction: commit first",
    );
  }
  const pages = () =>
    db.prepare(
      "SELECT page_count * page_size AS bytes, freelist_count AS free FROM pragma_page_count, pragma_page_size, pragma_freelist_count",
    ).get() as { bytes: number; free: number };
  const before = pages();
  try {
    db.exec("VACUUM");
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (error) {
    throw new StoreError(
      `VACUUM of ${store.path} failed: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
  return {
    bytesBefore: before.bytes,
    bytesAfter: pages().bytes,
    freePagesBefore: before.free,
  };
}
