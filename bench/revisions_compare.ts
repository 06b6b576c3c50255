/**
 * What revisions cost (issue 11), side by side in one process, interleaved rounds,
 * medians of per-round ratios:
 * - the Store against the Store before revisions (`bench/baseline/`, on a database
 *   migrated to the version before 0005, same rows): `saveResource` autocommit and in
 *   a transaction, `saveAudit` autocommit — target ≤ 1.15x;
 * - a conditional write (`ifRevision`) against an unconditional one — target ±5%;
 * - keyset paging: page 10,000 against page 1 of a kind of 1,000,000 resources (100 per
 *   page) — target ≤ 1.5x; OFFSET for contrast;
 * - watch: latency from commit (in another process) to delivery, p50 ≤ 50 ms and
 *   p99 ≤ 250 ms; CPU of an idle `cli.ts watch` process, < 1%.
 *
 *     deno run -A bench/revisions_compare.ts [--quick] [--json] [--only paging,watch]
 *
 * (The writes always run; `--only writes` skips paging and watch.)
 *
 * `bench/compare.ts` runs the same measurements as its `revisions` section.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { openConnection } from "../src/sqlite/connection.ts";
import { openStore, Store } from "../src/store/store.ts";
import { encodePageToken } from "../src/store/paging.ts";
import { MIGRATIONS } from "../src/migrate/files.ts";
import { Store as StoreBefore } from "./baseline/store_before_revisions.ts";
import { toBinary } from "@bufbuild/protobuf";
import {
  buildStoreDb,
  KIND,
  makeSkills,
  resourceId,
  SkillSchema,
  tempDir,
} from "./_data.ts";
import { prng } from "../tests/helpers/prng.ts";

/** What {@linkcode measureRevisions} reports. */
export interface RevisionsReport {
  /** Revisions' cost on writes: after/before per operation. */
  writes: {
    operation: string;
    beforeUs: number;
    afterUs: number;
    ratio: number;
    target: number;
    met: boolean;
  }[];
  /** A conditional save against an unconditional one, same store. */
  conditional: {
    operation: string;
    unconditionalUs: number;
    conditionalUs: number;
    ratio: number;
    met: boolean;
  }[];
  /** Keyset paging; `null` when not run. */
  paging: null | {
    resources: number;
    pageSize: number;
    page: number;
    firstPageUs: number;
    lastPageUs: number;
    ratio: number;
    offsetLastPageUs: number;
    met: boolean;
  };
  /** Watch latency (another process commits) and idle CPU; `null` when not run. */
  watch: null | {
    commits: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    idleCpuPct: number;
    idleSeconds: number;
    met: boolean;
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Runs each side once per round, rotating the order; milliseconds of CPU time (user +
 * system) per round. CPU time, not wall time: the machine is shared, and a side that
 * was preempted would be charged for another process's work. With
 * `synchronous=NORMAL` in WAL a commit does not wait for the disk, so CPU time is the
 * whole cost.
 */
function rounds<K extends string>(
  sides: Record<K, () => void>,
  count: number,
  warmup = 2,
): Record<K, number[]> {
  const names = Object.keys(sides) as K[];
  const out = Object.fromEntries(names.map((n) => [n, [] as number[]]));
  for (let round = 0; round < warmup + count; round++) {
    for (let s = 0; s < names.length; s++) {
      const name = names[(round + s) % names.length];
      const start = process.cpuUsage();
      sides[name]();
      const used = process.cpuUsage(start);
      if (round >= warmup) out[name].push((used.user + used.system) / 1000);
    }
  }
  return out as Record<K, number[]>;
}

/** The median over rounds of a / b, paired by round. */
function pairedRatio(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]));
}

/**
 * Measures everything in {@linkcode RevisionsReport} in temporary files under `dir`.
 */
export async function measureRevisions(
  dir: string,
  options: {
    quick: boolean;
    log: (line: string) => void;
    /** Parts to run besides the writes (default both): "paging", "watch". */
    only?: string[];
  },
): Promise<RevisionsReport> {
  const { quick, log } = options;
  const N = quick ? 2_000 : 10_000;
  const B = quick ? 200 : 400;
  const ROUNDS = quick ? 15 : 41;
  const beforeVersion = Math.max(
    ...MIGRATIONS.filter((m) => m.name < "0005").map((m) => m.version),
  );

  log(
    `revisions: ${N} resources × 2 files (schema ${beforeVersion} and latest) …`,
  );
  const beforePath = `${dir}/before.sqlite`;
  const afterPath = `${dir}/after.sqlite`;
  buildStoreDb(beforePath, {
    resources: N,
    snapshotsPerResource: 2,
    schemaVersion: beforeVersion,
  });
  buildStoreDb(afterPath, { resources: N, snapshotsPerResource: 2 });
  const beforeDb = openConnection(beforePath);
  using before = new StoreBefore(beforePath, beforeDb, false);
  using after = openStore(afterPath);
  const messages = makeSkills(N, 42);
  const ids = Array.from({ length: N }, (_, i) => resourceId(i));
  const rng = prng(9);
  const order = Array.from({ length: N }, () => Math.floor(rng() * N));
  let cursor = 0;
  const batch = (fn: (i: number, k: number) => void) => () => {
    for (let k = 0; k < B; k++) fn(order[(cursor + k) % N], k);
  };
  const advance = () => cursor = (cursor + B) % N;

  const writes: RevisionsReport["writes"] = [];
  const compare = (
    operation: string,
    sides: { before: () => void; after: () => void },
  ) => {
    log(`  ${operation}`);
    const ms = rounds({
      before: () => sides.before(),
      after: () => {
        sides.after();
        advance();
      },
    }, ROUNDS);
    const ratio = pairedRatio(ms.after, ms.before);
    writes.push({
      operation,
      beforeUs: median(ms.before) * 1000 / B,
      afterUs: median(ms.after) * 1000 / B,
      ratio,
      target: 1.15,
      met: ratio <= 1.15,
    });
  };
  const save = (store: Store | StoreBefore) =>
    batch((i) => {
      store.saveResource(SkillSchema, KIND, ids[i], messages[i]);
    });
  compare("saveResource (autocommit)", {
    before: save(before),
    after: save(after),
  });
  compare("saveResource (in transaction)", {
    before: () => before.transaction(save(before)),
    after: () => after.transaction(save(after)),
  });
  const audit = (store: Store | StoreBefore) =>
    batch((i, k) => {
      store.saveAudit(SkillSchema, KIND, ids[i], messages[i], {
        versionHash: `bench-${k}`,
        tag: "bench",
      });
    });
  compare("saveAudit (autocommit)", {
    before: audit(before),
    after: audit(after),
  });

  // The floor in SQLite itself: one upsert committed alone, against the same upsert and
  // one change-log row committed together (raw statements, same files). A second
  // table is a second B-tree page the commit writes to the WAL.
  const rawBefore = beforeDb.prepare(
    `INSERT INTO resources (kind, id, data, updated_at, schema_id) VALUES (?, ?, ?, ?, NULL)
     ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
  );
  const afterDb = Store.connectionOf(after);
  const rawAfter = afterDb.prepare(
    `INSERT INTO resources (kind, id, data, updated_at, schema_id, revision, create_revision)
     VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?5)
     ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data,
       updated_at = excluded.updated_at, revision = excluded.revision`,
  );
  const rawChange = afterDb.prepare(
    "INSERT INTO resource_changes (revision, kind, id, deleted) VALUES (?, ?, ?, 0)",
  );
  const encoded = messages.map((m) => toBinary(SkillSchema, m));
  let clock = Date.now();
  compare("raw SQL: upsert alone vs upsert + change row (autocommit)", {
    before: batch((i) => {
      rawBefore.run(KIND, ids[i], encoded[i], String(clock++));
    }),
    after: batch((i) => {
      const revision = after.currentRevision() + 1;
      afterDb.exec("BEGIN IMMEDIATE");
      rawAfter.run(KIND, ids[i], encoded[i], String(clock++), revision);
      rawChange.run(revision, KIND, ids[i]);
      afterDb.exec("COMMIT");
    }),
  });

  // Conditional against unconditional on the same store: each save's revision is known
  // from the previous one (this process is the only writer).
  const revisionOf = new Map<string, number>();
  for (const id of ids) {
    revisionOf.set(id, after.getResourceEntry(SkillSchema, KIND, id).revision);
  }
  const conditional: RevisionsReport["conditional"] = [];
  const conditionalSides = (ifRevision: boolean) =>
    batch((i) => {
      const id = ids[i];
      revisionOf.set(
        id,
        after.saveResource(
          SkillSchema,
          KIND,
          id,
          messages[i],
          ifRevision ? { ifRevision: revisionOf.get(id)! } : undefined,
        ).revision,
      );
    });
  for (const inTransaction of [false, true]) {
    const operation = `saveResource ${
      inTransaction ? "(in transaction)" : "(autocommit)"
    }: ifRevision vs none`;
    log(`  ${operation}`);
    const wrap = (fn: () => void) =>
      inTransaction ? () => after.transaction(fn) : fn;
    const ms = rounds({
      unconditional: wrap(conditionalSides(false)),
      conditional: () => {
        wrap(conditionalSides(true))();
        advance();
      },
    }, ROUNDS);
    const ratio = pairedRatio(ms.conditional, ms.unconditional);
    conditional.push({
      operation,
      unconditionalUs: median(ms.unconditional) * 1000 / B,
      conditionalUs: median(ms.conditional) * 1000 / B,
      ratio,
      met: Math.abs(ratio - 1) <= 0.05,
    });
  }

  const paging = options.only?.includes("paging") === false
    ? null
    : measurePaging(dir, quick, log);
  const watch = options.only?.includes("watch") === false
    ? null
    : await measureWatch(dir, quick, log);
  return { writes, conditional, paging, watch };
}

function measurePaging(
  dir: string,
  quick: boolean,
  log: (line: string) => void,
): RevisionsReport["paging"] {
  const resources = quick ? 100_000 : 1_000_000;
  const pageSize = 100;
  const page = resources / pageSize;
  const path = `${dir}/paging.sqlite`;
  log(`paging: building ${resources} resources …`);
  buildStoreDb(path, { resources, snapshotsPerResource: 0 });
  using store = openStore(path);
  // The token of the last page: after the id that ends page `page - 1`.
  const lastToken = encodePageToken(["resources", KIND], [
    resourceId(resources - pageSize - 1),
  ]);
  const check = store.listResourceEntries(SkillSchema, KIND, {
    limit: pageSize,
    pageToken: lastToken,
  });
  if (
    check.entries.length !== pageSize || check.nextPageToken !== undefined
  ) {
    throw new Error("the last-page token does not give the last page");
  }
  const offset = Store.connectionOf(store).prepare(
    "SELECT id, data FROM resources WHERE kind = ? ORDER BY id LIMIT ? OFFSET ?",
  );
  const REPS = 50;
  const ms = rounds({
    first: () => {
      for (let r = 0; r < REPS; r++) {
        store.listResourceEntries(SkillSchema, KIND, { limit: pageSize });
      }
    },
    last: () => {
      for (let r = 0; r < REPS; r++) {
        store.listResourceEntries(SkillSchema, KIND, {
          limit: pageSize,
          pageToken: lastToken,
        });
      }
    },
  }, quick ? 15 : 31);
  const offsetMs = rounds(
    {
      offset: () => offset.all(KIND, pageSize, resources - pageSize),
    },
    5,
    1,
  );
  const ratio = pairedRatio(ms.last, ms.first);
  return {
    resources,
    pageSize,
    page,
    firstPageUs: median(ms.first) * 1000 / REPS,
    lastPageUs: median(ms.last) * 1000 / REPS,
    ratio,
    offsetLastPageUs: median(offsetMs.offset) * 1000,
    met: ratio <= 1.5,
  };
}

async function measureWatch(
  dir: string,
  quick: boolean,
  log: (line: string) => void,
): Promise<RevisionsReport["watch"]> {
  const commits = quick ? 100 : 400;
  const path = `${dir}/watch.sqlite`;
  openStore(path).close();
  log(`watch: ${commits} commits by another process …`);
  using store = openStore(path);
  const delivered = new Map<number, number>();
  const controller = new AbortController();
  const watching = (async () => {
    for await (const c of store.watch({ signal: controller.signal })) {
      delivered.set(c.revision, performance.timeOrigin + performance.now());
    }
  })();
  const root = new URL("../", import.meta.url).pathname;
  const writer = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}bench/watch_writer.ts`, path, String(commits)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const { stdout, success } = await writer;
  if (!success) throw new Error("the watch writer failed");
  await new Promise((r) => setTimeout(r, 300));
  controller.abort();
  await watching;
  const latencies: number[] = [];
  for (const line of new TextDecoder().decode(stdout).split("\n")) {
    const [revision, at] = line.split(" ").map(Number);
    if (!Number.isFinite(at)) continue;
    const seen = delivered.get(revision);
    if (seen === undefined) throw new Error(`revision ${revision} never seen`);
    latencies.push(seen - at);
  }

  // An idle watcher: the CLI in its own process, CPU from /proc after a warm-up.
  const idleSeconds = quick ? 5 : 20;
  log(`watch: idle CPU of cli.ts watch over ${idleSeconds} s …`);
  const idle = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}cli.ts`, "watch", "--db", path],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 2000));
  const ticks = () => {
    const fields = Deno.readTextFileSync(`/proc/${idle.pid}/stat`)
      .split(") ")[1].split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  };
  const t0 = ticks();
  const start = performance.now();
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const used = ticks() - t0;
  const seconds = (performance.now() - start) / 1000;
  idle.kill("SIGINT");
  await idle.status;
  const clockTicks = 100; // USER_HZ on Linux
  const idleCpuPct = (used / clockTicks) / seconds * 100;
  const p50Ms = quantile(latencies, 0.5);
  const p99Ms = quantile(latencies, 0.99);
  return {
    commits: latencies.length,
    p50Ms,
    p99Ms,
    maxMs: Math.max(...latencies),
    idleCpuPct,
    idleSeconds,
    met: p50Ms <= 50 && p99Ms <= 250 && idleCpuPct < 1,
  };
}

/** The report as Markdown tables, for BENCHMARKS.md. */
export function revisionsMarkdown(r: RevisionsReport): string {
  const f = (n: number, d = 1) => n.toFixed(d);
  const lines = [
    "| operation | before (µs) | with revisions (µs) | ratio | target |",
    "|---|---:|---:|---:|---|",
    ...r.writes.map((w) =>
      `| ${w.operation} | ${f(w.beforeUs)} | ${f(w.afterUs)} | ${
        f(w.ratio, 3)
      } | ≤ ${w.target} ${w.met ? "✓" : "✗"} |`
    ),
    "",
    "| operation | unconditional (µs) | ifRevision (µs) | ratio | target |",
    "|---|---:|---:|---:|---|",
    ...r.conditional.map((c) =>
      `| ${c.operation} | ${f(c.unconditionalUs)} | ${f(c.conditionalUs)} | ${
        f(c.ratio, 3)
      } | 1 ± 0.05 ${c.met ? "✓" : "✗"} |`
    ),
  ];
  const p = r.paging;
  if (p) {
    lines.push(
      "",
      `Paging ${p.resources} resources, ${p.pageSize} per page: page 1 ` +
        `${f(p.firstPageUs)} µs, page ${p.page} ${f(p.lastPageUs)} µs: ` +
        `${f(p.ratio, 3)}x (target ≤ 1.5x ${p.met ? "✓" : "✗"}); ` +
        `the same last page by OFFSET: ${f(p.offsetLastPageUs / 1000)} ms.`,
    );
  }
  const w = r.watch;
  if (w) {
    lines.push(
      "",
      `Watch, ${w.commits} commits by another process: p50 ${f(w.p50Ms)} ms, ` +
        `p99 ${f(w.p99Ms)} ms, max ${f(w.maxMs)} ms (targets 50 / 250 ms); ` +
        `an idle \`cli.ts watch\` used ${f(w.idleCpuPct, 2)}% of a core over ` +
        `${w.idleSeconds} s (target < 1%) ${w.met ? "✓" : "✗"}.`,
    );
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      only: { type: "string", default: "paging,watch" },
    },
  });
  using dir = tempDir();
  const report = await measureRevisions(dir.path, {
    quick: args.values.quick,
    log: (line) => console.error(line),
    only: args.values.only.split(","),
  });
  console.log(
    args.values.json
      ? JSON.stringify(report, null, 2)
      : revisionsMarkdown(report),
  );
}
