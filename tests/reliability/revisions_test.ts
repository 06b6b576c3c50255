/**
 * Revisions across processes: conditional increments that lose nothing, a watcher in
 * another process (the CLI) that sees every change once and resumes after SIGKILL, and
 * writers killed with SIGKILL that never leave a revision used twice or a write and its
 * change apart. `PROTOSTORE_LONG=1` runs more rounds.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import { openStore } from "../../mod.ts";
import { LimitsSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import {
  cases,
  Child,
  type ChildResult,
  sleep,
} from "../helpers/reliability_common.ts";
import { checkRevisions } from "../helpers/revisions.ts";
import { Rng } from "../helpers/prng.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const WORKER = "revisions_worker.ts";
const WRITERS = 4;

function resultOf(result: ChildResult): Record<string, number> {
  const line = result.lines.find((l) => l.startsWith("result "));
  assert.ok(line, `child printed no result (${result.code}): ${result.stderr}`);
  return JSON.parse(line.slice("result ".length));
}

/** Starts the children, waits for their `ready`, then creates `goFile`. */
async function startTogether(
  goFile: string,
  argsList: string[][],
): Promise<Child[]> {
  const children = argsList.map((args) => new Child(WORKER, args));
  for (const child of children) {
    if (await child.waitFor((l) => l.startsWith("ready")) === undefined) {
      throw new Error(
        `child never got ready: ${(await child.finish()).stderr}`,
      );
    }
  }
  Deno.writeTextFileSync(goFile, "");
  return children;
}

/** The CLI's `watch --json` in its own process. */
function startWatcher(path: string, after: number): Child {
  return new Child(`../../cli.ts`, [
    "watch",
    "--db",
    path,
    "--after",
    String(after),
    "--json",
  ]);
}

/** Every change of the file's log, as the watcher prints it. */
function logLines(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare(
      "SELECT revision, kind, id, deleted FROM resource_changes ORDER BY revision, kind, id",
    ).all() as {
      revision: number;
      kind: string;
      id: string;
      deleted: number;
    }[])
      .map((c) =>
        JSON.stringify({
          revision: c.revision,
          type: c.deleted ? "delete" : "put",
          kind: c.kind,
          id: c.id,
        })
      );
  } finally {
    db.close();
  }
}

function revisionOf(line: string): number {
  return JSON.parse(line).revision;
}

Deno.test("4 processes × 500 read-ifRevision-retry increments of one counter end at exactly 2,000", async () => {
  const increments = 500;
  for (let round = 0; round < cases(1, 3); round++) {
    await withTempDir(async (dir) => {
      const path = `${dir}/counter.sqlite`;
      {
        using store = openStore(path);
        store.saveResource(LimitsSchema, "counter", "c", create(LimitsSchema));
      }
      const go = `${dir}/go`;
      const children = await startTogether(
        go,
        Array.from({ length: WRITERS }, () => [
          "increment",
          path,
          String(increments),
          go,
          "conditional",
        ]),
      );
      const results = await Promise.all(children.map((c) => c.finish()));
      for (const r of results) assert.ok(r.success, r.stderr);
      const conflicts = results.map((r) => resultOf(r).conflicts);
      using store = openStore(path);
      const entry = store.getResourceEntry(LimitsSchema, "counter", "c");
      assert.equal(entry.message.maxTokens, WRITERS * increments);
      // One revision per successful increment, after the creating one.
      assert.equal(entry.revision, 1 + WRITERS * increments);
      assert.equal(store.changesSince(0).length, 1 + WRITERS * increments);
      console.log(
        `conflicts retried: ${conflicts.join(", ")} (total ${
          conflicts.reduce((a, b) => a + b, 0)
        })`,
      );
    });
  }
});

Deno.test("a watcher in another process sees every change once, in order, while 4 writers run; SIGKILLed and restarted from its last printed revision it misses nothing", async () => {
  // Enough work that the writers are still running when the watcher is killed.
  const transactions = cases(500, 2000);
  const rng = new Rng(4242);
  await withTempDir(async (dir) => {
    const path = `${dir}/watched.sqlite`;
    openStore(path).close();
    const printed: string[] = [];
    let watcher = startWatcher(path, 0);
    // The CLI opens the file and reads the log before waiting; give it a moment.
    await sleep(300);
    const go = `${dir}/go`;
    const writers = await startTogether(
      go,
      Array.from(
        { length: WRITERS },
        (_, p) => ["writes", path, String(p), String(transactions), go],
      ),
    );
    const writing = Promise.all(writers.map((w) => w.finish()));
    let done = false;
    writing.then(() => done = true);
    // Kill and restart the watcher a few times while the writers run.
    let restarts = 0;
    while (!done && restarts < 3) {
      await sleep(20 + rng.int(100));
      if (done) break;
      watcher.kill();
      const killed = await watcher.finish();
      printed.push(...killed.lines);
      const last = printed.length ? revisionOf(printed.at(-1)!) : 0;
      watcher = startWatcher(path, last);
      restarts++;
    }
    for (const r of await writing) assert.ok(r.success, r.stderr);
    const truth = logLines(path);
    const current = revisionOf(truth.at(-1)!);
    const lastLine = await watcher.waitFor((l) => revisionOf(l) === current);
    assert.ok(lastLine, "the watcher never printed the last revision");
    // The last revision may hold several changes, printed in one write: let it land.
    await sleep(100);
    watcher.process.kill("SIGINT");
    const final = await watcher.finish();
    assert.equal(
      final.code,
      0,
      `Ctrl-C ends the watch cleanly: ${final.stderr}`,
    );
    printed.push(...final.lines);
    assert.ok(restarts > 0, "the watcher was never killed while writers ran");
    assert.equal(printed.length, truth.length);
    assert.deepEqual(printed, truth);
    console.log(
      `${truth.length} changes at ${current} revisions, watcher killed ${restarts} time(s)`,
    );
  });
});

Deno.test("SIGKILL during writes never leaves a revision used twice, a change without its write or a write without its change", async () => {
  // More than a run gets through before it is killed.
  const transactions = 1_000_000;
  const kills = cases(4, 30);
  const rng = new Rng(777);
  await withTempDir(async (dir) => {
    const path = `${dir}/killed.sqlite`;
    openStore(path).close();
    // writer -> (transaction -> revision) as acknowledged on stdout.
    const acknowledged = new Map<string, number>();
    const record = (p: number, lines: string[]) => {
      for (const line of lines) {
        const [word, k, revision] = line.split(" ");
        if (word === "committed") {
          acknowledged.set(`${p}-${k}`, Number(revision));
        }
      }
    };
    let killed = 0;
    for (let kill = 0; kill < kills; kill++) {
      const writers = Array.from(
        { length: 2 },
        (_, p) =>
          new Child(WORKER, [
            "writes",
            path,
            String(p),
            String(transactions),
            "-",
          ]),
      );
      // Kill both at a random moment once they are writing.
      for (const w of writers) {
        await w.waitFor((l) => l.startsWith("committed") || l === "done");
      }
      await sleep(rng.int(300));
      for (const w of writers) w.kill();
      const results = await Promise.all(writers.map((w) => w.finish()));
      results.forEach((r, p) => record(p, r.lines));
      if (results.some((r) => r.signal === "SIGKILL")) killed++;
      check(path, acknowledged, `after kill ${kill}`);
    }
    // Go on after the kills: revisions keep going up from where the killed runs stopped.
    const before = checkRevisions(path).current;
    const results = await Promise.all(
      [0, 1].map((p) => {
        const next = Math.max(
          -1,
          ...[...acknowledged.keys()].filter((m) => m.startsWith(`${p}-`))
            .map((m) => Number(m.split("-")[1])),
        );
        return new Child(WORKER, [
          "writes",
          path,
          String(p),
          String(next + 1 + 20),
          "-",
        ]).finish();
      }),
    );
    results.forEach((r, p) => {
      assert.ok(r.success, r.stderr);
      record(p, r.lines);
    });
    const state = check(path, acknowledged, "after completion");
    assert.ok(state.current > before);
    assert.ok(killed > 0, "no writer was killed while writing");
  });
});

/**
 * The invariants after a crash: those of {@linkcode checkRevisions}; every revision in
 * the log is one transaction (exactly one marker); every acknowledged commit is there,
 * at the revision it reported.
 */
function check(
  path: string,
  acknowledged: Map<string, number>,
  context: string,
) {
  const state = checkRevisions(path);
  const markers = new Map<number, string[]>();
  for (const c of state.changes) {
    if (!markers.has(c.revision)) markers.set(c.revision, []);
    if (c.kind === "marker") markers.get(c.revision)!.push(c.id);
  }
  for (const [revision, ids] of markers) {
    assert.equal(
      ids.length,
      1,
      `${context}: revision ${revision} holds the markers ${ids.join(", ")}`,
    );
  }
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const create = db.prepare(
      "SELECT create_revision FROM resources WHERE kind = 'marker' AND id = ?",
    );
    for (const [marker, revision] of acknowledged) {
      const row = create.get(marker) as { create_revision: number } | undefined;
      assert.equal(
        row?.create_revision,
        revision,
        `${context}: marker ${marker}`,
      );
    }
  } finally {
    db.close();
  }
  return state;
}
