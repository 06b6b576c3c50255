/**
 * protostore: protobuf resources in SQLite, with an immutable audit history and
 * migrations recorded in `schema_version`.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/protostore.sqlite`);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { name: "reviewer" }));
 * store.saveAudit(StructSchema, "agent", "a1", store.getResource(StructSchema, "agent", "a1"), {
 *   versionHash: "sha256:1f2e",
 *   tag: "v1",
 * });
 * assert(store.listAuditHistory(StructSchema, "agent", "a1").length === 1);
 * ```
 *
 * The library is grouped by subsystem, each folder with a `mod.ts` saying what it owns:
 * `src/store/` (the Store), `src/migrate/` (schema migrations), `src/admin/`
 * (inspection, history, prune, backup, export/import), `src/badger/` (BadgerDB import),
 * `src/decode/` (decoding stored bytes), `src/sqlite/` (connections), `src/errors.ts`
 * (error classes).
 *
 * @module
 */
export {
  type AuditEntry,
  type AuditEntryInfo,
  type AuditMeta,
  type ChangeLogExtent,
  type ChangesOptions,
  type OpenOptions,
  openStore,
  type Page,
  type PageOptions,
  type PruneCount,
  type PruneOptions,
  type PruneResult,
  type ReadOptions,
  type ResourceChange,
  type ResourceEntry,
  type SavedResource,
  type SnapshotRef,
  Store,
  type WatchOptions,
  type WriteOptions,
} from "./src/store/mod.ts";
export {
  type AuditLookup,
  AuditNotFoundError,
  CompactedError,
  ConflictError,
  CopyVerificationError,
  DecodeError,
  MigrationError,
  type MigrationErrorOptions,
  NotFoundError,
  type SqliteErrorCode,
  StoreClosedError,
  StoreError,
  type StoreErrorOptions,
  TargetNotEmptyError,
  TypeMismatchError,
} from "./src/errors.ts";
export {
  type AppliedMigration,
  downgrade,
  type DowngradeOptions,
  type DowngradeResult,
  migrate,
  type MigrateOptions,
  type MigrateResult,
  type MigrationPlan,
  type MigrationStatus,
  migrationStatus,
  type PendingMigration,
} from "./src/migrate/mod.ts";
export {
  type AuditHistory,
  auditHistory,
  auditSnapshot,
  backupDatabase,
  type BackupOptions,
  type BackupProgress,
  type BackupResult,
  type DatabaseOverview,
  type DecodeOptions,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type ExportHeader,
  exportNdjson,
  type ExportOptions,
  type ExportRecord,
  type ExportResource,
  type ExportSchema,
  type ExportSnapshot,
  type HistoryEntry,
  type HistoryOptions,
  importNdjson,
  inspectDatabase,
  type InspectedResource,
  type InspectOptions,
  type InspectProgress,
  inspectResource,
  type KindSummary,
  type NdjsonImportSummary,
  pruneHistory,
  type PruneHistoryOptions,
  type RestorePreview,
  restorePreview,
  restoreSnapshot,
  type VacuumResult,
  vacuumStore,
} from "./src/admin/mod.ts";
export type { Change, DecodedWith } from "./src/decode/mod.ts";
export {
  importBadgerBackup,
  type ImportBadgerOptions,
  type ImportSummary,
  type InvalidBadgerKey,
} from "./src/badger/mod.ts";
export type { AsyncStore, PageRequest } from "./src/store/mod.ts";
export { type ConnectOptions, connectStore } from "./src/async/mod.ts";
export {
  type CopiedTable,
  type CopyOptions,
  type CopyProgress,
  type CopyResult,
  copyStore,
  type MergeMode,
  type MergeSummary,
  type ResourceMerge,
  type TableTally,
} from "./src/copy/mod.ts";
export {
  backupStore,
  exportStore,
  importStore,
  inspectStore,
  inspectStoreResource,
  type LocationOptions,
  migrateStore,
  openStoreHistory,
  storeAuditSnapshot,
  type StoreBackupOptions,
  storeMigrationStatus,
} from "./src/admin/mod.ts";
export {
  pruneStore,
  restoreStore,
  storeRestorePreview,
} from "./src/admin/mod.ts";
