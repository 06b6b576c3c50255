/**
 * The embedded SQLite `Store` behind {@linkcode AsyncStore}: each call runs the
 * synchronous method and returns a settled promise (no extra work on the fast path).
 * `transaction(async (tx) => …)` holds SQLite's write transaction across awaits, so
 * calls on the outer store wait until it ends instead of joining it.
 *
 * @module
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { StoreError } from "../errors.ts";
import type {
  AuditEntry,
  AuditEntryInfo,
  AuditMeta,
  Page,
  ReadOptions,
  ResourceEntry,
  SavedResource,
  WriteOptions,
} from "./types.ts";
import { Store } from "./store.ts";
import type { ChangesOptions, ResourceChange } from "./changes.ts";
import type { PageOptions } from "./paging.ts";
import type { WatchOptions } from "./watch.ts";
import type { AsyncStore, PageRequest } from "./async_store.ts";
import type { PruneOptions } from "./retention.ts";
import type { SnapshotRef } from "./restore.ts";
import { hasNul, refuseNul, refuseNulInRestore } from "./nul_refusal.ts";
import { refuseLongKeys } from "./key_size.ts";

/** Runs `fn` now and returns its result or error as a promise. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The open transaction of a {@linkcode SqliteAsyncStore}: who may use the connection. */
interface Gate {
  /** Resolves when the open transaction ends; `null` when none is open. */
  idle: Promise<void> | null;
}

/**
 * A `Store` as an {@linkcode AsyncStore}. Get one from `connectStore(path)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * await using store = await connectStore(`${await Deno.makeTempDir()}/a.sqlite`);
 * assert.equal(store.backend, "sqlite");
 * await store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
 * assert.equal((await store.listResources(StructSchema, "agent")).length, 1);
 * ```
 */
export class SqliteAsyncStore implements AsyncStore {
  /** The database file. */
  readonly target: string;
  /** Always `"sqlite"`. */
  readonly backend = "sqlite" as const;
  #store: Store;
  #gate: Gate;
  /** Inside a transaction: false once its callback settled. */
  #open: boolean;
  #inTransaction: boolean;

  /**
   * Wraps an open `Store` (which this object then owns and closes).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { SqliteAsyncStore } from "./async_sqlite.ts";
   *
   * await using store = new SqliteAsyncStore(openStore(await Deno.makeTempFile()));
   * assert.equal(await store.currentRevision(), 0);
   * ```
   */
  constructor(store: Store, gate?: Gate) {
    this.#store = store;
    this.target = store.path;
    this.#gate = gate ?? { idle: null };
    this.#inTransaction = gate !== undefined;
    this.#open = true;
  }

  /** Runs `fn` on the store now, or after the open transaction of another caller. */
  #run<T>(fn: (store: Store) => T): Promise<T> {
    if (this.#inTransaction) {
      if (!this.#open) {
        return Promise.reject(
          new StoreError(
            "this transaction's store was used after its callback settled; use the outer store",
          ),
        );
      }
      return settle(() => fn(this.#store));
    }
    const idle = this.#gate.idle;
    if (idle === null) return settle(() => fn(this.#store));
    return idle.then(() => this.#run(fn));
  }

  /** See `Store.saveResource`. */
  saveResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    message: MessageShape<D>,
    options?: WriteOptions,
  ): Promise<SavedResource> {
    return this.#run((s) => {
      if (hasNul(kind, id)) refuseNul({ kind, id });
      refuseLongKeys(kind, id);
      return s.saveResource(schema, kind, id, message, options);
    });
  }

  /** See `Store.getResource`. */
  getResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>> {
    return this.#run((s) => {
      if (hasNul(kind, id)) refuseNul({ kind, id });
      return s.getResource(schema, kind, id, options);
    });
  }

  /** See `Store.getResourceEntry`. */
  getResourceEntry<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    options?: ReadOptions,
  ): Promise<ResourceEntry<MessageShape<D>>> {
    return this.#run((s) => {
      if (hasNul(kind, id)) refuseNul({ kind, id });
      return s.getResourceEntry(schema, kind, id, options);
    });
  }

  /** See `Store.listResources`. */
  listResources<D extends DescMessage>(
    schema: D,
    kind: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>[]> {
    return this.#run((s) => {
      if (hasNul(kind)) refuseNul({ kind });
      return s.listResources(schema, kind, options);
    });
  }

  /** See `Store.listResourceEntries`. */
  listResourceEntries<D extends DescMessage>(
    schema: D,
    kind: string,
    options?: PageOptions & ReadOptions,
  ): Promise<Page<ResourceEntry<MessageShape<D>>>> {
    return this.#run((s) => {
      if (hasNul(kind)) refuseNul({ kind });
      return s.listResourceEntries(schema, kind, options);
    });
  }

  /** See `Store.deleteResource`. */
  deleteResource(
    kind: string,
    id: string,
    options?: WriteOptions,
  ): Promise<boolean> {
    return this.#run((s) => {
      if (hasNul(kind, id)) refuseNul({ kind, id });
      return s.deleteResource(kind, id, options);
    });
  }

  /** See `Store.deleteResourcesByKind`. */
  deleteResourcesByKind(kind: string): Promise<number> {
    return this.#run((s) => {
      if (hasNul(kind)) refuseNul({ kind });
      return s.deleteResourcesByKind(kind);
    });
  }

  /**
   * See `Store.deleteResourcesByIdPrefix`.
   *
   * @deprecated BadgerDB-era prefix delete.
   */
  deleteResourcesByIdPrefix(kind: string, idPrefix: string): Promise<number> {
    return this.#run((s) => {
      if (hasNul(kind, idPrefix)) refuseNul({ kind, idPrefix });
      return s.deleteResourcesByIdPrefix(kind, idPrefix);
    });
  }

  /** See `Store.saveAudit`. */
  saveAudit<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    message: MessageShape<D>,
    meta?: AuditMeta,
  ): Promise<AuditEntryInfo> {
    return this.#run((s) => {
      if (hasNul(kind, resourceId, meta?.versionHash, meta?.tag)) {
        refuseNul({
          kind,
          resourceId,
          versionHash: meta?.versionHash,
          tag: meta?.tag,
        });
      }
      refuseLongKeys(kind, resourceId, meta?.versionHash, meta?.tag);
      return s.saveAudit(schema, kind, resourceId, message, meta);
    });
  }

  /** See `Store.getAuditByHash`. */
  getAuditByHash<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    versionHash: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>> {
    return this.#run((s) => {
      if (hasNul(kind, resourceId, versionHash)) {
        refuseNul({ kind, resourceId, versionHash });
      }
      return s.getAuditByHash(schema, kind, resourceId, versionHash, options);
    });
  }

  /** See `Store.getAuditByTag`. */
  getAuditByTag<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    tag: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>> {
    return this.#run((s) => {
      if (hasNul(kind, resourceId, tag)) refuseNul({ kind, resourceId, tag });
      return s.getAuditByTag(schema, kind, resourceId, tag, options);
    });
  }

  /** See `Store.listAuditHistory` (one page). */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options: PageRequest & ReadOptions,
  ): Promise<Page<AuditEntry<MessageShape<D>>>>;
  /** See `Store.listAuditHistory`. */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>[]>;
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions & PageOptions,
  ): Promise<
    AuditEntry<MessageShape<D>>[] | Page<AuditEntry<MessageShape<D>>>
  > {
    return this.#run((s) => {
      if (hasNul(kind, resourceId)) refuseNul({ kind, resourceId });
      // The Store decides page or array from the keys of `options`, as documented.
      return s.listAuditHistory(
        schema,
        kind,
        resourceId,
        options as ReadOptions & PageRequest,
      );
    });
  }

  /** See `Store.listOrphanedAudit`. */
  listOrphanedAudit<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>[]> {
    return this.#run((s) => {
      if (hasNul(kind, resourceId)) refuseNul({ kind, resourceId });
      return s.listOrphanedAudit(schema, kind, resourceId, options);
    });
  }

  /** See `Store.deleteAuditByResourceId`. */
  deleteAuditByResourceId(kind: string, resourceId: string): Promise<number> {
    return this.#run((s) => {
      if (hasNul(kind, resourceId)) refuseNul({ kind, resourceId });
      return s.deleteAuditByResourceId(kind, resourceId);
    });
  }

  /** See `Store.pruneAudit`. */
  async pruneAudit(options: PruneOptions): Promise<number> {
    if (this.#inTransaction) {
      // Part of the caller's transaction: no pauses, nothing to await.
      return await this.#run((s) => {
        if (hasNul(options?.kind, options?.id)) {
          refuseNul({ kind: options.kind, id: options.id });
        }
        return s.pruneAudit(options);
      });
    }
    // One batch per turn, the pauses awaited (the synchronous Store blocks in them), so
    // the event loop runs between batches; each batch waits for a transaction another
    // caller opened on this store meanwhile, instead of joining it.
    const steps = await this.#run((s) => {
      if (hasNul(options?.kind, options?.id)) {
        refuseNul({ kind: options.kind, id: options.id });
      }
      return Store.pruneSteps(s, options);
    });
    for (;;) {
      const step = await this.#run(() => steps.next());
      if (step.done) return step.value.removed;
      await new Promise((resolve) => setTimeout(resolve, step.value));
    }
  }

  /** See `Store.restoreResource`. */
  restoreResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    snapshot: SnapshotRef,
    options?: WriteOptions,
  ): Promise<SavedResource> {
    return this.#run((s) => {
      refuseNulInRestore(kind, id, snapshot);
      return s.restoreResource(schema, kind, id, snapshot, options);
    });
  }

  /** See `Store.getResourceAt`. */
  getResourceAt<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    at: Date | number,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>> {
    return this.#run((s) => {
      if (hasNul(kind, id)) refuseNul({ kind, id });
      return s.getResourceAt(schema, kind, id, at, options);
    });
  }

  /**
   * @internal Runs `fn` on the wrapped `Store` when the store is free (after an open
   * transaction of another caller), for the admin tools (prune counts, restore).
   */
  static withStore<T>(
    store: SqliteAsyncStore,
    fn: (store: Store) => T,
  ): Promise<T> {
    return store.#run(fn);
  }

  /** See `Store.currentRevision`. */
  currentRevision(): Promise<number> {
    return this.#run((s) => s.currentRevision());
  }

  /** See `Store.changesSince`. */
  changesSince(
    revision: number,
    options?: ChangesOptions,
  ): Promise<ResourceChange[]> {
    return this.#run((s) => s.changesSince(revision, options));
  }

  /** See `Store.watch`. */
  watch(options?: WatchOptions): AsyncGenerator<ResourceChange, void> {
    return this.#store.watch(options);
  }

  /** See `Store.compactChanges`. */
  compactChanges(throughRevision: number): Promise<number> {
    return this.#run((s) => s.compactChanges(throughRevision));
  }

  /** See {@linkcode AsyncStore.transaction}. */
  async transaction<T>(fn: (tx: AsyncStore) => Promise<T>): Promise<T> {
    if (typeof fn !== "function") {
      throw new StoreError(`transaction() takes a function, got ${typeof fn}`);
    }
    if (this.#inTransaction) {
      if (!this.#open) {
        throw new StoreError(
          "this transaction's store was used after its callback settled; use the outer store",
        );
      }
      return await this.#scope(fn, this.#gate);
    }
    while (this.#gate.idle !== null) await this.#gate.idle;
    let release!: () => void;
    this.#gate.idle = new Promise((resolve) => release = resolve);
    try {
      return await this.#scope(fn, { idle: null });
    } finally {
      this.#gate.idle = null;
      release();
    }
  }

  async #scope<T>(fn: (tx: AsyncStore) => Promise<T>, gate: Gate): Promise<T> {
    Store.enter(this.#store);
    const tx = new SqliteAsyncStore(this.#store, gate);
    let result: T;
    try {
      result = await fn(tx);
    } catch (error) {
      tx.#open = false;
      Store.leave(this.#store, false);
      throw error;
    }
    tx.#open = false;
    Store.leave(this.#store, true);
    return result;
  }

  /** Closes the file; idempotent. */
  close(): Promise<void> {
    if (this.#inTransaction) {
      return Promise.reject(
        new StoreError(
          "close() the outer store, not the one a transaction handed out",
        ),
      );
    }
    this.#store.close();
    return Promise.resolve();
  }

  /** Closes the file at the end of an `await using` block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
