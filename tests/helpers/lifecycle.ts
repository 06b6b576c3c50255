/**
 * Databases of the three origins the lifecycle features must handle — written by the
 * Store, by the Go daemon (then migrated), imported from a Badger backup — and a
 * canonical dump of a database's rows to compare two files exactly.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { importBadgerBackup, openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { writeSeededGoDb } from "./go_store.ts";

/** Where a test database came from. */
export type Origin = "store" | "go" | "badger";

/** The origins, for tests that run on each. */
export const ORIGINS: Origin[] = ["store", "go", "badger"];

/**
 * Writes a database of `origin` at `path`, migrated: Store-written (3 kinds, histories
 * with tags and hashes, an orphan-free file), Go-written (seeded v2 file with orphans,
 * empty-string labels, second-precision times) or imported from the Badger fixture.
 *
 * @example
 * ```ts
 * import { makeDatabase } from "./lifecycle.ts";
 * await makeDatabase("store", `${await Deno.makeTempDir()}/db.sqlite`);
 * ```
 */
export async function makeDatabase(
  origin: Origin,
  path: string,
): Promise<void> {
  if (origin === "go") {
    writeSeededGoDb(path, 7, {
      resources: 30,
      auditsPerResource: 4,
      payload: 40,
    });
    openStore(path).close();
    return;
  }
  using store = openStore(path);
  if (origin === "badger") {
    await importBadgerBackup(
      store,
      fileURLToPath(new URL("../fixtures/badger/backup.bak", import.meta.url)),
    );
    return;
  }
  for (const kind of ["agent", "skill", "workflow"]) {
    for (let r = 0; r < 5; r++) {
      const id = `${kind}-${r}`;
      for (let v = 1; v <= 4; v++) {
        const msg = create(SkillSchema, {
          name: id,
          description: `version ${v}`,
          tools: Array.from({ length: v }, (_, i) => `tool-${i}`),
        });
        store.saveResource(SkillSchema, kind, id, msg);
        store.saveAudit(SkillSchema, kind, id, msg, {
          versionHash: `sha256:${kind}${r}${v}`,
          tag: v % 2 === 0 ? `v${v}` : undefined,
        });
      }
    }
  }
}

/** Every row of a database that an export carries, in a fixed order, as plain data. */
export function dumpRows(path: string): unknown {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const all = (sql: string) => db.prepare(sql).all();
    return {
      resources: all(
        `SELECT r.kind, r.id, r.data, r.updated_at, s.type_name, s.digest
         FROM resources r LEFT JOIN message_schemas s ON s.id = r.schema_id ORDER BY r.kind, r.id`,
      ),
      audit: all(
        `SELECT a.kind, a.resource_id, a.archived_at, a.version_hash, a.tag, a.data, s.type_name
         FROM resource_audit a LEFT JOIN message_schemas s ON s.id = a.schema_id
         ORDER BY a.kind, a.resource_id, a.archived_at, a.id`,
      ),
      orphans: all(
        `SELECT a.kind, a.resource_id, a.archived_at, a.version_hash, a.tag, a.data, s.type_name
         FROM resource_audit_orphans a LEFT JOIN message_schemas s ON s.id = a.schema_id
         ORDER BY a.kind, a.resource_id, a.archived_at, a.id`,
      ),
      schemas: all(
        "SELECT type_name, digest, descriptor_set FROM message_schemas ORDER BY type_name, digest",
      ),
    };
  } finally {
    db.close();
  }
}
