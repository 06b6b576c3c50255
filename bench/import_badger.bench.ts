/**
 * `deno bench` suite for `importBadgerBackup` (the CLI's `import-badger`): a generated dump of
 * 100,000 keys (~100-byte values, 5% legacy audit keys, tombstones, older versions)
 * imported into a fresh migrated database per iteration, against a raw one-transaction
 * insert of the same number of resource rows. The full 1,000,000-key comparison with
 * peak RSS is `bench/import_badger_compare.ts`. About 2 s of setup.
 *
 * @module
 */
import { importBadgerBackup } from "../src/badger/import.ts";
import { openStore, Store } from "../src/store/store.ts";
import { writeGeneratedDump } from "../tests/helpers/badger_writer.ts";
import { tempDir } from "./_data.ts";

const KEYS = 100_000;
const dir = tempDir();
globalThis.addEventListener("unload", () => dir[Symbol.dispose]());
const dump = `${dir.path}/dump.bak`;
const stats = await writeGeneratedDump(dump, { keys: KEYS, seed: 1 });

let files = 0;
function freshStore(): Store {
  return openStore(`${dir.path}/import-${files++}.sqlite`);
}
function remove(store: Store): void {
  const path = store.path;
  store.close();
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      Deno.removeSync(path + suffix);
    } catch {
      // absent
    }
  }
}

const value = new Uint8Array(100).fill(7);
const ids = Array.from({ length: stats.liveResources }, (_, i) => `r-${i}`);
Deno.bench({
  name: `raw insert of ${stats.liveResources} rows in one transaction`,
  group: "import-badger",
  baseline: true,
  n: 5,
  warmup: 1,
  fn(b) {
    const store = freshStore();
    const db = Store.connectionOf(store);
    const insert = db.prepare(
      "INSERT INTO resources (kind, id, data, updated_at) VALUES (?, ?, ?, ?)",
    );
    const iso = new Date().toISOString();
    b.start();
    db.exec("BEGIN IMMEDIATE");
    for (const id of ids) insert.run("skill", id, value, iso);
    db.exec("COMMIT");
    b.end();
    remove(store);
  },
});
Deno.bench({
  name:
    `importBadgerBackup (${KEYS} keys, ${stats.liveResources} live resources)`,
  group: "import-badger",
  n: 5,
  warmup: 1,
  async fn(b) {
    const store = freshStore();
    b.start();
    await importBadgerBackup(store, dump, { tempDir: dir.path });
    b.end();
    remove(store);
  },
});
