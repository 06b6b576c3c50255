/**
 * The CLI's own words for command-line mistakes (never node:util's raw parseArgs text),
 * the real command named in hints and messages, and times labelled UTC. Run in process
 * through `main(args, output)`.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { assertFailure, ROOT, runCli } from "../helpers/cli.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

Deno.test("unknown options and bad values get the tool's own message with a suggestion, exit 2", async () => {
  const hint = (command: string) =>
    `(see deno run -A cli.ts ${command} --help)`;
  const cases: [string[], string][] = [
    [
      ["migrate", "--sttaus"],
      `unknown option --sttaus; did you mean --status? ${hint("migrate")}`,
    ],
    [
      ["migrate", "--dry"],
      `unknown option --dry; did you mean --dry-run? ${hint("migrate")}`,
    ],
    [
      ["inspect", "--chekc"],
      `unknown option --chekc; did you mean --check? ${hint("inspect")}`,
    ],
    [
      ["audit-history", "k", "i", "--limt", "3"],
      `unknown option --limt; did you mean --limit? ${hint("audit-history")}`,
    ],
    [
      ["inspect", "--frobnicate"],
      `unknown option --frobnicate ${hint("inspect")}`,
    ],
    [["inspect", "-x"], `unknown option -x ${hint("inspect")}`],
    [["migrate", "--db"], `--db needs a value ${hint("migrate")}`],
    [
      ["inspect", "--db", "--json"],
      `--db needs a value, got option --json ${hint("inspect")}`,
    ],
    [
      ["prune", "--keep-last", "-1"],
      `--keep-last got -1, which starts with "-"; if you mean it, write --keep-last=-1 ${
        hint("prune")
      }`,
    ],
    [
      ["migrate", "--status=yes"],
      `--status takes no value, got "yes" ${hint("migrate")}`,
    ],
    [
      ["audit-history", "k", "i", "--limit", "ten"],
      `--limit takes a whole number, got "ten" ${hint("audit-history")}`,
    ],
    [
      ["inspct"],
      'unknown command "inspct"; did you mean inspect? (see deno run -A cli.ts --help)',
    ],
  ];
  for (const [args, message] of cases) {
    const line = assertFailure(await runCli(args), 2);
    assert.equal(line, `protostore: ${message}`, args.join(" "));
    // node:util's wording, e.g. "Unknown option '--x'. To specify a positional…".
    assert.doesNotMatch(
      line,
      /Unknown option '|To specify a positional|argument missing/,
    );
  }
});

Deno.test("messages name the CLI as the README runs it, never a `protostore` binary", async () => {
  // A command that does not exist: `protostore inspect`, `protostore migrate`, …
  const binary = /`protostore (migrate|inspect|audit-history|import-badger)\b/;
  const offenders: string[] = [];
  for (const dir of ["src", "README.md", "cli.ts", "mod.ts"]) {
    for (const file of await sourceFiles(`${ROOT}${dir}`)) {
      const text = await Deno.readTextFile(file);
      if (binary.test(text)) offenders.push(file.slice(ROOT.length));
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("every time in the text output is labelled UTC", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    {
      using store = openStore(path);
      const lint = create(SkillSchema, { name: "lint" });
      store.saveResource(SkillSchema, "skill", "lint", lint);
      store.saveAudit(SkillSchema, "skill", "lint", lint, { tag: "v1" });
    }
    const time = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}(?! UTC)/;
    for (
      const args of [
        ["migrate", "--status"],
        ["inspect"],
        ["inspect", "skill", "lint"],
        ["audit-history", "skill", "lint"],
        ["audit-history", "skill", "lint", "--show", "1"],
      ]
    ) {
      const { code, stdout } = await runCli([...args, "--db", path]);
      assert.equal(code, 0, args.join(" "));
      assert.match(stdout, / UTC/, `${args.join(" ")} shows a time`);
      assert.doesNotMatch(stdout, time, `${args.join(" ")}:\n${stdout}`);
    }
  });
});

async function sourceFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path);
  if (info.isFile) return [path];
  const files: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    files.push(...await sourceFiles(`${path}/${entry.name}`));
  }
  return files;
}
