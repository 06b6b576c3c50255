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
 * @module
 */
export {
  type AuditEntry,
  type AuditEntryInfo,
  type AuditMeta,
  type OpenOptions,
  openStore,
  Store,
} from "./src/store/store.ts";
export {
  type AuditLookup,
  AuditNotFoundError,
  CompactedError,
  ConflictError,
  DecodeError,
  MigrationError,
  type MigrationErrorOptions,
  NotFoundError,
  type SqliteErrorCode,
  StoreClosedError,
  StoreError,
  type StoreErrorOptions,
  TypeMismatchError,
} from "./src/errors.ts";
export {
  type AppliedMigration,
  migrate,
  type MigrateOptions,
  type MigrateResult,
  type MigrationStatus,
  migrationStatus,
  type PendingMigration,
} from "./src/migrate/runner.ts";
export {
  type DatabaseOverview,
  inspectDatabase,
  type InspectedResource,
  inspectResource,
  type KindSummary,
} from "./src/admin/inspect.ts";
export {
  type AuditHistory,
  auditHistory,
  auditSnapshot,
  type HistoryEntry,
  type HistoryOptions,
} from "./src/admin/history.ts";
export type { DecodeOptions } from "./src/admin/row_decoder.ts";
export type { Change } from "./src/decode/diff.ts";
export type { DecodedWith } from "./src/decode/descriptors.ts";
export type { MigrationPlan } from "./src/migrate/runner.ts";
export {
  importBadgerBackup,
  type ImportBadgerOptions,
  type ImportSummary,
  type InvalidBadgerKey,
} from "./src/badger/mod.ts";
