/**
 * protostore: protobuf resources in SQLite, with an immutable audit history and
 * migrations recorded in `schema_version`.
 *
 * ```ts
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
 * console.assert(store.listAuditHistory(StructSchema, "agent", "a1").length === 1);
 * ```
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
} from "./src/store.ts";
export {
  AuditNotFoundError,
  MigrationError,
  NotFoundError,
  StoreClosedError,
  StoreError,
} from "./src/errors.ts";
export {
  type AppliedMigration,
  migrate,
  type MigrateOptions,
  type MigrateResult,
  type MigrationStatus,
  migrationStatus,
  type PendingMigration,
} from "./src/migrate.ts";
export {
  type DatabaseOverview,
  inspectDatabase,
  type InspectedResource,
  inspectResource,
  type KindSummary,
} from "./src/inspect.ts";
export {
  type AuditHistory,
  auditHistory,
  auditSnapshot,
  type HistoryEntry,
  type HistoryOptions,
} from "./src/history.ts";
export type { DecodeOptions } from "./src/row_decoder.ts";
export type { Change } from "./src/diff.ts";
export type { DecodedWith } from "./src/decode.ts";
export type { MigrationPlan } from "./src/migrate.ts";
export { importBadgerBackup } from "./src/badger_backup.ts";
export type {
  ImportBadgerOptions,
  ImportSummary,
  InvalidBadgerKey,
} from "./src/import_badger.ts";
