/**
 * `restore` in process: shows the field-level diff, asks unless --yes (refused without a
 * terminal), restores by snapshot id, hash or tag as a new revision; usage errors exit 2,
 * an unknown snapshot exits 1.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { main } from "../../src/cli/main.ts";
import { assertFailure, cliJson, runCli } from "../helpers/cli.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

function seed(path: string): number {
  using store = openStore(path);
  store.saveResource(
    SkillSchema,
    "skill",
    "lint",
    create(SkillSchema, { name: "lint", tools: ["a"] }),
  );
  const { id } = store.saveAudit(
    SkillSchema,
    "skill",
    "lint",
    create(SkillSchema, { name: "lint", tools: ["a"] }),
    {
      tag: "v1",
      versionHash: "sha256:1",
    },
  );
  store.saveResource(
    SkillSchema,
    "skill",
    "lint",
    create(SkillSchema, {
      name: "lint",
      tools: ["a", "b"],
      description: "new",
    }),
  );
  return id;
}

Deno.test("restore --yes shows the diff and restores as a new revision; by id, hash or tag", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    const id = seed(db);
    for (
      const flag of [["--tag", "v1"], ["--hash", "sha256:1"], [
        "--snapshot",
        String(id),
      ]]
    ) {
      const out = await runCli([
        "restore",
        "skill",
        "lint",
        ...flag,
        "--yes",
        "--db",
        db,
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, new RegExp(`restore snapshot ${id} `));
      assert.match(out.stdout, /Restored: skill\/lint is at revision \d+/);
      using store = openStore(db);
      assert.deepEqual(store.getResource(SkillSchema, "skill", "lint").tools, [
        "a",
      ]);
      store.saveResource(
        SkillSchema,
        "skill",
        "lint",
        create(SkillSchema, {
          name: "lint",
          tools: ["a", "b"],
          description: "new",
        }),
      );
    }
    const json = cliJson<{ revision: number; changes: { path: string }[] }>(
      await runCli([
        "restore",
        "skill",
        "lint",
        "--tag",
        "v1",
        "--yes",
        "--json",
        "--db",
        db,
      ]),
    );
    assert.deepEqual(json.changes.map((c) => c.path).sort(), [
      "description",
      "tools[1]",
    ]);
    using store = openStore(db);
    assert.equal(
      store.getResourceEntry(SkillSchema, "skill", "lint").revision,
      json.revision,
    );
  });
});

Deno.test("restore asks on a terminal and writes nothing when declined; without a terminal it needs --yes", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    seed(db);
    assert.match(
      assertFailure(
        await runCli(["restore", "skill", "lint", "--tag", "v1", "--db", db]),
        2,
      ),
      /--yes/,
    );
    const asked: string[] = [];
    let stdout = "";
    for (const answer of [false, true]) {
      const code = await main([
        "restore",
        "skill",
        "lint",
        "--tag",
        "v1",
        "--db",
        db,
      ], {
        out: (t) => stdout += t,
        err: () => {},
        color: false,
        errIsTerminal: true,
        env: () => undefined,
        confirm: (question) => {
          asked.push(question);
          return answer;
        },
      });
      assert.equal(code, 0);
      using store = openStore(db);
      assert.deepEqual(
        store.getResource(SkillSchema, "skill", "lint").tools,
        answer ? ["a"] : ["a", "b"],
      );
    }
    assert.equal(asked.length, 2);
    assert.match(stdout, /Not restored/);
    assert.match(stdout, /\+ tools\[1\]|tools\[1\]/);
  });
});

Deno.test("restore: one of --snapshot/--hash/--tag (exit 2); an unknown snapshot or resource exits 1", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    seed(db);
    for (
      const args of [[], ["--tag", "v1", "--hash", "h"], ["--snapshot", "x"], [
        "--tag",
        "",
      ]]
    ) {
      assertFailure(
        await runCli([
          "restore",
          "skill",
          "lint",
          ...args,
          "--yes",
          "--db",
          db,
        ]),
        2,
      );
    }
    assertFailure(
      await runCli([
        "restore",
        "skill",
        "lint",
        "--tag",
        "nope",
        "--yes",
        "--db",
        db,
      ]),
      1,
    );
    assertFailure(
      await runCli([
        "restore",
        "skill",
        "gone",
        "--tag",
        "v1",
        "--yes",
        "--db",
        db,
      ]),
      1,
    );
  });
});
