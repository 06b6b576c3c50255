/**
 * SQLite's online backup API (`sqlite3_backup_*`, through `node:sqlite`'s `backup()`),
 * kept here because only `src/sqlite/` touches `node:sqlite` values.
 *
 * @module
 */
import { backup, type DatabaseSync } from "node:sqlite";

type BackupFn = (
  db: DatabaseSync,
  destination: string,
  options: {
    rate: number;
    progress?: (p: { totalPages: number; remainingPages: number }) => void;
  },
) => Promise<number>;

/** Progress of {@linkcode copyDatabase}, in pages. */
export interface CopyProgress {
  /** Pages of the source database. */
  totalPages: number;
  /** Pages still to copy. */
  remainingPages: number;
}

/**
 * Copies the main database of `db` into the file `destination`, `pagesPerStep` pages at
 * a time, calling `onProgress` after each step. Resolves with the number of pages.
 * Run it inside a read transaction on `db` for a copy of one moment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyDatabase } from "./backup.ts";
 * import { openConnection } from "./connection.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = openConnection(`${dir}/a.sqlite`);
 * db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
 * assert(await copyDatabase(db, `${dir}/b.sqlite`, 100) > 0);
 * db.close();
 * ```
 */
export function copyDatabase(
  db: DatabaseSync,
  destination: string,
  pagesPerStep: number,
  onProgress?: (progress: CopyProgress) => void,
): Promise<number> {
  // Deno's bundled Node types say void; the runtime resolves with the page count.
  return (backup as unknown as BackupFn)(db, destination, {
    rate: pagesPerStep,
    progress: onProgress === undefined
      ? undefined
      : ({ totalPages, remainingPages }) =>
        onProgress({ totalPages, remainingPages }),
  });
}
