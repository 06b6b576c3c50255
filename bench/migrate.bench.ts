/**
 * `deno bench` suite for migrating large databases written by the Go store: each
 * iteration copies a prepared file (untimed) and runs `migrate` on the copy.
 *
 * - Go v1 (schema_version 1): 50,000 resources plus 50,000 legacy audit snapshots stored
 *   as resources `skill_audit/<id>/<unixNanos>`; 0002 moves them, 0003 rebuilds.
 * - Go v2 (schema_version 1, 2): 50,000 resources and 50,000 `resource_audit` rows with
 *   second-precision times and empty hash/tag strings, a tenth of them orphans; 0003
 *   converts and rebuilds.
 *
 * About 1 s of setup.
 *
 * @module
 */
import { migrate } from "../src/migrate/migrate.ts";
import { buildGoDb, copyDb, tempDir } from "./_data.ts";

const ROWS = 50_000;
const dir = tempDir();
globalThis.addEventListener("unload", () => dir[Symbol.dispose]());

const sources = {
  v1: `${dir.path}/go-v1.sqlite`,
  v2: `${dir.path}/go-v2.sqlite`,
};
buildGoDb(sources.v1, { version: 1, resources: ROWS, audits: ROWS });
buildGoDb(sources.v2, { version: 2, resources: ROWS, audits: ROWS });

let copies = 0;
function migrateCopy(b: Deno.BenchContext, source: string): void {
  const target = `${dir.path}/copy-${copies++}.sqlite`;
  copyDb(source, target);
  b.start();
  const result = migrate(target);
  b.end();
  if (result.schemaVersion !== 3) throw new Error("migration did not finish");
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      Deno.removeSync(target + suffix);
    } catch {
      // SQLite removes -wal and -shm on the last close
    }
  }
}

Deno.bench({
  name: `migrate Go v1 → 3 (${ROWS} resources + ${ROWS} legacy audit ids)`,
  group: "migrate",
  n: 5,
  warmup: 1,
  fn: (b) => migrateCopy(b, sources.v1),
});
Deno.bench({
  name: `migrate Go v2 → 3 (${ROWS} resources + ${ROWS} audit rows)`,
  group: "migrate",
  n: 5,
  warmup: 1,
  fn: (b) => migrateCopy(b, sources.v2),
});
