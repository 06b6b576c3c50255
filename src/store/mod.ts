/**
 * The Store: protobuf resources keyed by (kind, id) and their audit history
 * (`store.ts`), the SQL it runs on those tables (`sql.ts`), the shapes it takes and
 * returns (`types.ts`), its argument checks (`arguments.ts`) and message codec
 * (`codec.ts`, shared with PostgreSQL); the message types recorded once per database
 * (`schemas.ts`); revisions (`revisions.ts`: the counter), the change log
 * (`changes.ts`), the change feed's waiting (`watch.ts`), page tokens (`paging.ts`),
 * which snapshots a prune removes, in batches (`retention.ts`), the lookups of
 * restore and point-in-time reads (`restore.ts`), and listings read as one row
 * (`concat.ts`).
 *
 * May import: `src/errors.ts`, `src/sqlite/`, `src/migrate/`, `src/decode/`. Used by
 * admin, badger, postgres, async and cli, never the other way round. `async_store.ts`
 * holds the `AsyncStore` contract both backends implement; `async_sqlite.ts` is this
 * store behind it; what every backend behind it refuses alike: NUL in names
 * (`nul_refusal.ts`) and names too long for PostgreSQL's indexes (`key_size.ts`).
 *
 * @module
 */
export {
  type AuditEntry,
  type AuditEntryInfo,
  type AuditMeta,
  type OpenOptions,
  type Page,
  type ReadOptions,
  type ResourceEntry,
  type SavedResource,
  type WriteOptions,
} from "./types.ts";
export { openStore, Store } from "./store.ts";
export {
  type ChangeLogExtent,
  type ChangesOptions,
  readChangeLogExtent,
  type ResourceChange,
} from "./changes.ts";
export { readCurrentRevision } from "./revisions.ts";
export type { PageOptions } from "./paging.ts";
export type { WatchOptions } from "./watch.ts";
export { descriptorSetOf, SchemaIds } from "./schemas.ts";
export {
  PRUNE_PACING,
  type PruneCount,
  type PruneOptions,
  type PrunePacing,
  type PruneResult,
  pruneSnapshots,
  type RunInTransaction,
} from "./retention.ts";
export {
  pointInTime,
  RESTORE_SQL,
  snapshotLookup,
  type SnapshotRef,
  type SnapshotRow,
} from "./restore.ts";
export type { AsyncStore, PageRequest } from "./async_store.ts";
export { SqliteAsyncStore } from "./async_sqlite.ts";
