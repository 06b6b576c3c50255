/**
 * Backup of a PostgreSQL store into a new SQLite file: a portable copy (`copyStore`
 * from one consistent snapshot, verified by row counts and checksums) with the refusals
 * and checks of the SQLite `backup`: never over an existing file unless asked,
 * owner-only (0600), `integrity_check` passed and synced before it is put in place.
 *
 * @module
 */
import { StoreError } from "../errors.ts";
import { isPostgresUrl, redactUrl } from "../postgres/connection.ts";
import { type CopyProgress, copyStore } from "../copy/copy.ts";
import {
  type BackupResult,
  checkCopy,
  createOwnerOnly,
  partialPath,
  placeCopy,
  refuseExisting,
  removeDatabaseFiles,
} from "./backup.ts";
import type { PgLocation } from "./postgres.ts";

/** Options of {@linkcode backupPostgres}. */
export interface PgBackupOptions {
  /** Replace `to` when it exists (default: refuse). */
  force?: boolean;
  /** Called after every batch of rows copied. */
  onProgress?: (progress: CopyProgress) => void;
}

/**
 * Copies the PostgreSQL store at `location` into a new SQLite file `to`, read in one
 * consistent snapshot (writers go on). The copy is built beside `to` owner-only,
 * verified (row counts and checksums of every table, revision state), checked with
 * `integrity_check`, synced, and only then put in place; an existing `to` is refused
 * unless `force`.
 */
export async function backupPostgres(
  location: PgLocation,
  to: string,
  options: PgBackupOptions = {},
): Promise<BackupResult> {
  const started = performance.now();
  if (typeof to !== "string" || to === "") {
    throw new StoreError("backup needs a destination file path");
  }
  if (isPostgresUrl(to)) {
    throw new StoreError(
      `backup writes a SQLite file, not ${
        redactUrl(to)
      }: to copy a store into PostgreSQL use copy`,
    );
  }
  const force = options.force ?? false;
  refuseExisting(to, force);
  const temp = partialPath(to);
  let placed = false;
  try {
    createOwnerOnly(temp, to);
    const copied = await copyStore(location.url, temp, {
      fromSchema: location.schema,
      onProgress: options.onProgress,
    });
    checkCopy(temp, to);
    placeCopy(temp, to, force);
    placed = true;
    return {
      path: copied.from,
      to,
      bytes: Deno.statSync(to).size,
      vacuum: false,
      integrity: "ok",
      elapsedMs: Math.round(performance.now() - started),
      rows: Object.values(copied.tables).reduce((n, t) => n + t.rows, 0),
    };
  } finally {
    if (!placed) removeDatabaseFiles(temp);
  }
}
