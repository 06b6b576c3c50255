import { create, fromBinary } from "@bufbuild/protobuf";
import { connectStore } from "../mod.ts";
import { SkillSchema } from "../tests/fixtures/gen/example/v1/example_pb.ts";
import { startPostgres } from "../tests/helpers/postgres.ts";
import { openPool } from "../src/postgres/connection.ts";
import { PG_SQL } from "../src/postgres/store.ts";
const PREPARED = { prepare: true } as const;
const message = create(SkillSchema, { name: "reviewer", description: "x".repeat(200), tools: ["lint","fmt","test"] });
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const server = await startPostgres();
try {
  const store = await connectStore(server.url, { schema: "bench", poolSize: 1 });
  const raw = openPool(server.url, { schema: "bench", max: 1 });
  for (let i = 0; i < 1000; i++) await store.saveResource(SkillSchema, "list", `id${String(i).padStart(4, "0")}`, message);
  const id = (i: number) => `id${String(i % 1000).padStart(4, "0")}`;
  const ops: Record<string, [(i: number) => Promise<unknown>, (i: number) => Promise<unknown>, number]> = {
    get: [(i) => store.getResource(SkillSchema, "list", id(i)), async (i) => { const rows = await raw.unsafe(PG_SQL.get, ["list", id(i)], PREPARED); return fromBinary(SkillSchema, rows[0].data as Uint8Array); }, 300],
    page: [() => store.listResourceEntries(SkillSchema, "list", { limit: 100 }), async () => { const rows = await raw.unsafe(PG_SQL.page, ["list", "", 101], PREPARED); return rows.map((r) => fromBinary(SkillSchema, r.data as Uint8Array)); }, 30],
  };
  for (const [name, [s, r, n]] of Object.entries(ops)) {
    const a: number[] = [], b: number[] = [];
    for (let round = 0; round < 31; round++) {
      const t = async (f: (i: number) => Promise<unknown>) => { const st = performance.now(); for (let i = 0; i < n; i++) await f(round * n + i); return (performance.now() - st) * 1000 / n; };
      if (round % 2) { a.push(await t(s)); b.push(await t(r)); } else { b.push(await t(r)); a.push(await t(s)); }
    }
    console.log(name, "store", median(a).toFixed(1), "raw", median(b).toFixed(1), (median(b) / median(a)).toFixed(3));
  }
  await store.close(); await raw.end();
} finally { server.stop(); }
