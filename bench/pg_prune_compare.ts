/**
 * `pruneAudit` on PostgreSQL against a hand-written DELETE doing the same, on the same
 * snapshots (default 1,000 resources × 100 = 100,000, every 25th tagged), keeping the
 * last 10: both must leave the same rows (checked), then the time ratio and the worst
 * latency of a writer saving resources on another connection during each.
 *
 * ```
 * deno run -A bench/pg_prune_compare.ts [--resources N] [--per-resource N] [--json]
 * ```
 *
 * It starts its own server (tests/helpers/postgres.ts) and stops it at the end.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { connectStore } from "../mod.ts";
import { SkillSchema } from "../tests/fixtures/gen/example/v1/example_pb.ts";
import { startPostgres } from "../tests/helpers/postgres.ts";
import { openPool } from "../src/postgres/connection.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    resources: { type: "string", default: "1000" },
    "per-resource": { type: "string", default: "100" },
    json: { type: "boolean" },
  },
});
const RESOURCES = Number(values.resources);
const PER = Number(values["per-resource"]);
const KEEP = 10;

// The store's own selection, written by hand as one statement.
const RAW_DELETE = `DELETE FROM resource_audit WHERE id IN (
  SELECT id FROM (SELECT id, tag, row_number() OVER (
    PARTITION BY kind, resource_id ORDER BY archived_at DESC, id DESC) AS rank
    FROM resource_audit) r
  WHERE rank > ${KEEP} AND coalesce(tag, '') = '')`;

const server = await startPostgres();
try {
  const report: Record<string, unknown> = {
    snapshots: RESOURCES * PER,
    resources: RESOURCES,
    keepLast: KEEP,
  };
  const fingerprints: string[] = [];
  for (const side of ["store", "raw"] as const) {
    const schema = `bench_${side}`;
    const store = await connectStore(server.url, { schema, poolSize: 2 });
    const sql = openPool(server.url, { schema, max: 1 });
    try {
      await sql.unsafe(
        `INSERT INTO resources (kind, id, data, updated_at, schema_id, revision, create_revision)
         SELECT 'skill', 'r' || lpad(g::text, 7, '0'), '\\x0a0178'::bytea,
           '2026-01-01T00:00:00.000Z', NULL, 1, 1
         FROM generate_series(1, ${RESOURCES}) g`,
      );
      await sql.unsafe(
        `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag,
           schema_id, revision)
         SELECT 'skill', 'r' || lpad(r::text, 7, '0'), '\\x0a0178'::bytea,
           to_char(timestamp '2026-01-01' + s * interval '1 second',
             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           NULL, CASE WHEN s % 25 = 0 THEN 'v' || s END, NULL, 1
         FROM generate_series(1, ${RESOURCES}) r, generate_series(1, ${PER}) s
         ORDER BY r, s`,
      );
      await sql.unsafe(
        "UPDATE revision_state SET revision = 1 WHERE id = 1",
      );
      await sql.unsafe("VACUUM ANALYZE resource_audit");
      // A writer on its own connection, saving one resource after another.
      const writer = await connectStore(server.url, { schema, poolSize: 1 });
      let stop = false;
      const latencies: number[] = [];
      const writing = (async () => {
        let n = 0;
        while (!stop) {
          const started = performance.now();
          await writer.saveResource(
            SkillSchema,
            "other",
            `w${n++ % 100}`,
            create(SkillSchema, { name: "w" }),
          );
          latencies.push(performance.now() - started);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await new Promise((r) => setTimeout(r, 200));
      const started = performance.now();
      let removed: number;
      if (side === "store") {
        removed = await store.pruneAudit({ keepLast: KEEP });
      } else {
        removed = (await sql.unsafe(RAW_DELETE)).count;
      }
      const ms = performance.now() - started;
      stop = true;
      await writing;
      await writer.close();
      latencies.sort((a, b) => a - b);
      report[side] = {
        removed,
        ms: Math.round(ms),
        writerSaves: latencies.length,
        writerMedianMs: +latencies[Math.floor(latencies.length / 2)]
          .toFixed(1),
        writerMaxMs: +latencies[latencies.length - 1].toFixed(1),
      };
      const [left] = await sql.unsafe(
        `SELECT count(*)::int8 AS n, md5(string_agg(id::text, ',' ORDER BY id)) AS ids
         FROM resource_audit`,
      );
      fingerprints.push(`${left.n} ${left.ids}`);
    } finally {
      await sql.end();
      await store.close();
    }
  }
  if (fingerprints[0] !== fingerprints[1]) {
    throw new Error(`the two prunes left different rows: ${fingerprints}`);
  }
  const store = report.store as { ms: number };
  const raw = report.raw as { ms: number };
  report.sameRowsLeft = true;
  report.ratio = +(raw.ms / store.ms).toFixed(2);
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(
      `pruneAudit on PostgreSQL, ${
        RESOURCES * PER
      } snapshots over ${RESOURCES} ` +
        `resources, keepLast ${KEEP} (same rows left: yes)`,
    );
    for (const side of ["store", "raw"] as const) {
      const r = report[side] as Record<string, number>;
      console.log(
        `  ${side === "store" ? "pruneAudit      " : "one raw DELETE  "} ${
          String(r.ms).padStart(6)
        } ms, removed ${r.removed}; writer: ${r.writerSaves} saves, median ${r.writerMedianMs} ms, max ${r.writerMaxMs} ms`,
      );
    }
    console.log(`  speed: ${report.ratio}x of the raw DELETE`);
  }
} finally {
  await server.stop();
}
