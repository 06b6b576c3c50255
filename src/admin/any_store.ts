/**
 * The admin functions for a store at any location — a SQLite path or `file:` URL, or a
 * `postgres://` URL (with `schema`) — so the CLI's commands take either with `--db`.
 * Same results on both backends; PostgreSQL is read in read-only transactions.
 *
 * @module
 */
import { NotFoundError } from "../errors.ts";
import { isPostgresUrl } from "../postgres/connection.ts";
import { sqlitePath } from "../postgres/connection.ts";
import {
  migrate,
  type MigrateResult,
  type MigrationStatus,
  migrationStatus,
} from "../migrate/migrate.ts";
import {
  type DatabaseOverview,
  inspectDatabase,
  type InspectedResource,
  type InspectOptions,
  inspectResource,
} from "./inspect.ts";
import {
  type AuditHistory,
  auditHistory,
  auditSnapshot,
  type HistoryEntry,
  type HistoryOptions,
} from "./history.ts";
import type { DecodeOptions } from "./row_decoder.ts";
import { exportNdjson, type ExportOptions } from "./ndjson_export.ts";
import { exportPostgresNdjson } from "./ndjson_export_postgres.ts";
import { importNdjson, type NdjsonImportSummary } from "./ndjson_import.ts";
import { importPostgresNdjson } from "./ndjson_import_postgres.ts";
import { openStore } from "../store/store.ts";
import { missingPaths, removeCreated } from "../sqlite/new_file.ts";
import { StoreError } from "../errors.ts";
import {
  backupDatabase,
  type BackupOptions,
  type BackupResult,
} from "./backup.ts";
import { backupPostgres } from "./backup_postgres.ts";
import type { CopyProgress } from "../copy/copy.ts";
import {
  pgAuditSnapshot,
  pgInspectDatabase,
  pgInspectResource,
  pgLabel,
  pgMigrate,
  pgMigrationStatus,
  pgResourceScratch,
} from "./postgres.ts";

/** Where the store is, beyond its location string. */
export interface LocationOptions {
  /** PostgreSQL: the schema holding the store (default `public`). */
  schema?: string;
}

/**
 * {@linkcode migrationStatus} of the store at `location` (a path, `file:` URL or
 * `postgres://` URL), read-only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storeMigrationStatus } from "@protostore/store";
 *
 * const status = await storeMigrationStatus(`${await Deno.makeTempDir()}/new.sqlite`);
 * assert(!status.exists && status.pending.length > 0);
 * ```
 */
export async function storeMigrationStatus(
  location: string,
  options: LocationOptions = {},
): Promise<MigrationStatus> {
  if (isPostgresUrl(location)) {
    return await pgMigrationStatus({ url: location, schema: options.schema });
  }
  return migrationStatus(sqlitePath(location));
}

/**
 * {@linkcode migrate} for the store at any location; on PostgreSQL the files of
 * `migrations/postgres/`, all in one transaction under an advisory lock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { migrateStore } from "@protostore/store";
 *
 * const result = await migrateStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * assert(result.applied.length > 0 && !result.dryRun);
 * ```
 */
export async function migrateStore(
  location: string,
  options: LocationOptions & { dryRun?: boolean } = {},
): Promise<MigrateResult> {
  if (isPostgresUrl(location)) {
    return await pgMigrate({ url: location, schema: options.schema }, options);
  }
  return migrate(sqlitePath(location), { dryRun: options.dryRun });
}

/**
 * {@linkcode inspectDatabase} for the store at any location, read-only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectStore, migrate } from "@protostore/store";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * migrate(path);
 * assert.equal((await inspectStore(path)).resources, 0);
 * ```
 */
export async function inspectStore(
  location: string,
  options: LocationOptions & InspectOptions = {},
): Promise<DatabaseOverview> {
  if (isPostgresUrl(location)) {
    return await pgInspectDatabase(
      { url: location, schema: options.schema },
      options,
    );
  }
  return inspectDatabase(sqlitePath(location), options);
}

/**
 * {@linkcode inspectResource} for the store at any location, read-only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectStoreResource, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * assert.equal((await inspectStoreResource(path, "agent", "a1")).type, "google.protobuf.Struct");
 * ```
 */
export async function inspectStoreResource(
  location: string,
  kind: string,
  id: string,
  options: LocationOptions & DecodeOptions = {},
): Promise<InspectedResource> {
  if (!isPostgresUrl(location)) {
    return inspectResource(sqlitePath(location), kind, id, options);
  }
  return await pgInspectResource(
    { url: location, schema: options.schema },
    kind,
    id,
    options,
  );
}

/**
 * {@linkcode auditHistory} for the store at any location, read-only; close it (or
 * `using`) when done.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, openStoreHistory } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * using history = await openStoreHistory(path, "agent", "a1");
 * assert.equal(history.total, 1);
 * ```
 */
export async function openStoreHistory(
  location: string,
  kind: string,
  id: string,
  options: LocationOptions & HistoryOptions = {},
): Promise<AuditHistory> {
  if (!isPostgresUrl(location)) {
    return auditHistory(sqlitePath(location), kind, id, options);
  }
  // One resource's rows copied into a private SQLite file, read by the same code as a
  // file: the history's entries are read lazily and synchronously, which a PostgreSQL
  // cursor cannot feed. The file goes when the history is closed.
  const where = { url: location, schema: options.schema };
  const scratch = await pgResourceScratch(where, kind, id);
  let history: AuditHistory;
  try {
    history = auditHistory(scratch.path, kind, id, options);
  } catch (error) {
    scratch.cleanup();
    if (error instanceof NotFoundError) {
      throw new NotFoundError(
        kind,
        id,
        error.message.replace(scratch.path, pgLabel(where)),
      );
    }
    throw error;
  }
  const close = history.close.bind(history);
  let cleanup = scratch.cleanup;
  return Object.assign(history, {
    close() {
      close();
      cleanup();
      cleanup = () => {};
    },
    [Symbol.dispose]() {
      this.close();
    },
  });
}

/**
 * {@linkcode auditSnapshot} for the store at any location, read-only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, storeAuditSnapshot } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * const { id } = store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * assert.equal((await storeAuditSnapshot(path, "agent", "a1", id)).id, id);
 * ```
 */
export async function storeAuditSnapshot(
  location: string,
  kind: string,
  id: string,
  auditId: number,
  options: LocationOptions & DecodeOptions = {},
): Promise<HistoryEntry> {
  if (!isPostgresUrl(location)) {
    return auditSnapshot(sqlitePath(location), kind, id, auditId, options);
  }
  return await pgAuditSnapshot(
    { url: location, schema: options.schema },
    kind,
    id,
    auditId,
    options,
  );
}

/**
 * {@linkcode exportNdjson} for the store at any location: the same lines (without
 * newlines) from SQLite or PostgreSQL for the same store, read at one moment (on
 * PostgreSQL in one `REPEATABLE READ READ ONLY` transaction), streamed: memory stays
 * bounded whatever the size. Close the iterator (or let `for await` finish) to end
 * the read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exportStore, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * const lines = [];
 * for await (const line of exportStore(path, { decoded: true })) lines.push(JSON.parse(line));
 * assert.deepEqual(lines.map((l) => l.type), ["header", "schema", "resource"]);
 * assert.deepEqual(lines[2].message, { v: 1 });
 * ```
 */
export async function* exportStore(
  location: string,
  options: LocationOptions & ExportOptions = {},
): AsyncGenerator<string, void, undefined> {
  if (isPostgresUrl(location)) {
    yield* exportPostgresNdjson(
      { url: location, schema: options.schema },
      options,
    );
    return;
  }
  yield* exportNdjson(sqlitePath(location), options);
}

/**
 * {@linkcode importNdjson} into the store at any location (created and migrated if
 * needed), with the same rules on SQLite and PostgreSQL: one transaction, all or
 * nothing; the first line that cannot be imported named by its number
 * ({@linkcode StoreError} starting with `line N:`); a resource already in the store
 * refused; into an empty store snapshot ids and revisions kept, else every imported
 * resource takes one new revision, in the change feed (watchers see it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exportStore, importStore, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const dir = await Deno.makeTempDir();
 * using source = openStore(`${dir}/a.sqlite`);
 * source.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * const lines = [];
 * for await (const line of exportStore(`${dir}/a.sqlite`)) lines.push(line + "\n");
 * const summary = await importStore(`${dir}/b.sqlite`, ReadableStream.from(lines).pipeThrough(new TextEncoderStream()));
 * assert.equal(summary.resources, 1);
 * assert.equal(summary.keptRevisions, true);
 * ```
 */
export async function importStore(
  location: string,
  source: string | ReadableStream<Uint8Array>,
  options: LocationOptions = {},
): Promise<NdjsonImportSummary> {
  if (isPostgresUrl(location)) {
    return await importPostgresNdjson(
      { url: location, schema: options.schema },
      source,
    );
  }
  const path = sqlitePath(location);
  // A new file (and the directories made for it) goes again if the import fails.
  let created: string[] = [];
  try {
    Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) created = missingPaths(path);
  }
  try {
    using store = openStore(path);
    return await importNdjson(store, source);
  } catch (error) {
    if (created.length > 0) removeCreated(path, created);
    throw error;
  }
}

/** Options of {@linkcode backupStore}. */
export interface StoreBackupOptions extends LocationOptions, BackupOptions {
  /** PostgreSQL: called after every batch of rows copied. */
  onCopyProgress?: (progress: CopyProgress) => void;
}

/**
 * A backup of the store at any location into a new SQLite file `to`: of a SQLite file,
 * {@linkcode backupDatabase}; of PostgreSQL, a portable copy of the store (every table,
 * ids, revisions, the change log) read in one consistent snapshot and verified by row
 * counts and checksums. Either way `to` is owner-only (0600), passes `integrity_check`
 * and is synced before it is put in place, and an existing `to` is refused unless
 * `force`. `vacuum` is for SQLite (a copy from PostgreSQL is always compact).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backupStore, openStore, StoreError } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const dir = await Deno.makeTempDir();
 * using store = openStore(`${dir}/db.sqlite`);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * const result = await backupStore(`${dir}/db.sqlite`, `${dir}/copy.sqlite`);
 * assert.equal(result.integrity, "ok");
 * assert.equal(Deno.statSync(`${dir}/copy.sqlite`).mode! & 0o777, 0o600);
 * await assert.rejects(backupStore(`${dir}/db.sqlite`, `${dir}/copy.sqlite`), StoreError);
 * ```
 */
export async function backupStore(
  location: string,
  to: string,
  options: StoreBackupOptions = {},
): Promise<BackupResult> {
  if (!isPostgresUrl(location)) {
    return await backupDatabase(sqlitePath(location), to, options);
  }
  if (options.vacuum) {
    throw new StoreError(
      "vacuum is for a SQLite database; a backup of PostgreSQL is always written compact",
    );
  }
  return await backupPostgres({ url: location, schema: options.schema }, to, {
    force: options.force,
    onProgress: options.onCopyProgress,
  });
}
