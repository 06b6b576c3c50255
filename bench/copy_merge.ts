/**
 * `copyStore(…, { merge })` into a half-overlapping target, against the exact copy of
 * the same source into an empty one (issue 12: merge mode).
 *
 * - source: a migrated Go-era file (fillGoDbBulk, v2: snapshots, a tenth of them
 *   orphans);
 * - target: the same file with every second resource deleted (its snapshots cascade)
 *   and every fourth remaining one changed, so a merge inserts half the resources and
 *   their histories, finds a quarter in conflict and a quarter equal, and finds the
 *   other half of the snapshots (and every orphan) already there;
 * - timed: the exact copy into an empty schema; the merge (skip, then overwrite, each
 *   into a fresh copy of the target) into PostgreSQL and into SQLite; the same merge
 *   run again (nothing to write). Rates are source rows (schemas, resources,
 *   snapshots, orphans) per second.
 *
 *     deno run -A bench/copy_merge.ts [--resources N] [--audits N] [--json]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DatabaseSync } from "node:sqlite";
import { type CopyResult, copyStore, migrate } from "../mod.ts";
import { startPostgres } from "../tests/helpers/postgres.ts";
import { fillGoDbBulk } from "../tests/helpers/go_store.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    resources: { type: "string" },
    audits: { type: "string" },
    json: { type: "boolean" },
  },
});
const RESOURCES = Number(args.values.resources ?? 20_000);
const AUDITS = Number(args.values.audits ?? 100_000);
const log = (text: string) => console.error(text);

const dir = await Deno.makeTempDir({ prefix: "protostore-merge-bench-" });
const server = await startPostgres();
try {
  const source = `${dir}/source.sqlite`;
  const target = `${dir}/target.sqlite`;
  log(`building ${RESOURCES} resources, ${AUDITS} snapshots …`);
  {
    const db = new DatabaseSync(source);
    const data = Array.from(
      { length: 64 },
      (_, i) => new Uint8Array(120 + i * 3).map((_, j) => (i * 31 + j) & 0xff),
    );
    fillGoDbBulk(db, {
      version: 2,
      resources: RESOURCES,
      audits: AUDITS,
      data,
      baseSeconds: 1_769_335_200,
    });
    db.close();
    migrate(source);
  }
  await copyStore(source, target);
  {
    const db = new DatabaseSync(target);
    db.exec(`
      CREATE TEMP TABLE numbered AS
        SELECT kind, id, row_number() OVER (ORDER BY kind, id) AS n FROM resources;
      DELETE FROM resources WHERE (kind, id) IN
        (SELECT kind, id FROM temp.numbered WHERE n % 2 = 0);
      UPDATE resources SET data = data || x'0a00' WHERE (kind, id) IN
        (SELECT kind, id FROM temp.numbered WHERE n % 4 = 1);`);
    db.close();
  }
  const count = (path: string) => {
    const db = new DatabaseSync(path, { readOnly: true });
    const one = (table: string) =>
      (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number })
        .n;
    const tables = [
      "message_schemas",
      "resources",
      "resource_audit",
      "resource_audit_orphans",
    ];
    const result = Object.fromEntries(tables.map((t) => [t, one(t)]));
    db.close();
    return result;
  };
  const sourceCounts = count(source);
  const targetCounts = count(target);
  const rows = Object.values(sourceCounts).reduce((a, b) => a + b, 0);
  log(
    `source ${JSON.stringify(sourceCounts)}; target ${
      JSON.stringify(targetCounts)
    }`,
  );

  let schemas = 0;
  const fresh = () => `bench_merge_${++schemas}`;
  const timed = async (fn: () => Promise<CopyResult>) => {
    const started = performance.now();
    const result = await fn();
    return { seconds: (performance.now() - started) / 1000, result };
  };
  const rate = (seconds: number) => Math.round(rows / seconds);

  const exact = await timed(() =>
    copyStore(source, server.url, { toSchema: fresh() })
  );
  log(`exact copy into an empty schema: ${exact.seconds.toFixed(1)} s`);

  const runs: Record<string, unknown>[] = [];
  for (const mode of ["skip", "overwrite"] as const) {
    const schema = fresh();
    await copyStore(target, server.url, { toSchema: schema });
    const first = await timed(() =>
      copyStore(source, server.url, { toSchema: schema, merge: mode })
    );
    const again = await timed(() =>
      copyStore(source, server.url, { toSchema: schema, merge: mode })
    );
    const file = `${dir}/target-${mode}.sqlite`;
    await Deno.copyFile(target, file);
    const sqlite = await timed(() => copyStore(source, file, { merge: mode }));
    const sqliteAgain = await timed(() =>
      copyStore(source, file, { merge: mode })
    );
    const run = {
      mode,
      merge: first.result.merge,
      postgresSeconds: Number(first.seconds.toFixed(2)),
      postgresRowsPerSecond: rate(first.seconds),
      postgresVsExactCopy: Number((exact.seconds / first.seconds).toFixed(2)),
      postgresAgainSeconds: Number(again.seconds.toFixed(2)),
      againWrote: again.result.merge!.resources.inserted +
        again.result.merge!.resources.replaced +
        again.result.merge!.snapshotsAdded,
      sqliteSeconds: Number(sqlite.seconds.toFixed(2)),
      sqliteRowsPerSecond: rate(sqlite.seconds),
      sqliteAgainSeconds: Number(sqliteAgain.seconds.toFixed(2)),
    };
    log(JSON.stringify(run));
    runs.push(run);
  }
  const result = {
    resources: RESOURCES,
    audits: AUDITS,
    sourceRows: rows,
    sourceCounts,
    targetCounts,
    exactCopySeconds: Number(exact.seconds.toFixed(2)),
    exactCopyRowsPerSecond: rate(exact.seconds),
    runs,
    peakRssMiB: Math.round(Deno.memoryUsage().rss / 2 ** 20),
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  server.stop();
  await Deno.remove(dir, { recursive: true });
}
