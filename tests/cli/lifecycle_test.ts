/**
 * The lifecycle commands in process: `prune` (dry run writes nothing, per-kind counts,
 * JSON, usage errors, --vacuum shrinks), `backup` (refuses to overwrite, --force,
 * --vacuum), `export` / `import` (a round trip, a bad line named by number, exit 1).
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { assertFailure, cliJson, runCli } from "../helpers/cli.ts";
import { dumpRows, makeDatabase } from "../helpers/lifecycle.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

Deno.test("prune --dry-run counts per kind and writes nothing; prune removes the same; --json", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    await makeDatabase("store", db);
    const before = dumpRows(db);
    const dry = await runCli([
      "prune",
      "--db",
      db,
      "--keep-last",
      "1",
      "--dry-run",
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    // 3 kinds x 5 resources x snapshots v1..v4, v2 and v4 tagged: v4 is the newest
    // (kept), v2 is tagged (kept), v1 and v3 go.
    assert.match(dry.stdout, /^Would remove 30 snapshot\(s\)/);
    assert.match(dry.stdout, /agent\s+10\s+0\n/);
    assert.deepEqual(dumpRows(db), before, "a dry run writes nothing");
    const json = cliJson<
      { removed: number; kinds: Record<string, { audit: number }> }
    >(
      await runCli(["prune", "--db", db, "--keep-last", "1", "--json"]),
    );
    assert.equal(json.removed, 30);
    assert.deepEqual(Object.keys(json.kinds), ["agent", "skill", "workflow"]);
    const again = await runCli([
      "prune",
      "--db",
      db,
      "--kind",
      "skill",
      "--keep-last",
      "0",
      "--include-tagged",
    ]);
    assert.match(again.stdout, /^Removed 10 snapshot\(s\)/);
    assert.match(again.stdout, /does not shrink|keeps its size/);
  });
});

Deno.test("prune usage errors exit 2: no criteria, --id without --kind, a bad age", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    for (
      const args of [
        [],
        ["--kind", "skill"],
        ["--id", "x", "--keep-last", "1"],
        ["--keep-last", "ten"],
        ["--older-than", "soon"],
        ["--keep-last", "1", "--dry-run", "--vacuum"],
      ]
    ) {
      assertFailure(await runCli(["prune", "--db", db, ...args]), 2);
    }
  });
});

Deno.test("prune --older-than takes ages and dates; --vacuum gives the space back", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    await makeDatabase("go", db);
    const old = cliJson<{ removed: number }>(
      await runCli([
        "prune",
        "--db",
        db,
        "--older-than",
        "2000-01-01",
        "--json",
      ]),
    );
    assert.equal(old.removed, 0, "nothing is older than 2000");
    // Text output labels its times UTC like every other command's.
    const text = await runCli([
      "prune",
      "--db",
      db,
      "--older-than",
      "2000-01-01",
      "--dry-run",
    ]);
    assert.match(text.stdout, /older than 2000-01-01 00:00:00\.000 UTC/);
    const aged = cliJson<{ removed: number }>(
      await runCli([
        "prune",
        "--db",
        db,
        "--older-than",
        "1d",
        "--include-tagged",
        "--orphans",
        "--json",
      ]),
    );
    assert(aged.removed > 0, "the Go file's snapshots are years old");
    {
      // Enough history that removing it frees many pages.
      using store = openStore(db);
      store.saveResource(
        SkillSchema,
        "big",
        "b",
        create(SkillSchema, { name: "b" }),
      );
      for (let i = 0; i < 300; i++) {
        store.saveAudit(
          SkillSchema,
          "big",
          "b",
          create(SkillSchema, { name: "b", description: "x".repeat(2000) }),
        );
      }
    }
    const vacuumed = cliJson<
      { removed: number; vacuum: { bytesBefore: number; bytesAfter: number } }
    >(
      await runCli([
        "prune",
        "--db",
        db,
        "--keep-last",
        "0",
        "--vacuum",
        "--json",
      ]),
    );
    assert.equal(vacuumed.removed, 300);
    assert(vacuumed.vacuum.bytesAfter < vacuumed.vacuum.bytesBefore);
  });
});

Deno.test("backup --to writes an owner-only checked copy, refuses to overwrite (exit 1), --force and --vacuum", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    await makeDatabase("store", db);
    const to = `${dir}/copy.sqlite`;
    const first = await runCli(["backup", "--db", db, "--to", to]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /integrity ok/);
    assert.equal(Deno.statSync(to).mode! & 0o777, 0o600);
    assert.deepEqual(dumpRows(to), dumpRows(db));
    assert.match(
      assertFailure(await runCli(["backup", "--db", db, "--to", to]), 1),
      /already exists/,
    );
    const forced = cliJson<{ vacuum: boolean; integrity: string }>(
      await runCli([
        "backup",
        "--db",
        db,
        "--to",
        to,
        "--force",
        "--vacuum",
        "--json",
      ]),
    );
    assert.deepEqual([forced.vacuum, forced.integrity], [true, "ok"]);
    assert.deepEqual(dumpRows(to), dumpRows(db));
    assertFailure(await runCli(["backup", "--db", db]), 2);
  });
});

Deno.test("export | import: the same rows in a new database; a broken line is refused by number (exit 1)", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    await makeDatabase("badger", db);
    const out = await runCli(["export", "--db", db, "--history"]);
    assert.equal(out.code, 0, out.stderr);
    const file = `${dir}/export.ndjson`;
    Deno.writeTextFileSync(file, out.stdout);
    const summary = cliJson<{ resources: number }>(
      await runCli(["import", file, "--db", `${dir}/copy.sqlite`, "--json"]),
    );
    assert.equal(summary.resources, 19);
    assert.deepEqual(dumpRows(`${dir}/copy.sqlite`), dumpRows(db));

    const lines = out.stdout.split("\n");
    lines[4] = lines[4].slice(0, 20);
    Deno.writeTextFileSync(file, lines.join("\n"));
    const line = assertFailure(
      await runCli(["import", file, "--db", `${dir}/other.sqlite`]),
      1,
    );
    assert.match(line, /line 5: not JSON/);
    assertFailure(await runCli(["import", "--db", `${dir}/other.sqlite`]), 2);
  });
});

Deno.test("export writes the store's data as it is: ids, tags and messages holding a URL with a password come back unchanged on import", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    const url = "postgres://app:s3cret@db.internal/app?password=x";
    {
      using store = openStore(db);
      const skill = create(SkillSchema, { name: url, description: url });
      store.saveResource(SkillSchema, "skill", url, skill);
      store.saveAudit(SkillSchema, "skill", url, skill, { tag: url });
    }
    const out = await runCli(["export", "--db", db, "--history", "--decoded"]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /s3cret/);
    const file = `${dir}/export.ndjson`;
    Deno.writeTextFileSync(file, out.stdout);
    const copy = `${dir}/copy.sqlite`;
    assert.equal((await runCli(["import", file, "--db", copy])).code, 0);
    assert.deepEqual(dumpRows(copy), dumpRows(db));
    // Messages about the run are still redacted.
    const refused = await runCli([
      "export",
      "--db",
      "postgres://app:s3cret@127.0.0.1:1/app",
    ]);
    assert.equal(refused.code, 1);
    assert.doesNotMatch(refused.stderr + refused.stdout, /s3cret/);
  });
});
