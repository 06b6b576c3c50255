/**
 * The README's main command (`npx -y deno@2.9.6 task demo`): creates or migrates the
 * database at $PROTOSTORE_DB (else ./protostore.sqlite), saves a few example resources
 * with audit history the first time, and shows the result with the CLI.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { openStore } from "../mod.ts";
import { main } from "../src/cli/main.ts";
import {
  AgentSchema,
  SkillSchema,
  Visibility,
} from "../tests/fixtures/gen/example/v1/example_pb.ts";

const path = Deno.env.get("PROTOSTORE_DB") || "./protostore.sqlite";

const section = (title: string) => console.log(`\n$ ${title}`);

section(`deno run -A cli.ts migrate --db ${path}`);
await main(["migrate", "--db", path]);

{
  using store = openStore(path);
  if (store.listResources(SkillSchema, "skill").length === 0) {
    const lint = create(SkillSchema, {
      name: "lint",
      description: "Runs the linter",
      tools: ["deno lint"],
      visibility: Visibility.PRIVATE,
      createdAt: timestampFromDate(new Date("2026-01-25T10:00:00Z")),
    });
    store.transaction(() => {
      store.saveResource(SkillSchema, "skill", "lint", lint);
      store.saveAudit(SkillSchema, "skill", "lint", lint, {
        versionHash: "sha256:5f1c9e",
        tag: "v1",
      });
      lint.tools.push("deno fmt --check");
      lint.labels["team"] = "tooling";
      store.saveResource(SkillSchema, "skill", "lint", lint);
      store.saveAudit(SkillSchema, "skill", "lint", lint, {
        versionHash: "sha256:a2b7d0",
        tag: "v2",
      });
      lint.visibility = Visibility.PUBLIC;
      store.saveResource(SkillSchema, "skill", "lint", lint);

      store.saveResource(
        SkillSchema,
        "skill",
        "review",
        create(SkillSchema, { name: "review", tools: ["git diff"] }),
      );
      store.saveResource(
        AgentSchema,
        "agent",
        "reviewer",
        create(AgentSchema, {
          name: "reviewer",
          model: "m-large",
          skills: ["lint", "review"],
          trigger: { case: "cron", value: "0 9 * * 1-5" },
          limits: { maxTokens: 4096, temperature: 0.2 },
        }),
      );
    });
    console.log(
      "\nsaved example resources: skill/lint (with 2 snapshots), skill/review, agent/reviewer",
    );
  }
}

section(`deno run -A cli.ts inspect --db ${path}`);
await main(["inspect", "--db", path]);
section(`deno run -A cli.ts inspect skill lint --db ${path}`);
await main(["inspect", "skill", "lint", "--db", path]);
section(`deno run -A cli.ts audit-history skill lint --diff --db ${path}`);
await main(["audit-history", "skill", "lint", "--diff", "--db", path]);
