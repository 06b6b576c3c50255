/**
 * A child process of the PostgreSQL tests: `deno run -A pg_worker.ts <mode> URL SCHEMA ...`.
 *
 * Modes:
 * - `increment URL SCHEMA N GOFILE`: waits for GOFILE, then adds 1 to `counter/c`
 *   (`Limits.maxTokens`) N times with read, `ifRevision` save and a retry on
 *   `ConflictError`. Prints `result {"conflicts": C}`.
 * - `bulk URL SCHEMA`: one transaction that saves `bulk/N` resources without end;
 *   prints `inside` after the first 100 (then the parent kills it).
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { ConflictError, connectStore } from "../../mod.ts";
import {
  LimitsSchema,
  SkillSchema,
} from "../fixtures/gen/example/v1/example_pb.ts";
import { exists } from "./fs.ts";

const [mode, url, schema, ...args] = Deno.args;
await using store = await connectStore(url, { schema, poolSize: 1 });

if (mode === "increment") {
  const [n, goFile] = args;
  console.log("ready");
  while (!exists(goFile)) await new Promise((r) => setTimeout(r, 2));
  let conflicts = 0;
  for (let i = 0; i < Number(n); i++) {
    for (;;) {
      const entry = await store.getResourceEntry(LimitsSchema, "counter", "c");
      const next = create(LimitsSchema, {
        maxTokens: entry.message.maxTokens + 1,
      });
      try {
        await store.saveResource(LimitsSchema, "counter", "c", next, {
          ifRevision: entry.revision,
        });
        break;
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        conflicts++;
      }
    }
  }
  console.log(`result ${JSON.stringify({ conflicts })}`);
} else if (mode === "bulk") {
  await store.transaction(async (tx) => {
    for (let i = 0;; i++) {
      await tx.saveResource(
        SkillSchema,
        "bulk",
        `b${i}`,
        create(SkillSchema, { name: `b${i}` }),
      );
      if (i === 100) console.log("inside");
    }
  });
} else {
  throw new Error(`unknown mode ${mode}`);
}
