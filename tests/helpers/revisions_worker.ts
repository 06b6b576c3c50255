/**
 * A child process of the revision tests: `deno run -A revisions_worker.ts <mode> ...`.
 *
 * Modes:
 * - `increment PATH N GOFILE conditional|blind`: waits for GOFILE, then adds 1 to the
 *   counter resource (`counter/c`, `Limits.maxTokens`) N times: read, add, save —
 *   `conditional` with `ifRevision` and a retry on `ConflictError`, `blind` without.
 *   Prints `result {"conflicts": C}`.
 * - `writes PATH P N GOFILE`: waits for GOFILE (or not, when it is `-`), then makes N
 *   write transactions of writer P: saves, deletes and a marker resource
 *   `marker/P-K` per transaction, so each revision's transaction can be identified.
 *   After each commit prints `committed K REV`. Resumes after the last marker found.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { ConflictError, NotFoundError, openStore } from "../../mod.ts";
import {
  LimitsSchema,
  SkillSchema,
} from "../fixtures/gen/example/v1/example_pb.ts";
import { exists } from "./fs.ts";
import { Rng } from "./prng.ts";

const [mode, path, ...args] = Deno.args;

function waitFor(file: string): void {
  const deadline = Date.now() + 30_000;
  while (!exists(file)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  }
}

if (mode === "increment") {
  const [n, goFile, how] = args;
  using store = openStore(path, { busyTimeoutMs: 30_000 });
  console.log("ready");
  waitFor(goFile);
  let conflicts = 0;
  for (let i = 0; i < Number(n); i++) {
    for (;;) {
      const entry = store.getResourceEntry(LimitsSchema, "counter", "c");
      const next = create(LimitsSchema, {
        maxTokens: entry.message.maxTokens + 1,
      });
      if (how === "blind") {
        store.saveResource(LimitsSchema, "counter", "c", next);
        break;
      }
      try {
        store.saveResource(LimitsSchema, "counter", "c", next, {
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
} else if (mode === "writes") {
  const [p, n, goFile] = args;
  using store = openStore(path, { busyTimeoutMs: 30_000 });
  // Resume after this writer's last committed transaction.
  let k = 0;
  while (true) {
    try {
      store.getResource(SkillSchema, "marker", `${p}-${k}`);
      k++;
    } catch (error) {
      if (error instanceof NotFoundError) break;
      throw error;
    }
  }
  console.log(`ready ${k}`);
  if (goFile !== "-") waitFor(goFile);
  for (; k < Number(n); k++) {
    const rng = new Rng(Number(p) * 1_000_003 + k);
    const revision = store.transaction(() => {
      const writes = 1 + rng.int(4);
      for (let w = 0; w < writes; w++) {
        const id = `w${p}-${rng.int(20)}`;
        if (rng.chance(0.25)) store.deleteResource("item", id);
        else {
          store.saveResource(
            SkillSchema,
            "item",
            id,
            create(SkillSchema, { name: `${p}-${k}-${w}` }),
          );
        }
      }
      if (rng.chance(0.05)) store.deleteResourcesByIdPrefix("item", `w${p}-1`);
      return store.saveResource(
        SkillSchema,
        "marker",
        `${p}-${k}`,
        create(SkillSchema, { name: `${k}` }),
      ).revision;
    });
    console.log(`committed ${k} ${revision}`);
  }
  console.log("done");
} else {
  throw new Error(`unknown mode ${mode}`);
}
