/**
 * Crash safety: real work in a child process, killed with SIGKILL at seeded random
 * moments; after every kill the database must open, be intact, hold exactly the
 * transactions committed before the kill (never half of one, never lose one the child
 * reported committed), have a `schema_version` that matches its tables, and re-running
 * the work (in this process: only the killed runs need one) must end in the same state
 * as an uninterrupted run.
 *
 * CI runs at least 30 kills per scenario on smaller databases (kills are aimed relative
 * to the measured work time, so they still land all through the work);
 * `PROTOSTORE_LONG=1` runs 300 on the full-size ones.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { MIGRATIONS } from "../../src/migrate/files.ts";
import { create } from "@bufbuild/protobuf";
import { migrate, openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import {
  assertSameLines,
  cases,
  checkDatabase,
  Child,
  copyDatabase,
  digestLines,
  dumpDatabase,
  LONG,
  since,
  sleep,
} from "../helpers/reliability_common.ts";
import { writeSeededGoDb } from "../helpers/go_store.ts";
import { Rng } from "../helpers/prng.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import {
  batchOps,
  CRASH_SAVES,
  Model,
  runImport,
  runSaves,
} from "../helpers/reliability_workload.ts";
import { writeGeneratedDump } from "../helpers/badger_writer.ts";

const KILLS = cases(30, 300);
const LATEST = MIGRATIONS.at(-1)!.version;

function pageSize(path: string): number {
  const db = new DatabaseSync(path);
  try {
    return (db.prepare("PRAGMA page_size").get() as { page_size: number })
      .page_size;
  } finally {
    db.close();
  }
}
const WORKER = "reliability_worker.ts";

/** One run of the worker: its output, its "ready" line, and whether it was killed. */
interface Run {
  lines: string[];
  ready: string;
  /** From "ready" to exit. */
  elapsedMs: number;
  killed: boolean;
}

/**
 * Runs the worker; with `killAfter`, sends SIGKILL that many ms after its "ready" line
 * (computed from that line). A run that fails on its own fails the test.
 */
async function runWorker(
  args: string[],
  killAfter?: (ready: string) => number,
): Promise<Run> {
  const child = new Child(WORKER, args);
  const ready = await child.waitFor((l) => l.startsWith("ready"));
  if (ready === undefined) {
    const result = await child.finish();
    throw new Error(`${args.join(" ")} never got ready: ${result.stderr}`);
  }
  const start = performance.now();
  if (killAfter) {
    await sleep(killAfter(ready));
    child.kill();
  }
  const result = await child.finish();
  const elapsedMs = performance.now() - start;
  if (!result.success && !(killAfter && result.signal === "SIGKILL")) {
    throw new Error(
      `${args.join(" ")} failed on its own (${result.code}): ${result.stderr}`,
    );
  }
  return { lines: result.lines, ready, elapsedMs, killed: !result.success };
}

/**
 * Runs the worker's work in this process to completion: re-runs after a kill need no
 * process to kill, and a spawn costs more than the work itself.
 */
async function runInProcess(
  work: (print: (line: string) => void) => void | Promise<void>,
): Promise<Run> {
  const lines: string[] = [];
  let start = performance.now();
  await work((line) => {
    if (line.startsWith("ready")) start = performance.now();
    lines.push(line);
  });
  const elapsedMs = performance.now() - start;
  const ready = lines.find((l) => l.startsWith("ready"));
  if (ready === undefined) throw new Error("the work never got ready");
  return { lines, ready, elapsedMs, killed: false };
}

/**
 * How long the work takes from "ready" to exit: the median of the latest full runs.
 * Machines and their load differ, and kills must land while the work runs.
 */
class WorkTime {
  #samples: number[] = [];

  add(ms: number): void {
    this.#samples.push(ms);
    if (this.#samples.length > 7) this.#samples.shift();
  }

  get ms(): number {
    const sorted = this.#samples.toSorted((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }
}

function assertClean(path: string, context: string): number {
  const check = checkDatabase(path);
  assert.equal(check.integrity, "ok", `${context}: integrity_check`);
  assert.equal(
    check.foreignKeyViolations,
    0,
    `${context}: foreign_key_check`,
  );
  assert.deepEqual(
    check.schemaMismatch,
    [],
    `${context}: schema_version vs tables`,
  );
  return check.version;
}

function removeDatabase(path: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    try {
      Deno.removeSync(path + suffix);
    } catch { /* absent */ }
  }
}

Deno.test("SIGKILL during bulk saves and audits leaves exactly the committed transactions", async () => {
  await withTempDir(async (dir) => {
    const seed = 20260125;
    // Digest of the expected data after transactions 0..k-1, for every k.
    const model = new Model();
    const expected = [digestLines(model.lines())];
    for (let k = 0; k < CRASH_SAVES.batches; k++) {
      for (const op of batchOps(seed, k, CRASH_SAVES)) model.apply(op);
      expected.push(digestLines(model.lines()));
    }
    const time = new WorkTime();
    // The share of the work a run has left, from its "ready K" line.
    const left = (ready: string) =>
      1 - Number(ready.split(" ")[1]) / CRASH_SAVES.batches;

    const reference = `${dir}/reference.sqlite`;
    time.add((await runWorker(["saves", reference, String(seed)])).elapsedMs);
    assert.equal(
      digestLines(dumpDatabase(reference)),
      expected.at(-1),
      "an uninterrupted run writes the modelled data",
    );
    const referenceDump = dumpDatabase(reference, { auditIds: true });

    const rng = new Rng(seed);
    let kills = 0;
    let finishedFirst = 0;
    let caseNo = 0;
    const statesSeen = new Set<number>();
    const started = performance.now();
    while (kills < KILLS) {
      const path = `${dir}/case-${caseNo}.sqlite`;
      const killsInCase = 1 + rng.int(3);
      for (let i = 0; i < killsInCase && kills < KILLS; i++) {
        // A resumed run has less left to do: aim within what remains.
        let delay = 0;
        const run = await runWorker(["saves", path, String(seed)], (ready) => {
          delay = rng.next() * time.ms * left(ready) * 1.05;
          return delay;
        });
        if (!run.killed) {
          finishedFirst++;
          if (left(run.ready) > 0.2) time.add(run.elapsedMs / left(run.ready));
          break;
        }
        kills++;
        const context = `case ${caseNo} kill ${i} after ${delay.toFixed(1)} ms`;
        const committed = run.lines.filter((l) => l.startsWith("committed "))
          .map((l) => Number(l.split(" ")[1]));
        const lastAcknowledged = committed.at(-1) ??
          Number(run.ready.split(" ")[1]) - 1;
        // The worker opened (and so created) the file before "ready".
        assert.equal(assertClean(path, context), LATEST, `${context}: version`);
        const applied = expected.indexOf(digestLines(dumpDatabase(path)));
        assert.ok(
          applied >= 0,
          `${context}: the data is not the result of any prefix of transactions`,
        );
        statesSeen.add(applied);
        assert.ok(
          applied - 1 >= lastAcknowledged,
          `${context}: transaction ${lastAcknowledged} was reported committed but is lost`,
        );
        assert.ok(
          applied - 1 <= lastAcknowledged + 1,
          `${context}: ${applied} transactions applied, ${
            lastAcknowledged + 1
          } reported`,
        );
        using store = openStore(path, { migrate: false });
        store.listResources(SkillSchema, "agent");
      }
      const completion = await runInProcess((print) =>
        runSaves(path, seed, print)
      );
      if (left(completion.ready) > 0.2) {
        time.add(completion.elapsedMs / left(completion.ready));
      }
      assertClean(path, `case ${caseNo} after completion`);
      assertSameLines(
        dumpDatabase(path, { auditIds: true }),
        referenceDump,
        `case ${caseNo}: re-run vs uninterrupted run`,
      );
      removeDatabase(path);
      caseNo++;
    }
    console.log(
      `saves: ${kills} kills in ${caseNo} cases (${finishedFirst} runs finished before ` +
        `their kill), ${statesSeen.size} distinct committed states, work ~${
          Math.round(time.ms)
        } ms, ${since(started)} ms${LONG ? " (long)" : ""}`,
    );
  });
});

Deno.test("SIGKILL during migrate of a large Go v2 database leaves a whole version, never between; a re-run finishes, 16 KiB pages included", async () => {
  await withTempDir(async (dir) => {
    const seed = 77;
    const pristine = `${dir}/go-v2.sqlite`;
    writeSeededGoDb(pristine, seed, {
      resources: cases(1_500, 6_000),
      auditsPerResource: 3,
      payload: 250,
      orphanFraction: 0.05,
    });
    const before = dumpDatabase(pristine, { timestamps: true, auditIds: true });
    const beforeDigest = digestLines(before);
    const time = new WorkTime();

    const reference = `${dir}/reference.sqlite`;
    copyDatabase(pristine, reference);
    time.add((await runWorker(["migrate", reference])).elapsedMs);
    assert.equal(assertClean(reference, "reference"), LATEST);
    const after = dumpDatabase(reference, { timestamps: true, auditIds: true });
    const afterDigest = digestLines(after);
    const assertState = (path: string, context: string, version: number) => {
      const dump = dumpDatabase(path, { timestamps: true, auditIds: true });
      const digest = digestLines(dump);
      // 0004 rebuilds tables and pages but changes no row: versions 3 and 4 dump alike.
      if (version === 2 && digest !== beforeDigest) {
        assertSameLines(dump, before, `${context}: at version 2`);
      } else if (version >= 3 && version <= LATEST && digest !== afterDigest) {
        assertSameLines(dump, after, `${context}: at version ${version}`);
      } else if (version < 2 || version > LATEST) {
        assert.fail(`${context}: version ${version}`);
      }
    };

    const rng = new Rng(seed);
    let kills = 0;
    let finishedFirst = 0;
    const versions: Record<number, number> = {};
    const started = performance.now();
    for (let caseNo = 0; kills < KILLS; caseNo++) {
      const path = `${dir}/case.sqlite`;
      removeDatabase(path);
      copyDatabase(pristine, path);
      const delay = (0.1 + rng.next()) * time.ms;
      const context = `case ${caseNo} after ${delay.toFixed(1)} ms`;
      const run = await runWorker(["migrate", path], () => delay);
      if (run.killed) kills++;
      else {
        finishedFirst++;
        time.add(run.elapsedMs);
      }
      const version = assertClean(path, context);
      versions[version] = (versions[version] ?? 0) + 1;
      assertState(path, context, version);

      const rerun = await runInProcess((print) => {
        print("ready");
        migrate(path);
      });
      if (version === 2) time.add(rerun.elapsedMs);
      assert.equal(assertClean(path, `${context}, re-run`), LATEST);
      assertState(path, `${context}, re-run`, LATEST);
      assert.equal(pageSize(path), 16384, `${context}: page size after re-run`);
      using store = openStore(path, { migrate: false });
      store.listResources(SkillSchema, "agent");
    }
    console.log(
      `migrate: ${kills} kills (${finishedFirst} finished first), versions after kill ${
        JSON.stringify(versions)
      }, work ~${Math.round(time.ms)} ms, ${since(started)} ms`,
    );
  });
});

Deno.test("SIGKILL during import of a generated Badger dump leaves all of it or none", async () => {
  await withTempDir(async (dir) => {
    const seed = 4242;
    const dump = `${dir}/dump.bak`;
    const keys = cases(5_000, 25_000);
    await writeGeneratedDump(dump, {
      keys,
      seed,
      valueSize: 150,
      auditFraction: 0.2,
    });
    // A database with data of its own, some of it overwritten by the dump.
    const base = `${dir}/base.sqlite`;
    {
      using store = openStore(base);
      const rng = new Rng(seed);
      store.transaction(() => {
        for (let i = 0; i < 300; i++) {
          const kind = rng.pick(["agent", "skill", "other"]);
          const id = `own-${i}`;
          const message = create(SkillSchema, { name: id });
          store.saveResource(SkillSchema, kind, id, message);
          store.saveAudit(SkillSchema, kind, id, message, { tag: "v1" });
        }
      });
    }
    const before = dumpDatabase(base, { timestamps: true, auditIds: true });
    const beforeDigest = digestLines(before);
    const staging = `${dir}/staging`;
    Deno.mkdirSync(staging);
    const time = new WorkTime();

    const reference = `${dir}/reference.sqlite`;
    copyDatabase(base, reference);
    time.add(
      (await runWorker(["import", reference, dump, staging])).elapsedMs,
    );
    assert.equal(assertClean(reference, "reference"), LATEST);
    const after = dumpDatabase(reference, { timestamps: true, auditIds: true });
    const afterDigest = digestLines(after);
    assert.ok(
      after.length > before.length + keys * 0.8,
      "the dump was imported",
    );

    const rng = new Rng(seed);
    let kills = 0;
    let finishedFirst = 0;
    const states = { before: 0, after: 0 };
    const started = performance.now();
    for (let caseNo = 0; kills < KILLS; caseNo++) {
      const path = `${dir}/case.sqlite`;
      removeDatabase(path);
      copyDatabase(base, path);
      const delay = rng.next() * time.ms * 1.05;
      const context = `case ${caseNo} after ${delay.toFixed(1)} ms`;
      const run = await runWorker(["import", path, dump, staging], () => delay);
      if (run.killed) kills++;
      else {
        finishedFirst++;
        time.add(run.elapsedMs);
      }
      assert.equal(assertClean(path, context), LATEST);
      const state = dumpDatabase(path, { timestamps: true, auditIds: true });
      const digest = digestLines(state);
      if (digest === beforeDigest) states.before++;
      else if (digest === afterDigest) states.after++;
      else {
        assertSameLines(
          state,
          state.length < after.length ? before : after,
          `${context}: neither before nor after the import`,
        );
      }
      const rerun = await runInProcess((print) =>
        runImport(path, dump, staging, print)
      );
      if (digest === beforeDigest) time.add(rerun.elapsedMs);
      const final = dumpDatabase(path, { timestamps: true, auditIds: true });
      if (digestLines(final) !== afterDigest) {
        assertSameLines(
          final,
          after,
          `${context}: re-run vs uninterrupted run`,
        );
      }
    }
    const leftovers = [...Deno.readDirSync(staging)].length;
    console.log(
      `import: ${kills} kills (${finishedFirst} finished first), states ${
        JSON.stringify(states)
      }, staging directories left behind by killed runs: ${leftovers}, work ~${
        Math.round(time.ms)
      } ms, ${since(started)} ms`,
    );
  });
});
