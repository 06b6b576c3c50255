/**
 * The public face of the BadgerDB import, {@linkcode importBadgerBackup}, and the order
 * of its phases: read and validate the whole dump into a private staging file
 * (`staging.ts`, `counts.ts`), then write it to the target in one transaction
 * (`apply.ts`), together with the target's pending migrations when the target is a
 * path. A failure at any point leaves the target byte-identical, and a missing target
 * is not created.
 *
 * A process killed while staging leaves the target untouched and its staging directory
 * behind, which the next import removes once that process is gone
 * (`stale_staging.ts`); killed while writing, SQLite rolls the open transaction back.
 * Memory stays bounded by the largest record plus SQLite's caches.
 *
 * @module
 */
import { join } from "node:path";
import { tmpdir } from "node:os";
import type { DatabaseSync } from "node:sqlite";
import { messageOf, MigrationError, StoreError } from "../errors.ts";
import {
  enableWal,
  openConnection,
  tableColumns,
} from "../sqlite/connection.ts";
import { migrateWith } from "../migrate/runner.ts";
import { missingPaths, removeCreated } from "../sqlite/new_file.ts";
import { migrationStatus } from "../migrate/migrate.ts";
import { Store } from "../store/store.ts";
import {
  type ApplyContext,
  countStagedAgainst,
  withStagingAttached,
  writeStaged,
} from "./apply.ts";
import { countStaged } from "./counts.ts";
import { openBadgerBackup } from "./framing.ts";
import { openStaging, stageDump } from "./staging.ts";
import { removeAbandonedStaging, STAGING_PREFIX } from "./stale_staging.ts";
import {
  emptySummary,
  type ImportBadgerOptions,
  type ImportSummary,
} from "./summary.ts";

/**
 * Imports a BadgerDB backup (the file `badger backup` or Go's `db.Backup` writes; a path
 * or a stream of its bytes) into `target`: an open {@linkcode Store}, or the path of a
 * database file, which is created and migrated if needed in the same transaction as
 * the import.
 *
 * All or nothing: the dump is read and validated completely first (a truncated or
 * corrupt dump throws `DecodeError` with the byte `offset`), then written in one
 * transaction. A failure leaves the target byte-identical; a target path that did not
 * exist is not created (nor its directory); a database that is not protostore's is
 * refused before anything is written (`MigrationError`). With `dryRun` nothing is
 * written or created (a Store may then be read-only).
 *
 * For each key only its newest version counts; deleted and expired keys are skipped;
 * `<kind>/<id>` becomes a resource, updated in place like a save (its history is
 * kept); a legacy `<kind>/<kind>_audit/<resourceId>/<unixNanos>` key becomes an audit
 * snapshot (an orphan when its resource does not exist). Importing the same dump again
 * changes nothing. Badger's backup format has no checksum: a dump damaged in a way that
 * still decodes imports the damaged bytes without an error.
 *
 * @param target An open Store (must not be inside a transaction), or a database path.
 * @param source The dump's path, or a stream of its bytes.
 * @param options Dry run, clock, progress and invalid-key callbacks, temp directory.
 * @returns What was found and imported.
 *
 * @example Into an open store
 * ```ts
 * import assert from "node:assert/strict";
 * import { importBadgerBackup, openStore } from "@protostore/store";
 *
 * // One record holding KV { key: "agent/a1", value: 0x0801, version: 1 }.
 * const kv = [0x0a, 0x08, ...new TextEncoder().encode("agent/a1"), 0x12, 0x02, 0x08, 0x01, 0x20, 0x01];
 * const body = [0x0a, kv.length, ...kv];
 * const dump = new Uint8Array([body.length, 0, 0, 0, 0, 0, 0, 0, ...body]);
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * const summary = await importBadgerBackup(store, ReadableStream.from([dump]));
 * assert(summary.resources === 1 && summary.kinds.agent === 1);
 * ```
 *
 * @example Into a path: a truncated dump creates nothing
 * ```ts
 * import assert from "node:assert/strict";
 * import { DecodeError, importBadgerBackup } from "@protostore/store";
 *
 * const path = `${await Deno.makeTempDir()}/new/db.sqlite`;
 * const truncated = new Uint8Array([40, 0, 0, 0, 0, 0, 0, 0, 0x0a]);
 * await assert.rejects(
 *   importBadgerBackup(path, ReadableStream.from([truncated])),
 *   (error) => error instanceof DecodeError && error.offset === 0,
 * );
 * assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
 * ```
 */
export async function importBadgerBackup(
  target: Store | string,
  source: string | ReadableStream<Uint8Array>,
  options: ImportBadgerOptions = {},
): Promise<ImportSummary> {
  if (typeof target === "string") {
    return await importIntoPath(target, source, options);
  }
  if (!(target instanceof Store)) {
    throw new StoreError(
      "importBadgerBackup takes an open Store (from openStore) or a database path first",
    );
  }
  return await importIntoConnection(
    Store.connectionOf(target),
    source,
    options,
  );
}

/**
 * {@linkcode importBadgerBackup} into an open connection to a migrated protostore
 * database (what a {@linkcode Store} import runs on its connection): the dump is staged
 * and validated, then written in one `BEGIN IMMEDIATE` transaction, or with `dryRun`
 * counted in a read transaction (the connection may be read-only). Must not be called
 * inside a transaction.
 *
 * @param db An open connection to a migrated protostore database.
 * @param source The dump's path, or a stream of its bytes.
 * @param options Dry run, clock, progress and invalid-key callbacks, temp directory.
 * @returns What was found and imported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Store } from "../store/store.ts";
 * import { importIntoConnection } from "./import.ts";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * const db = Store.connectionOf(store);
 * const summary = await importIntoConnection(db, ReadableStream.from([new Uint8Array(0)]));
 * assert.equal(summary.keysSeen, 0);
 * ```
 */
export async function importIntoConnection(
  db: DatabaseSync,
  source: string | ReadableStream<Uint8Array>,
  options: ImportBadgerOptions = {},
): Promise<ImportSummary> {
  if (!db.isOpen) {
    throw new StoreError(
      "importBadgerBackup: the database connection is closed",
    );
  }
  requireNoTransaction(db);
  requireMigrated(db);
  const started = performance.now();
  await using staged = await stage(source, options);
  withStagingAttached(db, staged.path, staged.name, () => {
    if (staged.summary.dryRun) {
      countStagedAgainst(db, staged.context);
      return;
    }
    db.exec("BEGIN IMMEDIATE");
    try {
      writeStaged(db, staged.context);
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  });
  return finish(staged.summary, started);
}

/** A dump read and validated into a staging file, removed on dispose. */
interface Staged extends AsyncDisposable {
  /** The staging database file. */
  path: string;
  /** The import's private directory (holds the staging file). */
  dir: string;
  /** The dump's name in messages. */
  name: string;
  /** The summary, with every count that depends on the dump alone. */
  summary: ImportSummary;
  /** What the apply phase needs. */
  context: ApplyContext;
}

/** Phase 1: the whole dump into a staging file in a fresh private directory. */
async function stage(
  source: string | ReadableStream<Uint8Array>,
  options: ImportBadgerOptions,
): Promise<Staged> {
  const now = options.now ?? new Date();
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) {
    throw new StoreError("importBadgerBackup: options.now is an invalid Date");
  }
  let stream: ReadableStream<Uint8Array>;
  let totalBytes: number | undefined;
  const name = typeof source === "string" ? source : "Badger backup stream";
  if (typeof source === "string") {
    ({ stream, size: totalBytes } = await openBadgerBackup(source));
  } else {
    stream = source;
  }
  const summary = emptySummary(
    typeof source === "string" ? source : null,
    options.dryRun ?? false,
    totalBytes,
  );
  let dir: string;
  try {
    const parent = options.tempDir ?? tmpdir();
    await removeAbandonedStaging(parent);
    dir = await Deno.makeTempDir({
      dir: parent,
      prefix: `${STAGING_PREFIX}${Deno.pid}-`,
    });
  } catch (error) {
    await stream.cancel().catch(() => {});
    throw new StoreError(
      `cannot create a staging directory for the import in ${
        options.tempDir ?? "the temp directory"
      }: ${messageOf(error)}; pass another tempDir`,
      { cause: error },
    );
  }
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  const path = join(dir, "staging.sqlite");
  let staging: DatabaseSync | undefined;
  try {
    staging = openStaging(path, dir);
    const resources = await stageDump(staging, {
      stream,
      name,
      totalBytes,
      nowMs,
      summary,
      onProgress: (bytesRead, total) => {
        summary.bytesRead = bytesRead;
        options.onProgress?.(bytesRead, total);
      },
    });
    const liveAudits = countStaged(staging, resources, summary, {
      maxListed: options.maxListedInvalidKeys ?? 1000,
      onInvalidKey: options.onInvalidKey,
    });
    staging.close();
    return {
      path,
      dir,
      name,
      summary,
      context: { summary, liveAudits, nowIso: now.toISOString() },
      [Symbol.asyncDispose]: remove,
    };
  } catch (error) {
    // Closes the file if the error came before the stream was read to its end.
    await stream.cancel().catch(() => {});
    if (staging?.isOpen) staging.close();
    await remove();
    throw error;
  }
}

/**
 * Into a database path: refuse what the runner refuses before reading the dump, stage
 * the dump, then migrate and import in one transaction, so that a failure leaves the
 * file as it was and a new file is removed again.
 */
async function importIntoPath(
  path: string,
  source: string | ReadableStream<Uint8Array>,
  options: ImportBadgerOptions,
): Promise<ImportSummary> {
  const started = performance.now();
  const status = migrationStatus(path);
  if (status.problems.length > 0) {
    if (typeof source !== "string") await source.cancel().catch(() => {});
    throw new MigrationError(
      `refusing to import into ${path}: ${status.problems.join("; ")}`,
    );
  }
  await using staged = await stage(source, options);
  if (staged.summary.dryRun) {
    dryRunAgainstPath(path, status.exists, status.pending.length, staged);
    return finish(staged.summary, started);
  }
  const created = status.exists ? [] : missingPaths(path);
  let db: DatabaseSync | undefined;
  try {
    db = openConnection(path);
    const conn = db;
    withStagingAttached(
      conn,
      staged.path,
      staged.name,
      () => migrateWith(conn, () => writeStaged(conn, staged.context)),
    );
  } catch (error) {
    db?.close();
    db = undefined;
    removeCreated(path, created);
    throw error;
  } finally {
    if (db !== undefined) {
      // Committed: switch to WAL as openStore would; if that fails, the next open does.
      try {
        enableWal(db);
      } catch {
        // The import is in; WAL is a setting the next openStore applies again.
      }
      db.close();
    }
  }
  return finish(staged.summary, started);
}

/**
 * The dry run of a path import, writing and creating nothing there: a missing file is
 * stood in for by a new database in the staging directory; a current one is read
 * read-only; one with pending migrations is migrated and counted in a transaction that
 * is rolled back.
 */
function dryRunAgainstPath(
  path: string,
  exists: boolean,
  pending: number,
  staged: Staged,
): void {
  const stand = !exists;
  const db = openConnection(
    stand ? join(staged.dir, "dry-run.sqlite") : path,
    { readOnly: exists && pending === 0 },
  );
  try {
    withStagingAttached(db, staged.path, staged.name, () => {
      if (exists && pending === 0) countStagedAgainst(db, staged.context);
      else {
        migrateWith(db, () => countStagedAgainst(db, staged.context), {
          rollback: true,
        });
      }
    });
  } finally {
    db.close();
  }
}

function requireNoTransaction(db: DatabaseSync): void {
  if (db.isTransaction) {
    throw new StoreError(
      "importBadgerBackup cannot run inside an open transaction: it runs its own; commit first",
    );
  }
}

const TARGET_TABLES = ["resources", "resource_audit", "resource_audit_orphans"];

/** Checked before the dump is read, so an unmigrated connection fails at once. */
function requireMigrated(db: DatabaseSync): void {
  const missing = TARGET_TABLES.filter((t) => tableColumns(db, t).length === 0);
  if (missing.length > 0) {
    throw new StoreError(
      `importBadgerBackup: nothing was imported: the database has no ${
        missing.join(", ")
      } table${missing.length > 1 ? "s" : ""} (is the database migrated?)`,
    );
  }
}

function finish(summary: ImportSummary, started: number): ImportSummary {
  summary.elapsedMs = Math.round(performance.now() - started);
  return summary;
}
