/**
 * PostgreSQL under stress, with real processes and a real server: concurrent
 * conditional increments from three processes, the server SIGKILLed during a bulk
 * transaction, and a client SIGKILLed inside one.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { connectStore, type ResourceChange, StoreError } from "../../mod.ts";
import {
  LimitsSchema,
  SkillSchema,
} from "../fixtures/gen/example/v1/example_pb.ts";
import {
  freshSchema,
  sharedPostgres,
  startPostgres,
} from "../helpers/postgres.ts";
import { LONG } from "../helpers/reliability_common.ts";

const WORKER = new URL("../helpers/pg_worker.ts", import.meta.url).pathname;

/** A worker process whose stdout lines can be awaited. */
function spawnWorker(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { text: string; resolve: () => void }[] = [];
  const reading = (async () => {
    let buffer = "";
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        for (const w of waiters.filter((w) => line.startsWith(w.text))) {
          w.resolve();
        }
      }
    }
  })();
  const stderr = new Response(child.stderr).text();
  return {
    child,
    lines,
    until(text: string): Promise<void> {
      if (lines.some((l) => l.startsWith(text))) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ text, resolve }));
    },
    async finish() {
      const status = await child.status;
      await reading;
      return { status, stderr: await stderr };
    },
  };
}

// 3 × 500 (issue 12's proof) in the long mode; 3 × 100 in CI, where the contention is
// the same and the run a fifth of the time.
const INCREMENTS = LONG ? 500 : 100;

Deno.test(
  `postgres: 3 processes × ${INCREMENTS} conditional increments of one counter end at exactly ${
    3 * INCREMENTS
  }`,
  async () => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    const dir = await Deno.makeTempDir();
    try {
      await using store = await connectStore(server.url, { schema });
      await store.saveResource(
        LimitsSchema,
        "counter",
        "c",
        create(LimitsSchema),
      );
      const go = `${dir}/go`;
      const workers = Array.from(
        { length: 3 },
        () =>
          spawnWorker([
            "increment",
            server.url,
            schema,
            String(INCREMENTS),
            go,
          ]),
      );
      await Promise.all(workers.map((w) => w.until("ready")));
      await Deno.writeTextFile(go, "");
      const results = await Promise.all(workers.map((w) => w.finish()));
      for (const r of results) assert.ok(r.status.success, r.stderr);
      const entry = await store.getResourceEntry(LimitsSchema, "counter", "c");
      assert.equal(entry.message.maxTokens, 3 * INCREMENTS);
      assert.equal(entry.revision, 1 + 3 * INCREMENTS);
      assert.equal((await store.changesSince(0)).length, 1 + 3 * INCREMENTS);
      const conflicts = workers.map((w) =>
        JSON.parse(w.lines.find((l) => l.startsWith("result "))!.slice(7))
          .conflicts
      );
      console.log(`conflicts retried: ${conflicts.join(", ")}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("postgres: a client SIGKILLed inside a transaction leaves nothing half-written", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  await using store = await connectStore(server.url, { schema });
  await store.saveResource(SkillSchema, "kept", "k", create(SkillSchema));
  const worker = spawnWorker(["bulk", server.url, schema]);
  await worker.until("inside");
  worker.child.kill("SIGKILL");
  await worker.finish();
  // The server rolls the dead client's transaction back and frees the counter row.
  assert.deepEqual(await store.listResources(SkillSchema, "bulk"), []);
  assert.equal(await store.currentRevision(), 1);
  const next = await store.saveResource(
    SkillSchema,
    "kept",
    "k2",
    create(SkillSchema),
  );
  assert.equal(next.revision, 2);
  assert.deepEqual((await store.changesSince(0)).map((c) => c.id), ["k", "k2"]);
});

Deno.test("postgres: the server SIGKILLed during a bulk transaction: committed data intact, the transaction absent, a clear error, then work again; a watcher misses nothing", async () => {
  const server = await startPostgres();
  try {
    await using store = await connectStore(server.url, { schema: "app" });
    for (let i = 0; i < 50; i++) {
      await store.saveResource(
        SkillSchema,
        "committed",
        `c${i}`,
        create(SkillSchema, { name: `c${i}` }),
      );
    }
    const seen: ResourceChange[] = [];
    const controller = new AbortController();
    const watching = (async () => {
      for await (
        const change of store.watch({
          afterRevision: 0,
          signal: controller.signal,
        })
      ) {
        seen.push(change);
        if (change.id === "after") controller.abort();
      }
    })();
    let inside!: () => void;
    const started = new Promise<void>((resolve) => inside = resolve);
    const bulk = store.transaction(async (tx) => {
      for (let i = 0;; i++) {
        await tx.saveResource(
          SkillSchema,
          "bulk",
          `b${i}`,
          create(SkillSchema, { name: `b${i}` }),
        );
        if (i === 200) inside();
      }
    });
    const outcome = bulk.then(() => "committed", (error) => error);
    await started;
    await server.kill();
    const error = await outcome;
    assert.ok(error instanceof StoreError, String(error));
    assert.match(error.message, /connection to the server was lost/);
    // While it is down: a clear error, not a hang.
    await assert.rejects(
      store.getResource(SkillSchema, "committed", "c0"),
      (error) => error instanceof StoreError,
    );
    await server.restart();
    // The pool reconnects by itself.
    let committed: unknown[] = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        committed = await store.listResources(SkillSchema, "committed");
        break;
      } catch (error) {
        assert.ok(error instanceof StoreError);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(committed.length, 50);
    assert.deepEqual(await store.listResources(SkillSchema, "bulk"), []);
    assert.equal(await store.currentRevision(), 50);
    const after = await store.saveResource(
      SkillSchema,
      "committed",
      "after",
      create(SkillSchema),
    );
    assert.equal(after.revision, 51);
    await watching;
    assert.deepEqual(
      seen.map((c) => c.revision),
      Array.from({ length: 51 }, (_, i) => i + 1),
    );
  } finally {
    server.stop();
  }
});
