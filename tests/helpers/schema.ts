/**
 * A migrated database for tests that need the schema without the Store: applies every
 * file of `migrations/` in name order, the way the migrations runner does (foreign keys
 * off around files marked `protostore: foreign-keys-off`, one transaction per file).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);

/**
 * Opens (creating if needed) a SQLite file at `path` and applies all migrations to it.
 *
 * @param path Database file path.
 * @returns The open connection, foreign keys on.
 *
 * @example
 * ```ts
 * import { createMigratedDb } from "./schema.ts";
 *
 * const db = createMigratedDb(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * db.prepare("SELECT count(*) FROM resources").get();
 * db.close();
 * ```
 */
export function createMigratedDb(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  const names = [...Deno.readDirSync(MIGRATIONS_DIR)]
    .filter((entry) => entry.isFile && entry.name.endsWith(".sql"))
    .map((entry) => entry.name)
    .sort();
  for (const name of names) {
    const sql = Deno.readTextFileSync(new URL(name, MIGRATIONS_DIR));
    const foreignKeysOff = sql.split("\n", 1)[0].includes(
      "protostore: foreign-keys-off",
    );
    db.exec(`PRAGMA foreign_keys=${foreignKeysOff ? "OFF" : "ON"}`);
    db.exec(`BEGIN; ${sql}\n; COMMIT;`);
  }
  db.exec("PRAGMA foreign_keys=ON");
  return db;
}
