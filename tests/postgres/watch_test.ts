/**
 * Revisions on PostgreSQL are visibility order, and `watch` never misses a change:
 * a writer waits for the revision counter held by an open transaction, and a watcher
 * whose connections are killed re-reads from its last revision.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import postgres from "postgres";
import { connectStore, type ResourceChange } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";

const skill = (name: string) => create(SkillSchema, { name });

Deno.test("postgres: a writer takes its revision after an open transaction that took one commits, so revision order is commit order", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  await using store = await connectStore(server.url, { schema });
  const events: string[] = [];
  let finish!: () => void;
  const held = new Promise<void>((resolve) => finish = resolve);
  let inside!: () => void;
  const entered = new Promise<void>((resolve) => inside = resolve);
  const slow = store.transaction(async (tx) => {
    const saved = await tx.saveResource(
      SkillSchema,
      "skill",
      "slow",
      skill("s"),
    );
    inside();
    await held;
    events.push(`slow commits ${saved.revision}`);
    return saved.revision;
  });
  await entered;
  const fast = store.saveResource(SkillSchema, "skill", "fast", skill("f"))
    .then((saved) => events.push(`fast saved ${saved.revision}`));
  // Give the fast writer time to reach the counter; it must wait there.
  await new Promise((r) => setTimeout(r, 200));
  finish();
  await Promise.all([slow, fast]);
  assert.deepEqual(events, ["slow commits 1", "fast saved 2"]);
  assert.deepEqual((await store.changesSince(0)).map((c) => c.id), [
    "slow",
    "fast",
  ]);
});

Deno.test("postgres: watch re-reads from its last revision after its connections are killed, and misses nothing", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  await using watcher = await connectStore(server.url, { schema, poolSize: 1 });
  await using writer = await connectStore(server.url, { schema, poolSize: 1 });
  const seen: ResourceChange[] = [];
  const controller = new AbortController();
  const total = 40;
  const watching = (async () => {
    for await (
      const change of watcher.watch({
        afterRevision: 0,
        signal: controller.signal,
      })
    ) {
      seen.push(change);
      if (seen.length === total) controller.abort();
    }
  })();
  const admin = postgres(server.url, { onnotice: () => {}, max: 1 });
  let kills = 0;
  try {
    for (let i = 0; i < total; i++) {
      await writer.saveResource(SkillSchema, "skill", `s${i}`, skill(`${i}`));
      if (i % 10 === 5) {
        // Drop every connection of the watcher's store: its LISTEN (once it is back
        // after the previous kill) and its pool (last statement: the change-log read).
        for (let wait = 0; wait < 500; wait++) {
          const listening = await admin`SELECT 1 FROM pg_stat_activity
            WHERE application_name = 'protostore' AND query ILIKE 'listen%'`;
          if (listening.length > 0) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        const killed =
          await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name = 'protostore'
            AND (query ILIKE 'listen%' OR query LIKE '%cut AS%')`;
        kills += killed.length;
      }
    }
    await watching;
  } finally {
    await admin.end();
  }
  assert.ok(kills >= 3, `only ${kills} connections were killed`);
  assert.deepEqual(
    seen.map((c) => c.revision),
    Array.from({ length: total }, (_, i) => i + 1),
  );
});
