/**
 * Private scratch databases: files one process fills, reads and deletes, such as the
 * Badger import's staging file. Durability buys nothing there, so they run without
 * journal or fsync, holding their lock for the connection's lifetime.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { messageOf } from "../errors.ts";
import { sqliteFailure } from "./errors.ts";

/**
 * Opens (creating it) a scratch database at `path`, which should be in a directory only
 * this process uses: no rollback journal, no fsync, an exclusive lock. A crash leaves a
 * file to delete, never one to trust. Throws a {@linkcode StoreError} with `code` set
 * when SQLite refuses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openScratchDatabase } from "./scratch.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = openScratchDatabase(`${dir}/staging.sqlite`);
 * db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
 * const { journal_mode } = db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
 * assert.equal(journal_mode, "off");
 * db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openScratchDatabase(path: string): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path);
    db.exec(
      `PRAGMA journal_mode = OFF;
       PRAGMA synchronous = OFF;
       PRAGMA locking_mode = EXCLUSIVE;`,
    );
    return db;
  } catch (error) {
    db?.close();
    throw sqliteFailure(
      `cannot create the scratch database ${path}: ${messageOf(error)}`,
      error,
    );
  }
}
