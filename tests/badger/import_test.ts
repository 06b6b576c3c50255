import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { importBadgerBackup } from "../../src/badger/import.ts";
import { DecodeError, MigrationError } from "../../src/errors.ts";
import { migrationStatus } from "../../src/migrate/migrate.ts";
import { openStore } from "../../src/store/store.ts";
import { encodeBackup, frame } from "../helpers/badger_writer.ts";
import { writeGoDb } from "../helpers/go_store.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const FIXTURE =
  new URL("../fixtures/badger/backup.bak", import.meta.url).pathname;
const NOW = new Date("2030-01-02T03:04:05.678Z");

/** A dump whose second record is cut short: it fails only after the first is staged. */
function truncatedDump(): ReadableStream<Uint8Array> {
  const good = encodeBackup([[{ key: "agent/zz", value: "x", version: 1 }]]);
  return ReadableStream.from([
    new Uint8Array([...good, ...frame(new Uint8Array(4), 40)]),
  ]);
}

/** Every entry under `dir`, recursively, as relative paths. */
function tree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const rel = `${prefix}${entry.name}`;
    out.push(rel);
    if (entry.isDirectory) out.push(...tree(`${dir}/${entry.name}`, `${rel}/`));
  }
  return out.sort();
}

function goV2(path: string): void {
  writeGoDb(path, {
    version: 2,
    resources: [{
      kind: "skill",
      id: "s1",
      data: new Uint8Array([8, 1]),
      updatedAt: "2026-01-25 10:00:00",
    }],
  });
}

Deno.test("a truncated dump into a Go v2 file leaves it byte-identical at version 2", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    goV2(path);
    const before = Deno.readFileSync(path);
    await assert.rejects(
      importBadgerBackup(path, truncatedDump(), { tempDir: dir }),
      (error) => error instanceof DecodeError && error.offset > 0,
    );
    assert.deepEqual(Deno.readFileSync(path), before);
    assert.equal(migrationStatus(path).schemaVersion, 2);
    assert.deepEqual(tree(dir), ["go.sqlite"]);
  });
});

Deno.test("a truncated dump into a missing path creates no file and no directory", async () => {
  await withTempDir(async (dir) => {
    const tempDir = `${dir}/tmp`;
    Deno.mkdirSync(tempDir);
    await assert.rejects(
      importBadgerBackup(`${dir}/new/deeper/db.sqlite`, truncatedDump(), {
        tempDir,
      }),
      DecodeError,
    );
    assert.deepEqual(tree(dir), ["tmp"]);
  });
});

Deno.test("a dry run creates nothing at a missing path and changes nothing in a Go v2 file", async () => {
  await withTempDir(async (dir) => {
    const tempDir = `${dir}/tmp`;
    Deno.mkdirSync(tempDir);
    const missing = await importBadgerBackup(`${dir}/new/db.sqlite`, FIXTURE, {
      dryRun: true,
      now: NOW,
      tempDir,
    });
    assert.equal(missing.resources, 19);
    assert.deepEqual(tree(dir), ["tmp"]);

    // Pending migrations: counted against the migrated schema, then rolled back.
    const path = `${dir}/go.sqlite`;
    goV2(path);
    const before = Deno.readFileSync(path);
    const dry = await importBadgerBackup(path, FIXTURE, {
      dryRun: true,
      now: NOW,
      tempDir,
    });
    assert.deepEqual(Deno.readFileSync(path), before);
    assert.deepEqual(tree(dir), ["go.sqlite", "tmp"]);
    assert.equal(migrationStatus(path).schemaVersion, 2);

    // The dry run's numbers are the real import's.
    const real = await importBadgerBackup(path, FIXTURE, { now: NOW, tempDir });
    assert.deepEqual(
      { ...dry, dryRun: false, elapsedMs: 0 },
      { ...real, elapsedMs: 0 },
    );
  });
});

Deno.test("an import into a Go v2 file migrates it and imports in one go", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    goV2(path);
    const summary = await importBadgerBackup(path, FIXTURE, {
      now: NOW,
      tempDir: dir,
    });
    assert.equal(summary.resources, 19);
    const status = migrationStatus(path);
    assert.deepEqual([status.pending, status.problems], [[], []]);
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const n = db.prepare("SELECT count(*) AS n FROM resources").get()!.n;
      assert.equal(n, 19 + 1);
      assert.equal(
        db.prepare("PRAGMA journal_mode").get()!.journal_mode,
        "wal",
      );
    } finally {
      db.close();
    }
  });
});

Deno.test("an import into a new path creates an owner-only, migrated database", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/new/db.sqlite`;
    await importBadgerBackup(path, FIXTURE, { now: NOW, tempDir: dir });
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    using store = openStore(path, { readOnly: true });
    assert.equal(store.path, path);
    assert.equal(migrationStatus(path).pending.length, 0);
  });
});

Deno.test("a dump damaged in a way that still decodes imports without an error (no checksum)", async () => {
  await withTempDir(async (dir) => {
    const dump = encodeBackup([[{
      key: "agent/a1",
      value: "good",
      version: 1,
    }]]);
    // Badger's format has no checksum: a flipped bit inside a value is undetectable.
    const at = dump.lastIndexOf(0x67); // the "g" of "good"
    dump[at] ^= 0x01;
    const path = `${dir}/db.sqlite`;
    const summary = await importBadgerBackup(
      path,
      ReadableStream.from([dump]),
      {
        tempDir: dir,
      },
    );
    assert.equal(summary.resources, 1);
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const row = db.prepare("SELECT data FROM resources").get()!;
      assert.equal(new TextDecoder().decode(row.data as Uint8Array), "food");
    } finally {
      db.close();
    }
  });
});

Deno.test("a database of another application is refused untouched, dry run or not", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/crm.sqlite`;
    const db = new DatabaseSync(path);
    db.exec(
      "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('a')",
    );
    db.close();
    const before = Deno.readFileSync(path);
    for (const dryRun of [false, true]) {
      await assert.rejects(
        importBadgerBackup(path, FIXTURE, { dryRun, tempDir: dir }),
        MigrationError,
      );
      assert.deepEqual(Deno.readFileSync(path), before);
      assert.deepEqual(tree(dir), ["crm.sqlite"]);
    }
  });
});
