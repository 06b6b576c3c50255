/**
 * Every row of every table `copyStore` moves, for comparing stores in tests: of a
 * SQLite file directly, of any store through an exact copy into a scratch file.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { copyStore } from "../../mod.ts";

const TABLE_ORDER: Record<string, string> = {
  message_schemas: "id",
  resources: "kind, id",
  resource_audit: "id",
  resource_audit_orphans: "id",
  resource_changes: "revision, kind, id",
};

/** Every row of every copied table of the file, the revision state and the audit id sequence. */
export function dumpSqlite(path: string) {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const tables: Record<string, unknown[]> = {};
    for (const [table, order] of Object.entries(TABLE_ORDER)) {
      tables[table] = db.prepare(`SELECT * FROM ${table} ORDER BY ${order}`)
        .all().map((row) => ({ ...row }));
    }
    const one = (sql: string) => Object.values(db.prepare(sql).get()!)[0];
    return {
      tables,
      compacted: one("SELECT compacted_through FROM change_log"),
      sequence: one(
        "SELECT seq FROM sqlite_sequence WHERE name = 'resource_audit'",
      ),
    };
  } finally {
    db.close();
  }
}

/** {@linkcode dumpSqlite} of the store at `location` (a file or postgres:// URL). */
export async function dumpStore(location: string, schema?: string) {
  const dir = await Deno.makeTempDir({ prefix: "protostore-dump-" });
  try {
    await copyStore(location, `${dir}/dump.sqlite`, { fromSchema: schema });
    return dumpSqlite(`${dir}/dump.sqlite`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
