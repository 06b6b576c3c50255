/**
 * `AsyncStore`: the Store's contract with methods that return promises, implemented by
 * the embedded SQLite store (async_sqlite.ts) and by PostgreSQL (src/postgres/). It sits
 * beside the Store's own types so that src/postgres/ depends on src/store/ only, and
 * `connectStore` (src/async/) sits above both backends and chooses between them.
 *
 * @module
 */
import type {
  DescMessage as ProtobufDescMessage,
  MessageShape as ProtobufMessageShape,
} from "@bufbuild/protobuf";
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
import type { PruneOptions } from "./retention.ts";
import type { SnapshotRef } from "./restore.ts";
import type { ChangesOptions, ResourceChange } from "./changes.ts";
import type { PageOptions } from "./paging.ts";
import type { WatchOptions } from "./watch.ts";

/** @internal protobuf-es `DescMessage` (see src/store/store.ts for why the alias). */
type DescMessage = ProtobufDescMessage;
/** @internal protobuf-es `MessageShape`. */
type MessageShape<D extends DescMessage> = ProtobufMessageShape<D>;

/**
 * Options that ask `listAuditHistory` for one page: a `limit` or a `pageToken` key,
 * as the synchronous `Store` takes them (`{ acceptTypes }` alone asks for the whole
 * history).
 */
export type PageRequest =
  | { limit: number | undefined; pageToken?: string }
  | { pageToken: string | undefined; limit?: number };

/**
 * The store behind a connection string: the methods of the synchronous `Store`, each
 * returning a promise, with the same arguments, results and errors on every backend.
 * Get one from {@linkcode connectStore}.
 *
 * Differences from `Store`: {@linkcode AsyncStore.transaction} takes an async callback
 * and hands it a transaction-bound store; {@linkcode AsyncStore.close} is async and
 * `await using` closes the store.
 *
 * @example The same code on SQLite or PostgreSQL
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * await using store = await connectStore(`${await Deno.makeTempDir()}/app.sqlite`);
 * const saved = await store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
 * await store.transaction(async (tx) => {
 *   const entry = await tx.getResourceEntry(StructSchema, "agent", "a1");
 *   await tx.saveResource(StructSchema, "agent", "a1", entry.message, {
 *     ifRevision: entry.revision,
 *   });
 * });
 * assert.equal(await store.currentRevision(), saved.revision + 1);
 * ```
 *
 * @example History lifecycle: point-in-time reads, restore, prune (same on PostgreSQL)
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * await using store = await connectStore(`${await Deno.makeTempDir()}/app.sqlite`);
 * const v = (n: number) => fromJson(StructSchema, { v: n });
 * const first = await store.saveResource(StructSchema, "agent", "a1", v(1));
 * await store.saveAudit(StructSchema, "agent", "a1", v(1), { tag: "stable" });
 * const broken = await store.saveResource(StructSchema, "agent", "a1", v(2));
 * await store.saveAudit(StructSchema, "agent", "a1", v(2));
 * const then = await store.getResourceAt(StructSchema, "agent", "a1", first.revision);
 * assert.equal(then.tag, "stable");
 * const restored = await store.restoreResource(StructSchema, "agent", "a1", { tag: "stable" }, {
 *   ifRevision: broken.revision,
 * });
 * assert.equal(restored.revision, broken.revision + 1);
 * assert.equal(await store.pruneAudit({ keepLast: 1, keepTagged: false }), 1);
 * ```
 */
export interface AsyncStore extends AsyncDisposable {
  /** What the store is on: a file path, or the connection string without its password. */
  readonly target: string;
  /** `"sqlite"` or `"postgres"`. */
  readonly backend: "sqlite" | "postgres";

  /** `Store.saveResource`. */
  saveResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    message: MessageShape<D>,
    options?: WriteOptions,
  ): Promise<SavedResource>;
  /** `Store.getResource`. */
  getResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>>;
  /** `Store.getResourceEntry`. */
  getResourceEntry<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    options?: ReadOptions,
  ): Promise<ResourceEntry<MessageShape<D>>>;
  /** `Store.listResources`. */
  listResources<D extends DescMessage>(
    schema: D,
    kind: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>[]>;
  /** `Store.listResourceEntries`. */
  listResourceEntries<D extends DescMessage>(
    schema: D,
    kind: string,
    options?: PageOptions & ReadOptions,
  ): Promise<Page<ResourceEntry<MessageShape<D>>>>;
  /** `Store.deleteResource`. */
  deleteResource(
    kind: string,
    id: string,
    options?: WriteOptions,
  ): Promise<boolean>;
  /** `Store.deleteResourcesByKind`. */
  deleteResourcesByKind(kind: string): Promise<number>;
  /**
   * `Store.deleteResourcesByIdPrefix`: the prefix is literal (no wildcards).
   *
   * @deprecated BadgerDB-era prefix delete, kept for parity with `Store`.
   */
  deleteResourcesByIdPrefix(kind: string, idPrefix: string): Promise<number>;
  /** `Store.saveAudit`. */
  saveAudit<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    message: MessageShape<D>,
    meta?: AuditMeta,
  ): Promise<AuditEntryInfo>;
  /** `Store.getAuditByHash`. */
  getAuditByHash<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    versionHash: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>>;
  /** `Store.getAuditByTag`. */
  getAuditByTag<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    tag: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>>;
  /**
   * `Store.listAuditHistory` with a `limit` or `pageToken` key (even when undefined):
   * one page.
   */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options: PageRequest & ReadOptions,
  ): Promise<Page<AuditEntry<MessageShape<D>>>>;
  /** `Store.listAuditHistory`: the whole history, newest first. */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>[]>;
  /** `Store.listOrphanedAudit`: snapshots kept after their resource was gone. */
  listOrphanedAudit<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>[]>;
  /** `Store.deleteAuditByResourceId`. */
  deleteAuditByResourceId(kind: string, resourceId: string): Promise<number>;
  /**
   * `Store.pruneAudit`: removes old snapshots (`keepLast`, `olderThan`, tagged kept,
   * orphans only when asked) and returns how many. Outside a transaction it works in
   * short transactions of whole resources, and the event loop runs between them (on
   * SQLite the pauses are awaited); inside `transaction()` it is part of it.
   */
  pruneAudit(options: PruneOptions): Promise<number>;
  /**
   * `Store.restoreResource`: makes a snapshot the current resource again, as a new
   * change at a new revision; `ifRevision` as for `saveResource`.
   */
  restoreResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    snapshot: SnapshotRef,
    options?: WriteOptions,
  ): Promise<SavedResource>;
  /**
   * `Store.getResourceAt`: the newest snapshot archived at or before `at` (a Date or a
   * revision).
   */
  getResourceAt<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    at: Date | number,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>>;
  /** `Store.currentRevision`. */
  currentRevision(): Promise<number>;
  /** `Store.changesSince`. */
  changesSince(
    revision: number,
    options?: ChangesOptions,
  ): Promise<ResourceChange[]>;
  /** `Store.watch`: every change after `afterRevision`, each once, in revision order. */
  watch(options?: WatchOptions): AsyncGenerator<ResourceChange, void>;
  /** `Store.compactChanges`. */
  compactChanges(throughRevision: number): Promise<number>;
  /**
   * Runs `fn` in one transaction on one connection, with a store bound to it: what
   * `fn` writes through `tx` commits together when its promise resolves, or rolls back
   * when it rejects (the error is rethrown). Nested calls on `tx` are savepoints.
   * Calls on the outer store while it runs wait for it to end (SQLite) or use other
   * connections of the pool (PostgreSQL), so inside `fn` use `tx` only: awaiting the
   * outer store there waits for the transaction itself. `tx` must not be used after
   * `fn` settles.
   */
  transaction<T>(fn: (tx: AsyncStore) => Promise<T>): Promise<T>;
  /** Closes the store (the SQLite file, or the pool and its listener); idempotent. */
  close(): Promise<void>;
}
