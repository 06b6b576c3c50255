/**
 * Private scratch databases: files one process fills, reads and deletes, such as the
 * Badger import's staging file. Durability buys nothing there, so they run without
 * fsync, holding their lock for the connection's lifetime.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { messageOf } from "../errors.ts";
import { sqliteFailure } from "./errors.ts";

/**
 * Opens (creating it) a scratch database at `path`, which should be in a directory only
 * this process uses: no fsync, an exclusive lock. A crash leaves a file to delete,
 * never one to trust. Throws a {@linkcode StoreError} with `code` set when SQLite
 * refuses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openScratchDatabase } from "./scratch.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = openScratchDatabase(`${dir}/staging.sqlite`);
 * db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
 * const { synchronous } = db.prepare("PRAGMA synchronous").get() as { synchronous: number };
 * assert.equal(synchronous, 0);
 * db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openScratchDatabase(path: string): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path);
    // No journal_mode = OFF: node:sqlite's defensive mode ignores it (the mode stays
    // "delete"), and a new file filled in one transaction journals almost nothing (an
    // import of 100,000 keys measured the same with the journal off).
    db.exec("PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;");
    return db;
  } catch (error) {
    db?.close();
    throw sqliteFailure(
      `cannot create the scratch database ${path}: ${messageOf(error)}`,
      error,
    );
  }
}
