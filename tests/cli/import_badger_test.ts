import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { assertFailure, cliJson, runCli } from "../helpers/cli.ts";
import { encodeBackup, frame } from "../helpers/badger_writer.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { writeGoDb } from "../helpers/go_store.ts";
import { migrationStatus } from "../../src/migrate/migrate.ts";
import type { ImportSummary } from "../../mod.ts";

const FIXTURE =
  new URL("../fixtures/badger/backup.bak", import.meta.url).pathname;
const MANIFEST = JSON.parse(
  Deno.readTextFileSync(
    new URL("../fixtures/badger/manifest.json", import.meta.url),
  ),
) as { live: { key: string }[] };

function counts(path: string) {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    return {
      resources: n("SELECT count(*) AS n FROM resources"),
      audit: n("SELECT count(*) AS n FROM resource_audit"),
      orphans: n("SELECT count(*) AS n FROM resource_audit_orphans"),
    };
  } finally {
    db.close();
  }
}

Deno.test("import-badger brings the fixture dump into a new database, and a second run changes nothing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/new/db.sqlite`;
    const first = cliJson<ImportSummary>(
      await runCli(["import-badger", FIXTURE, "--db", path, "--json"]),
    );
    const audits = MANIFEST.live.filter((l) =>
      l.key.includes("_audit/")
    ).length;
    assert.equal(first.dryRun, false);
    assert.equal(first.resources + first.auditRecords, MANIFEST.live.length);
    assert.equal(first.auditRecords, audits);
    assert.deepEqual(counts(path), {
      resources: MANIFEST.live.length - audits,
      audit: audits,
      orphans: 0,
    });
    assert.equal((Deno.statSync(path).mode! & 0o777).toString(8), "600");

    const again = await runCli(["import-badger", FIXTURE, "--db", path]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^Imported .*backup\.bak into /);
    assert.match(
      again.stdout,
      /resources: +19 \(agent 6, skill 8, workflow 5\); 19 already identical/,
    );
    assert.deepEqual(counts(path), {
      resources: MANIFEST.live.length - audits,
      audit: audits,
      orphans: 0,
    });
  });
});

Deno.test("import-badger --dry-run validates and counts but creates nothing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const summary = cliJson<ImportSummary>(
      await runCli([
        "import-badger",
        FIXTURE,
        "--db",
        path,
        "--dry-run",
        "--json",
      ]),
    );
    assert.equal(summary.dryRun, true);
    assert.equal(summary.resources, 19);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("import-badger reports unmappable keys by hex on stderr and in the summary", async () => {
  await withTempDir(async (dir) => {
    const dump = `${dir}/dump.bak`;
    Deno.writeFileSync(
      dump,
      encodeBackup([[
        { key: "agent/a1", value: "\x08\x01", version: 2 },
        { key: "nokind", value: "x", version: 3 },
        { key: new Uint8Array([0x61, 0x2f, 0xff]), value: "x", version: 4 },
      ]]),
    );
    const run = await runCli([
      "import-badger",
      dump,
      "--db",
      `${dir}/db.sqlite`,
      "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as ImportSummary;
    assert.equal(summary.skippedInvalid, 2);
    assert.deepEqual(summary.invalidKeys.map((k) => k.keyHex).sort(), [
      "612fff",
      "6e6f6b696e64",
    ]);
    const lines = run.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 2);
    for (const line of lines) {
      assert.match(line, /^protostore: skipped key [0-9a-f]+ \(hex\): /);
    }
  });
});

Deno.test("import-badger of a truncated dump fails with the byte offset and leaves the database as it was", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    assert.equal(
      (await runCli(["import-badger", FIXTURE, "--db", path])).code,
      0,
    );
    const before = Deno.readFileSync(path);
    const good = encodeBackup([[{ key: "agent/zz", value: "x", version: 1 }]]);
    const dump = `${dir}/broken.bak`;
    Deno.writeFileSync(
      dump,
      new Uint8Array([...good, ...frame(new Uint8Array(4), 40)]),
    );
    const line = assertFailure(
      await runCli(["import-badger", dump, "--db", path]),
      1,
    );
    assert.match(line, new RegExp(`offset ${good.length}\\b`));
    assert.deepEqual(Deno.readFileSync(path), before);
    assert.equal(counts(path).resources, 19);
  });
});

Deno.test("import-badger of a truncated dump leaves a Go v2 file byte-identical and creates no new one", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    writeGoDb(path, { version: 2 });
    const before = Deno.readFileSync(path);
    const good = encodeBackup([[{ key: "agent/zz", value: "x", version: 1 }]]);
    const dump = `${dir}/broken.bak`;
    Deno.writeFileSync(
      dump,
      new Uint8Array([...good, ...frame(new Uint8Array(4), 40)]),
    );
    assertFailure(await runCli(["import-badger", dump, "--db", path]), 1);
    assert.deepEqual(Deno.readFileSync(path), before);
    assert.equal(migrationStatus(path).schemaVersion, 2);
    assertFailure(
      await runCli(["import-badger", dump, "--db", `${dir}/new/db.sqlite`]),
      1,
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["broken.bak", "go.sqlite"],
    );
  });
});

Deno.test("import-badger usage errors exit 2, a missing dump exits 1, --help exits 0", async () => {
  await withTempDir(async (dir) => {
    assertFailure(
      await runCli(["import-badger", "--db", `${dir}/db.sqlite`]),
      2,
    );
    assertFailure(
      await runCli(["import-badger", "a", "b", "--db", `${dir}/db.sqlite`]),
      2,
    );
    assertFailure(await runCli(["import-badger", FIXTURE, "--bogus"]), 2);
    assertFailure(
      await runCli([
        "import-badger",
        `${dir}/missing.bak`,
        "--db",
        `${dir}/db.sqlite`,
      ]),
      1,
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)],
      [],
      "no database created for a missing dump",
    );
    const help = await runCli(["import-badger", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: deno run -A cli\.ts import-badger FILE/);
  });
});
