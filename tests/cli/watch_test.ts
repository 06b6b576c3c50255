/**
 * `cli.ts watch` and the revision lines of `inspect`. The watch itself (another
 * process, SIGKILL, Ctrl-C) is in tests/reliability/revisions_test.ts.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { cliCommand, runCli } from "../helpers/cli.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

Deno.test("watch usage errors exit 2 with one line; a missing database exits 1", () =>
  withTempDir(async (dir) => {
    for (
      const args of [
        ["watch", "--after", "x"],
        ["watch", "--after", "-1"],
        ["watch", "--kind", ""],
        ["watch", "extra"],
        ["watch", "--bogus"],
      ]
    ) {
      const { code, stderr } = await runCli([
        ...args,
        "--db",
        `${dir}/db.sqlite`,
      ]);
      assert.equal(code, 2, args.join(" "));
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
    }
    const missing = await runCli(["watch", "--db", `${dir}/missing.sqlite`]);
    assert.equal(missing.code, 1);
  }));

Deno.test("watch --after prints the changes since then, one revision per write; Ctrl-C exits 0", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    {
      using store = openStore(path);
      store.saveResource(SkillSchema, "skill", "a", create(SkillSchema));
      store.transaction(() => {
        store.saveResource(SkillSchema, "skill", "b", create(SkillSchema));
        store.saveResource(SkillSchema, "agent", "c d", create(SkillSchema));
      });
      store.deleteResource("skill", "a");
    }
    const child = cliCommand(["watch", "--db", path, "--after", "1"]).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (text.split("\n").length < 4) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    child.kill("SIGINT");
    const status = await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel();
    assert.equal(status.code, 0);
    assert.equal(
      text,
      '2 put "agent"/"c d"\n2 put "skill"/"b"\n3 delete "skill"/"a"\n',
    );
  }));

Deno.test("inspect shows the current revision and the change log; inspect KIND ID the resource's revisions", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    {
      using store = openStore(path);
      store.saveResource(SkillSchema, "skill", "a", create(SkillSchema));
      store.saveResource(SkillSchema, "skill", "b", create(SkillSchema));
      store.saveResource(SkillSchema, "skill", "a", create(SkillSchema));
      store.compactChanges(1);
    }
    const overview = JSON.parse(
      (await runCli(["inspect", "--json", "--db", path])).stdout,
    );
    assert.deepEqual(overview.revisions, {
      revision: 3,
      compactedThrough: 1,
      changes: 2,
    });
    const text = (await runCli(["inspect", "--db", path])).stdout;
    assert.match(
      text,
      /^revision: +3; change log: 2 change\(s\) after revision 1$/m,
    );
    const resource = JSON.parse(
      (await runCli(["inspect", "skill", "a", "--json", "--db", path])).stdout,
    );
    assert.equal(resource.revision, 3);
    assert.equal(resource.createRevision, 1);
    assert.deepEqual(resource.changeRevisions, [3]);
  }));
