/**
 * Administration of a database file, as plain data for the CLI and for programs: the
 * overview and one resource (`inspect.ts`), a resource's audit history with diffs
 * (`history.ts`), and decoding rows with the types recorded in the database
 * (`row_decoder.ts`) — these open files read-only and never migrate; the lifecycle jobs
 * on an open Store or a file: prune with per-kind counts and VACUUM (`prune.ts`), online
 * backup (`backup.ts`), NDJSON export and import (`ndjson_export.ts`,
 * `ndjson_import.ts`), restore with its diff (`restore.ts`). Reads distrust the file (`read_only.ts`).
 * The functions for a store at any location, SQLite or PostgreSQL, are in
 * `any_store.ts` (on PostgreSQL: the reads in `postgres.ts`, NDJSON export and
 * import in `ndjson_export_postgres.ts` and `ndjson_import_postgres.ts`, backup into
 * a SQLite file in `backup_postgres.ts`); prune and restore at any location in
 * `store_lifecycle.ts`.
 *
 * May import: `src/errors.ts`, `src/sqlite/`, `src/migrate/`, `src/store/`,
 * `src/decode/`, `src/postgres/`, `src/copy/` (scratch copies of PostgreSQL rows).
 * Used by cli.
 *
 * @module
 */
export {
  type DatabaseOverview,
  inspectDatabase,
  type InspectedResource,
  type InspectOptions,
  type InspectProgress,
  inspectResource,
  type KindSummary,
} from "./inspect.ts";
export {
  type AuditHistory,
  auditHistory,
  auditSnapshot,
  type HistoryEntry,
  type HistoryOptions,
} from "./history.ts";
export { type DecodeOptions, RowDecoder } from "./row_decoder.ts";
export { openUntrusted, requireTable } from "./read_only.ts";
export {
  pruneHistory,
  type PruneHistoryOptions,
  type VacuumResult,
  vacuumStore,
} from "./prune.ts";
export {
  backupDatabase,
  type BackupOptions,
  type BackupProgress,
  type BackupResult,
} from "./backup.ts";
export {
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type ExportHeader,
  exportNdjson,
  type ExportOptions,
  type ExportRecord,
  type ExportResource,
  type ExportSchema,
  type ExportSnapshot,
} from "./ndjson_export.ts";
export { importNdjson, type NdjsonImportSummary } from "./ndjson_import.ts";
export {
  type RestorePreview,
  restorePreview,
  restoreSnapshot,
} from "./restore.ts";
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
} from "./any_store.ts";
export {
  pruneStore,
  restoreStore,
  storeRestorePreview,
} from "./store_lifecycle.ts";
