/**
 * The writer process of the watch-latency benchmark (bench/revisions_compare.ts):
 *
 *     deno run -A bench/watch_writer.ts PATH COUNT
 *
 * Saves COUNT resources, one transaction each, 5-50 ms apart (random, seeded), and
 * prints `REVISION COMMIT_TIME_MS` after each commit, the time from
 * `performance.timeOrigin + performance.now()` (comparable across processes).
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { openStore } from "../src/store/store.ts";
import { SkillSchema } from "../tests/fixtures/gen/example/v1/example_pb.ts";
import { prng } from "../tests/helpers/prng.ts";

const [path, count] = Deno.args;
using store = openStore(path);
const rng = prng(31);
console.log("ready");
for (let i = 0; i < Number(count); i++) {
  await new Promise((r) => setTimeout(r, 5 + rng() * 45));
  const { revision } = store.saveResource(
    SkillSchema,
    "latency",
    `r${i % 50}`,
    create(SkillSchema, { name: `${i}` }),
  );
  console.log(`${revision} ${performance.timeOrigin + performance.now()}`);
}
