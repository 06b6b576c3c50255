/**
 * A writer process for `bench/prune_compare.ts`: saves a resource and a snapshot of it
 * (two writes, default busy timeout) in a loop until `<stopFile>` exists, then prints one
 * JSON line: writes done, latencies, and the errors it met ("database is locked").
 *
 * ```
 * deno run -A bench/prune_writer.ts <db> <readyFile> <stopFile>
 * ```
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { openStore } from "../src/store/store.ts";
import { SkillSchema } from "../tests/fixtures/gen/example/v1/example_pb.ts";

const [db, readyFile, stopFile] = Deno.args;
const exists = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};
using store = openStore(db);
const latencies: number[] = [];
const errors: string[] = [];
Deno.writeTextFileSync(readyFile, "");
for (let i = 0; !exists(stopFile); i++) {
  const msg = create(SkillSchema, { name: `writer-${i}` });
  const start = performance.now();
  try {
    store.saveResource(SkillSchema, "writer", `w${i % 100}`, msg);
    store.saveAudit(SkillSchema, "writer", `w${i % 100}`, msg);
  } catch (error) {
    errors.push(error instanceof Error ? error.message : String(error));
  }
  latencies.push(performance.now() - start);
  // A daemon's pace, not a busy loop: one write pair every ~5 ms.
  await new Promise((r) => setTimeout(r, 5));
}
latencies.sort((a, b) => a - b);
const at = (q: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ??
    0;
console.log(JSON.stringify({
  writes: latencies.length,
  p50Ms: at(0.5),
  p99Ms: at(0.99),
  maxMs: latencies.at(-1) ?? 0,
  errors: errors.length,
  firstError: errors[0] ?? null,
}));
