/**
 * SQLite access, the bottom layer above `src/errors.ts`. The only folder that opens
 * `node:sqlite`: store connections with their pragmas, read-only and owner-only file
 * handling (`connection.ts`), private scratch files (`scratch.ts`), the online backup
 * API (`backup.ts`), the one classifier of SQLite failures into `StoreError.code`
 * (`errors.ts`), reading files we do not trust: no SQL from the file runs, objects are
 * checked first (`untrusted.ts`), SQLite's time text (`time.ts`), and undoing the
 * creation of a new database file after a failure (`new_file.ts`).
 *
 * May import: `src/errors.ts`. Used by every folder that reads or writes a database.
 *
 * @module
 */
export {
  type ConnectionOptions,
  DEFAULT_BUSY_TIMEOUT_MS,
  enableWal,
  openConnection,
  readText,
  returnArrays,
  tableColumns,
  wholeText,
} from "./connection.ts";
export { failureHint, sqliteErrorCode, sqliteFailure } from "./errors.ts";
export { openScratchDatabase } from "./scratch.ts";
export {
  guardUntrustedReads,
  plainTable,
  refusedRead,
  type TableCheck,
} from "./untrusted.ts";
export { parseSqliteTime } from "./time.ts";
export { copyDatabase, type CopyProgress } from "./backup.ts";
