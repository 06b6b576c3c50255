/**
 * The Store: protobuf resources keyed by (kind, id), their audit history, and the SQL
 * of those tables (`store.ts`); the message types recorded once per database
 * (`schemas.ts`); which snapshots a prune removes, in batches (`retention.ts`).
 *
 * May import: `src/errors.ts`, `src/sqlite/`, `src/migrate/`, `src/decode/`. Used by
 * admin, badger and cli, never the other way round.
 *
 * @module
 */
export {
  type AuditEntry,
  type AuditEntryInfo,
  type AuditMeta,
  type OpenOptions,
  openStore,
  Store,
} from "./store.ts";
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
