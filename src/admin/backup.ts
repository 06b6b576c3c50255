/**
 * Online backup (`etcdctl snapshot save`): a consistent copy of a database while other
 * processes keep writing, through SQLite's backup API (or `VACUUM INTO` for a compacted
 * copy), checked with `integrity_check` before it is put in place, owner-only, and never
 * over an existing file unless asked.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { messageOf, StoreError } from "../errors.ts";
import { openConnection } from "../sqlite/connection.ts";
import { copyDatabase } from "../sqlite/backup.ts";

/** Options of {@linkcode backupDatabase}. */
export interface BackupOptions {
  /** Write a compacted copy (`VACUUM INTO`): no free pages, smaller after a prune. */
  vacuum?: boolean;
  /** Replace `to` when it exists (default: refuse). */
  force?: boolean;
  /** Called as pages are copied (not with `vacuum`, which is one step). */
  onProgress?: (progress: BackupProgress) => void;
  /** Pages copied per step of the backup API (default 4096). */
  pagesPerStep?: number;
}

/** How far a backup is. */
export interface BackupProgress {
  /** Pages of the source database. */
  totalPages: number;
  /** Pages still to copy. */
  remainingPages: number;
}

/** What {@linkcode backupDatabase} wrote. */
export interface BackupResult {
  /** The source database. */
  path: string;
  /** The copy. */
  to: string;
  /** Size of the copy in bytes. */
  bytes: number;
  /** Whether it is a compacted (`VACUUM INTO`) copy. */
  vacuum: boolean;
  /** `PRAGMA integrity_check` of the copy: always `"ok"` (anything else throws). */
  integrity: "ok";
  /** How long it took, in milliseconds. */
  elapsedMs: number;
  /** A backup of PostgreSQL: the rows copied and verified, of all tables. */
  rows?: number;
}

/**
 * Copies the database at `path` to `to` while other processes may keep writing it. The
 * copy is the database as it was at one moment (one read transaction on the source;
 * writers are not blocked, WAL readers never block them), written to a temporary file
 * beside `to` (owner-only, 0600), checked with `PRAGMA integrity_check`, synced, and
 * only then put in place, so `to` is never a half-written file. An existing `to` is
 * refused unless `force` (then its stale `-wal`/`-shm` files are removed too). With
 * `vacuum` the copy is written by `VACUUM INTO`: compacted, without the free pages a
 * prune leaves behind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backupDatabase, openStore, StoreError } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const dir = await Deno.makeTempDir();
 * using store = openStore(`${dir}/db.sqlite`);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * const result = await backupDatabase(`${dir}/db.sqlite`, `${dir}/copy.sqlite`);
 * assert.equal(result.integrity, "ok");
 * using copy = openStore(`${dir}/copy.sqlite`, { readOnly: true });
 * assert.equal(copy.listResources(StructSchema, "agent").length, 1);
 * await assert.rejects(backupDatabase(`${dir}/db.sqlite`, `${dir}/copy.sqlite`), StoreError);
 * ```
 */
export async function backupDatabase(
  path: string,
  to: string,
  options: BackupOptions = {},
): Promise<BackupResult> {
  const started = performance.now();
  if (typeof to !== "string" || to === "") {
    throw new StoreError("backup needs a destination file path");
  }
  const force = options.force ?? false;
  const vacuum = options.vacuum ?? false;
  const pagesPerStep = options.pagesPerStep ?? 4096;
  if (!Number.isSafeInteger(pagesPerStep) || pagesPerStep < 1) {
    throw new StoreError(
      `pagesPerStep must be a whole number >= 1, got ${pagesPerStep}`,
    );
  }
  refuseExisting(to, force);
  const db = openConnection(path, { readOnly: true });
  const temp = partialPath(to);
  let placed = false;
  try {
    createOwnerOnly(temp, to);
    if (vacuum) {
      try {
        db.prepare("VACUUM INTO ?").run(temp);
      } catch (error) {
        throw new StoreError(
          `VACUUM INTO ${temp} failed: ${messageOf(error)}`,
          { cause: error },
        );
      }
    } else {
      // One read transaction for the whole copy: every step reads the same snapshot, so
      // commits by other processes neither restart the backup nor get half-copied.
      db.exec("BEGIN");
      try {
        db.prepare("SELECT count(*) FROM sqlite_schema").get();
        await copyDatabase(db, temp, pagesPerStep, options.onProgress);
      } catch (error) {
        throw new StoreError(
          `backup of ${path} to ${temp} failed: ${messageOf(error)}`,
          { cause: error },
        );
      } finally {
        db.exec("COMMIT");
      }
    }
    checkCopy(temp, to);
    placeCopy(temp, to, force);
    placed = true;
    return {
      path,
      to,
      bytes: Deno.statSync(to).size,
      vacuum,
      integrity: "ok",
      elapsedMs: Math.round(performance.now() - started),
    };
  } finally {
    db.close();
    if (!placed) removeDatabaseFiles(temp);
  }
}

/** Refuses an existing `to` unless `force`: a backup never overwrites unasked. */
export function refuseExisting(to: string, force: boolean): void {
  if (!force && existsPath(to)) {
    throw new StoreError(
      `${to} already exists: choose another file, or pass { force: true } (CLI: --force) to replace it`,
    );
  }
}

/** A temporary name beside `to`, for the copy until it is checked. */
export function partialPath(to: string): string {
  return join(
    dirname(to),
    `.${basename(to)}.partial-${crypto.randomUUID().slice(0, 8)}`,
  );
}

/** Creates `temp` empty and owner-only: SQLite keeps the mode of an existing empty file. */
export function createOwnerOnly(temp: string, to: string): void {
  try {
    Deno.openSync(temp, { write: true, createNew: true, mode: 0o600 })
      .close();
  } catch (error) {
    throw new StoreError(
      `cannot create ${temp} beside ${to}: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

/** Opens the copy on its own, runs integrity_check, and syncs it to disk. */
export function checkCopy(temp: string, to: string): void {
  let copy;
  try {
    copy = openConnection(temp);
  } catch (error) {
    throw new StoreError(
      `the copy for ${to} does not open: ${messageOf(error)}`,
      { cause: error },
    );
  }
  try {
    const rows = copy.prepare("PRAGMA integrity_check").all() as {
      integrity_check: string;
    }[];
    const problems = rows.map((r) => r.integrity_check).filter((r) =>
      r !== "ok"
    );
    if (problems.length > 0) {
      throw new StoreError(
        `the copy for ${to} fails integrity_check (${
          problems.slice(0, 3).join("; ")
        }); ` +
          "nothing was written to it",
        { code: "corrupt" },
      );
    }
    // Everything in the main file, so the copy is one file (no -wal) once closed.
    copy.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } finally {
    copy.close();
  }
  const file = Deno.openSync(temp, { read: true, write: true });
  try {
    file.syncSync();
  } finally {
    file.close();
  }
}

/** Puts the checked copy at `to`: renamed over it with `force`, else linked (never overwrites). */
export function placeCopy(temp: string, to: string, force: boolean): void {
  try {
    if (force) {
      // A stale WAL beside the new file would be replayed into it on the next open.
      removeDatabaseFiles(to, true);
      Deno.renameSync(temp, to);
    } else {
      // link fails if `to` appeared meanwhile: never overwrites, unlike rename.
      Deno.linkSync(temp, to);
      Deno.removeSync(temp);
    }
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new StoreError(
        `${to} already exists: choose another file, or pass { force: true } (CLI: --force) to replace it`,
      );
    }
    throw new StoreError(`cannot write ${to}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

function existsPath(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw new StoreError(`cannot check ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

/** Removes a database file and its `-wal`/`-shm` (or only those). */
export function removeDatabaseFiles(path: string, sidecarsOnly = false): void {
  for (
    const file of sidecarsOnly ? [`${path}-wal`, `${path}-shm`] : [
      path,
      `${path}-wal`,
      `${path}-shm`,
    ]
  ) {
    try {
      Deno.removeSync(file);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}
