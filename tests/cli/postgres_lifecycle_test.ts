/**
 * `prune` and `restore` with `--db postgres://…` (and `$PROTOSTORE_DB`, `--schema`): the
 * same commands on the same data print the same thing on a SQLite file and on
 * PostgreSQL, and change the store the same way; `prune --vacuum` is refused on
 * PostgreSQL with a usage error.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { type AsyncStore, connectStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { main } from "../../src/cli/main.ts";
import { assertFailure, cliJson, runCli } from "../helpers/cli.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";

const skill = (name: string, tools: string[] = []) =>
  create(SkillSchema, { name, tools });

/** Two kinds; skill/lint has 4 snapshots (the first tagged v1), tool/fmt has 2. */
async function seed(store: AsyncStore): Promise<void> {
  await store.saveResource(SkillSchema, "skill", "lint", skill("lint", ["a"]));
  await store.saveAudit(SkillSchema, "skill", "lint", skill("lint", ["a"]), {
    tag: "v1",
    versionHash: "sha256:1",
  });
  for (let n = 2; n <= 4; n++) {
    await store.saveAudit(SkillSchema, "skill", "lint", skill(`lint ${n}`));
  }
  await store.saveResource(
    SkillSchema,
    "skill",
    "lint",
    skill("lint", ["a", "b"]),
  );
  await store.saveResource(SkillSchema, "tool", "fmt", skill("fmt"));
  await store.saveAudit(SkillSchema, "tool", "fmt", skill("fmt 1"));
  await store.saveAudit(SkillSchema, "tool", "fmt", skill("fmt 2"));
}

/** Where a run goes: `--db` (and `--schema`) arguments, or the environment. */
interface Target {
  name: string;
  args: string[];
  env: Record<string, string>;
  open(): Promise<AsyncStore>;
}

/** The output with what legitimately differs (location, times) blanked out. */
function normal(text: string, target: Target): string {
  let out = text;
  for (const arg of [...target.args, ...Object.values(target.env)]) {
    if (arg.includes("/")) out = out.replaceAll(arg, "<db>");
  }
  return out
    .replace(/<db> \(schema \w+\)/g, "<db>")
    .replace(/\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?/g, "<time>");
}

async function sequence(target: Target): Promise<string[]> {
  const run = (args: string[]) =>
    runCli([...args, ...target.args], { env: target.env });
  const outputs: string[] = [];
  const plan = await run(["prune", "--keep-last", "1", "--dry-run", "--json"]);
  assert.equal(plan.code, 0, plan.stderr);
  const planned = cliJson<
    { removed: number; dryRun: boolean; kinds: Record<string, unknown> }
  >(plan);
  assert.deepEqual(planned.kinds, {
    skill: { audit: 2, orphans: 0 },
    tool: { audit: 1, orphans: 0 },
  });
  assert.equal(planned.dryRun, true);
  outputs.push(normal(plan.stdout, target));
  {
    await using store = await target.open();
    assert.equal(
      (await store.listAuditHistory(SkillSchema, "skill", "lint")).length,
      4,
    );
  }
  const pruned = await run(["prune", "--keep-last", "1", "--kind", "skill"]);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(
    pruned.stdout,
    /^Removed 2 snapshot\(s\) from .* \(keep the newest 1 per resource, tagged kept, orphans kept\)/,
  );
  assert.match(pruned.stdout, /^skill +2 +0$/m);
  outputs.push(
    normal(pruned.stdout.replace(/\nThe file keeps.*/s, ""), target),
  );
  const older = await run([
    "prune",
    "--older-than",
    "2999-01-01",
    "--include-tagged",
    "--json",
  ]);
  assert.equal(older.code, 0, older.stderr);
  assert.equal(cliJson<{ removed: number }>(older).removed, 4);
  outputs.push(normal(older.stdout, target));

  // restore: asks on a terminal, refuses without one, restores with --yes.
  const refused = await run(["restore", "skill", "lint", "--tag", "v1"]);
  assert.match(assertFailure(refused, 2), /--yes/);
  {
    // A fresh history to restore from (deleting a resource deletes its history).
    await using store = await target.open();
    await store.deleteResource("skill", "lint");
    await store.deleteResource("tool", "fmt");
    await seed(store);
  }
  let asked = "";
  let stdout = "";
  const declined = await main(
    ["restore", "skill", "lint", "--tag", "v1", ...target.args],
    {
      out: (t) => stdout += t,
      err: () => {},
      color: false,
      errIsTerminal: false,
      env: (name) => target.env[name],
      confirm: (question) => {
        asked = question;
        return false;
      },
    },
  );
  assert.equal(declined, 0);
  assert.match(asked, /Restore/);
  assert.match(stdout, /Not restored\./);
  outputs.push(normal(stdout, target));
  const before = await (async () => {
    await using store = await target.open();
    return await store.currentRevision();
  })();
  const restored = await run([
    "restore",
    "skill",
    "lint",
    "--tag",
    "v1",
    "--yes",
  ]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(
    restored.stdout,
    /restore snapshot \d+ \(archived .*, tag v1, hash sha256:1\) over revision \d+/,
  );
  assert.match(
    restored.stdout,
    new RegExp(`Restored: skill/lint is at revision ${before + 1}`),
  );
  outputs.push(normal(restored.stdout, target));
  {
    await using store = await target.open();
    assert.deepEqual(
      (await store.getResource(SkillSchema, "skill", "lint")).tools,
      ["a"],
    );
    assert.deepEqual(await store.changesSince(before), [
      { revision: before + 1, kind: "skill", id: "lint", type: "put" },
    ]);
  }
  const json = await run([
    "restore",
    "skill",
    "lint",
    "--hash",
    "sha256:1",
    "--yes",
    "--json",
  ]);
  assert.equal(json.code, 0, json.stderr);
  const result = cliJson<{ revision: number; changes: unknown[] }>(json);
  assert.equal(result.revision, before + 2);
  assert.deepEqual(result.changes, []);
  const missing = await run([
    "restore",
    "skill",
    "lint",
    "--tag",
    "v9",
    "--yes",
  ]);
  assert.match(assertFailure(missing, 1), /v9/);
  const gone = await run(["restore", "skill", "nope", "--tag", "v1", "--yes"]);
  outputs.push(normal(assertFailure(gone, 1), target));
  return outputs;
}

Deno.test("prune and restore print the same and do the same on SQLite and on PostgreSQL (--db, --schema, $PROTOSTORE_DB)", async () => {
  const server = await sharedPostgres();
  await withTempDir(async (dir) => {
    const pgSchema = freshSchema();
    const envSchema = freshSchema();
    const targets: Target[] = [
      {
        name: "sqlite",
        args: ["--db", `${dir}/db.sqlite`],
        env: {},
        open: () => connectStore(`${dir}/db.sqlite`),
      },
      {
        name: "postgres",
        args: ["--db", server.url, "--schema", pgSchema],
        env: {},
        open: () => connectStore(server.url, { schema: pgSchema, poolSize: 1 }),
      },
      {
        name: "postgres from $PROTOSTORE_DB",
        args: ["--schema", envSchema],
        env: { PROTOSTORE_DB: server.url },
        open: () =>
          connectStore(server.url, { schema: envSchema, poolSize: 1 }),
      },
    ];
    const outputs: string[][] = [];
    for (const target of targets) {
      {
        await using store = await target.open();
        await seed(store);
      }
      outputs.push(await sequence(target));
    }
    assert.deepEqual(outputs[1], outputs[0]);
    assert.deepEqual(outputs[2], outputs[0]);
  });
});

Deno.test("prune --vacuum is refused on PostgreSQL with a usage error; --schema needs a postgres:// --db", async () => {
  const server = await sharedPostgres();
  const vacuum = await runCli([
    "prune",
    "--keep-last",
    "1",
    "--vacuum",
    "--db",
    server.url,
  ]);
  assert.match(assertFailure(vacuum, 2), /--vacuum.*autovacuum/);
  await withTempDir(async (dir) => {
    for (
      const command of [["prune", "--keep-last", "1"], [
        "restore",
        "k",
        "i",
        "--tag",
        "t",
        "--yes",
      ]]
    ) {
      const result = await runCli([
        ...command,
        "--db",
        `${dir}/db.sqlite`,
        "--schema",
        "s",
      ]);
      assert.match(assertFailure(result, 2), /--schema goes with a postgres/);
    }
  });
});
