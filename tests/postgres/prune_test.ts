/**
 * A prune on PostgreSQL in many small batches removes exactly what its dry run counted
 * (and what one statement removes), per kind, for every scope; the batches meet no
 * resource twice and skip none.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { connectPostgres, PostgresStore } from "../../src/postgres/store.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";

const skill = (name: string) => create(SkillSchema, { name });

async function seeded(): Promise<PostgresStore> {
  const server = await sharedPostgres();
  const store = await connectPostgres(server.url, {
    schema: freshSchema(),
    poolSize: 2,
  });
  await store.transaction(async (tx) => {
    for (const kind of ["a", "b", "c"]) {
      // Ids whose code point order differs from a locale's: batches follow C order.
      for (const id of ["B", "a", "a b", "é", "z", "Z", "\u{1F600}"]) {
        await tx.saveResource(SkillSchema, kind, id, skill(id));
        for (let n = 0; n < 4; n++) {
          await tx.saveAudit(
            SkillSchema,
            kind,
            id,
            skill(`${n}`),
            n === 0 ? { tag: "first" } : {},
          );
        }
      }
    }
  });
  return store;
}

Deno.test("postgres: a prune in batches of a few snapshots removes what its dry run counted, per kind", async () => {
  const tiny = { batchRows: 3, pauseMs: 0 };
  for (
    const options of [
      { keepLast: 1 },
      { keepLast: 2, kind: "b" },
      { keepLast: 0, kind: "c", id: "é", keepTagged: false },
    ]
  ) {
    await using store = await seeded();
    const plan = await PostgresStore.prune(store, options, true);
    assert.equal(plan.dryRun, true);
    const done = await PostgresStore.prune(store, options, false, tiny);
    assert.deepEqual({ ...done, dryRun: true }, plan);
    assert.equal((await PostgresStore.prune(store, options, true)).removed, 0);
  }
  await using store = await seeded();
  const done = await PostgresStore.prune(store, { keepLast: 1 }, false, tiny);
  assert.deepEqual(done.kinds, {
    a: { audit: 14, orphans: 0 },
    b: { audit: 14, orphans: 0 },
    c: { audit: 14, orphans: 0 },
  });
  for (const kind of ["a", "b", "c"]) {
    const left = await store.listAuditHistory(SkillSchema, kind, "\u{1F600}");
    assert.deepEqual(left.map((e) => [e.message.name, e.tag]), [
      ["3", undefined],
      ["0", "first"],
    ]);
  }
});
