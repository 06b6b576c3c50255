/**
 * The README as a newcomer follows it: every command of its ` ```sh ` and ` ```console `
 * blocks runs as written, in order, in a fresh copy of the project, and CI runs the test
 * command it gives.
 */
import assert from "node:assert/strict";
import { ROOT } from "../helpers/cli.ts";
import { copyCheckout } from "../helpers/checkout.ts";
import { fencedBlocks, readmeCommands } from "../helpers/readme.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const README = Deno.readTextFileSync(`${ROOT}README.md`);
const decoder = new TextDecoder();

/** `npx -y deno@X` is how a machine without Deno gets it; here it is this Deno. */
const NPX_DENO = /^npx -y deno@\S+ /;
/** The README's test command runs the whole suite, this file included. */
const isTestCommand = (command: string) =>
  /^npx -y deno@\S+ task test\b/.test(command);

Deno.test("every README command runs as written, in order, in a fresh copy of the project", async () => {
  const commands = readmeCommands(README);
  assert(
    commands.some((c) => /^npx -y deno@\S+ task demo\b/.test(c.command)),
    "the README gives the demo command",
  );
  await withTempDir(async (dir) => {
    const project = `${dir}/protostore`;
    copyCheckout(project);
    // `deno` on PATH is the Deno running this test.
    Deno.mkdirSync(`${dir}/bin`);
    Deno.symlinkSync(Deno.execPath(), `${dir}/bin/deno`);
    const env = Deno.env.toObject();
    delete env.PROTOSTORE_DB;
    env.PATH = `${dir}/bin:${env.PATH ?? ""}`;
    env.DENO_NO_UPDATE_CHECK = "1";
    env.NO_COLOR = "1";

    let ran = 0;
    for (const { command, line } of commands) {
      if (isTestCommand(command)) continue;
      const out = await new Deno.Command("sh", {
        args: ["-c", command.replace(NPX_DENO, "deno ")],
        cwd: project,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(
        out.code,
        0,
        `README.md:${line}: \`${command}\` exited ${out.code}\n` +
          `stdout: ${decoder.decode(out.stdout)}\nstderr: ${
            decoder.decode(out.stderr)
          }`,
      );
      assert.notEqual(
        decoder.decode(out.stdout).trim(),
        "",
        `README.md:${line}: \`${command}\` printed nothing`,
      );
      ran++;
    }
    assert(ran >= 5, `only ${ran} README commands ran`);
  });
});

Deno.test("README transcripts are marked runnable: prompts only in console blocks", () => {
  const misplaced = fencedBlocks(README).filter((block) =>
    block.lang === "console"
      ? !block.lines.some((l) => l.startsWith("$ "))
      : block.lines.some((l) => l.startsWith("$ "))
  ).map((block) => `README.md:${block.line} (${block.lang || "no language"})`);
  assert.deepEqual(
    misplaced,
    [],
    "a block with `$ ` commands is ```console (so the test runs it); sh blocks hold bare commands",
  );
});

Deno.test("CI runs the README's test command", () => {
  const tests = readmeCommands(README).filter((c) => isTestCommand(c.command));
  assert.equal(tests.length, 1, "the README gives one test command");
  const command = tests[0].command.replace(/\s+#.*$/, "");

  const ci = Deno.readTextFileSync(`${ROOT}.ci/run`);
  const version = /^DENO_VERSION=(\S+)$/m.exec(ci)?.[1];
  assert(version, ".ci/run sets DENO_VERSION");
  const calls = ci.split("\n")
    .filter((l) => !l.trimStart().startsWith("#"))
    .map((l) => l.replaceAll('"', "").replaceAll("$DENO_VERSION", version));
  assert(
    calls.some((l) => l.includes(command)),
    `.ci/run does not run \`${command}\``,
  );
});
