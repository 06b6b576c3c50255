/**
 * Databases with many rows written fast with raw SQL, and damage done to them, for
 * the admin tools' tests.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { migrate } from "../../mod.ts";

/**
 * A migrated database with `resources` resources of about 1 KB spread over `kinds`, each
 * with `snapshots` audit rows, written with raw SQL (fast), checkpointed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectDatabase } from "../../mod.ts";
 * import { writeRows } from "./rows.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * writeRows(path, 3, 2);
 * assert.equal(inspectDatabase(path).auditRecords, 6);
 * ```
 */
export function writeRows(
  path: string,
  resources: number,
  snapshots: number,
  kinds = ["skill"],
): void {
  migrate(path);
  const db = new DatabaseSync(path);
  db.exec("BEGIN");
  const resource = db.prepare(
    "INSERT INTO resources (kind, id, data, updated_at) VALUES (?, ?, ?, ?)",
  );
  const audit = db.prepare(
    `INSERT INTO resource_audit (kind, resource_id, data, archived_at)
     VALUES (?, ?, ?, ?)`,
  );
  for (let i = 0; i < resources; i++) {
    const kind = kinds[i % kinds.length];
    const data = new Uint8Array(1000).fill(i % 251);
    resource.run(kind, `r${i}`, data, "2026-01-25T10:00:00.000Z");
    for (let j = 0; j < snapshots; j++) {
      audit.run(kind, `r${i}`, data, `2026-01-25T10:00:0${j}.000Z`);
    }
  }
  db.exec("COMMIT");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

/**
 * Overwrites most of the B-tree page nearest the middle of the file with garbage, as a bad disk
 * sector or a torn copy would.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectDatabase } from "../../mod.ts";
 * import { damagePage, writeRows } from "./rows.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * writeRows(path, 200, 2);
 * damagePage(path);
 * assert.notEqual(inspectDatabase(path, { check: true }).integrity, "ok");
 * ```
 */
export function damagePage(path: string): void {
  const db = new DatabaseSync(path);
  const { page_size: pageSize, page_count: pages } = db.prepare(
    "SELECT * FROM pragma_page_size, pragma_page_count",
  ).get() as { page_size: number; page_count: number };
  db.close();
  const file = Deno.openSync(path, { read: true, write: true });
  try {
    // The B-tree page nearest the middle (overflow pages hold only payload, whose
    // damage integrity_check cannot see): its first byte is a B-tree page type.
    const type = new Uint8Array(1);
    let page = Math.floor(pages / 2);
    for (let step = 0; step < pages; step++) {
      const candidate = Math.floor(pages / 2) +
        (step % 2 ? -1 : 1) * Math.ceil(step / 2);
      if (candidate < 1 || candidate >= pages) continue;
      file.seekSync(candidate * pageSize, Deno.SeekMode.Start);
      file.readSync(type);
      if ([0x02, 0x05, 0x0a, 0x0d].includes(type[0])) {
        page = candidate;
        break;
      }
    }
    file.seekSync(page * pageSize + 8, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array(pageSize - 16).fill(0xa5));
  } finally {
    file.close();
  }
}

/**
 * Overwrites the root page of `table` (a small table's only page) with garbage, after
 * a checkpoint so that the page is in the main file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectDatabase } from "../../mod.ts";
 * import { damageTable, writeRows } from "./rows.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * writeRows(path, 1, 0);
 * damageTable(path, "schema_version");
 * assert.throws(() => inspectDatabase(path), { code: "corrupt" });
 * ```
 */
export function damageTable(path: string, table: string): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const { rootpage, page_size: pageSize } = db.prepare(
    "SELECT rootpage, page_size FROM sqlite_schema, pragma_page_size WHERE name = ?",
  ).get(table) as { rootpage: number; page_size: number };
  db.close();
  const file = Deno.openSync(path, { read: true, write: true });
  try {
    file.seekSync((rootpage - 1) * pageSize, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array(pageSize).fill(0xa5));
  } finally {
    file.close();
  }
}
