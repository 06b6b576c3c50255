/**
 * The README's Library section, followed from a project outside this repository: its
 * `deno.json` (JSR name with `links` to a clone, or a path to the clone's `mod.ts`), the
 * test schema copied in as `gen/`, and its example saved as `main.ts`, run and checked
 * with the command and output the README gives. The example's block is `ts ignore`:
 * `deno test --doc` would check it from the repository root, where `./gen/` is not; here
 * it is run and type-checked where it belongs.
 */
import assert from "node:assert/strict";
import { ROOT } from "../helpers/cli.ts";
import { copyCheckout } from "../helpers/checkout.ts";
import { fencedBlocks } from "../helpers/readme.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const README = Deno.readTextFileSync(`${ROOT}README.md`);
const decoder = new TextDecoder();

/** The text of the README's `## Library` section. */
function librarySection(): string {
  const start = README.indexOf("\n## Library\n");
  assert(start >= 0, "README has a Library section");
  const end = README.indexOf("\n## ", start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

/** The one fenced block of `lang` in the Library section. */
function block(section: string, lang: string): string {
  const blocks = fencedBlocks(section).filter((b) => b.lang === lang);
  assert.equal(blocks.length, 1, `one \`\`\`${lang} block in Library`);
  return blocks[0].lines.join("\n") + "\n";
}

/** The first inline-code match of `pattern` (group 1) in the Library section's prose. */
function inline(section: string, pattern: RegExp): string {
  const match = pattern.exec(section);
  assert(match, `Library section mentions ${pattern}`);
  return match[1];
}

function copyDir(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const entry of Deno.readDirSync(from)) {
    if (entry.isDirectory) {
      copyDir(`${from}/${entry.name}`, `${to}/${entry.name}`);
    } else Deno.copyFileSync(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

async function run(
  argv: string[],
  cwd: string,
  tmp: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Deno.env.toObject();
  delete env.PROTOSTORE_DB;
  // The example makes its database in a temp dir: keep it inside ours.
  Object.assign(env, { TMPDIR: tmp, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" });
  const out = await new Deno.Command(Deno.execPath(), {
    args: argv,
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

Deno.test("the README's library example runs in a project outside the repository", async (t) => {
  const section = librarySection();
  const denoJson = JSON.parse(block(section, "json"));
  const example = block(section, "ts");
  const runLine = inline(section, /`(deno run [^`]*main\.ts)`/);
  const printed = inline(section, /prints `([^`]+)`/);
  const pathForm = inline(section, /`"@protostore\/store": "([^"]+)"`/);
  assert.equal(
    denoJson.imports["@protostore/store"],
    "jsr:@protostore/store@^0.1.0",
    "users get the JSR form",
  );
  assert.equal(
    denoJson.imports["@bufbuild/protobuf"],
    JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`))
      .imports["@bufbuild/protobuf"],
    "the protobuf runtime at the version protostore pins",
  );
  assert.match(example, /from "node:assert\/strict"/);

  await withTempDir(async (dir) => {
    Deno.mkdirSync(`${dir}/tmp`);
    // A clone beside the user's projects, as `links` and the path form expect.
    copyCheckout(`${dir}/protostore`);
    const project = (name: string, config: unknown) => {
      const path = `${dir}/${name}`;
      copyDir(`${ROOT}tests/fixtures/gen`, `${path}/gen`);
      Deno.writeTextFileSync(`${path}/deno.json`, JSON.stringify(config));
      Deno.writeTextFileSync(`${path}/main.ts`, example);
      return path;
    };
    const argv = runLine.split(/\s+/).slice(1);

    await t.step(
      "deno.json as written (JSR name, links to the clone)",
      async () => {
        const app = project("my-app", denoJson);
        const out = await run(argv, app, `${dir}/tmp`);
        assert.equal(out.code, 0, `\`${runLine}\` failed: ${out.stderr}`);
        assert.equal(out.stdout, `${printed}\n`);
        const check = await run(["check", "main.ts"], app, `${dir}/tmp`);
        assert.equal(check.code, 0, `deno check main.ts: ${check.stderr}`);
      },
    );

    await t.step("the path form, without links", async () => {
      const { links: _, ...rest } = denoJson;
      const app = project("my-app-path", {
        ...rest,
        imports: { ...rest.imports, "@protostore/store": pathForm },
      });
      const out = await run(argv, app, `${dir}/tmp`);
      assert.equal(out.code, 0, `\`${runLine}\` failed: ${out.stderr}`);
      assert.equal(out.stdout, `${printed}\n`);
    });
  });
});
