/**
 * `copyStore` against a raw `COPY … FROM STDIN` of the same rows (issue 12: at least 50%
 * of its rate), in one process on one server, and the round trip back to SQLite.
 *
 * - source: a migrated Go-era file (fillGoDbBulk, v2: audit rows, a tenth of them
 *   orphans) with its revisions;
 * - copy: `copyStore(file, postgres)` — read SQLite, checksum every row, COPY into a fresh
 *   schema in one transaction, set revisions and sequences, verify counts and checksums
 *   on the server, commit;
 * - raw: the same rows, already encoded in COPY text and in memory, streamed by COPY
 *   into a fresh migrated schema in one transaction (nothing read, nothing verified):
 *   the floor a COPY-based writer cannot beat;
 * - back: `copyStore(postgres, new file)` and a byte-for-byte check of every table.
 *
 *     deno run -A bench/copy_compare.ts [--resources N] [--audits N] [--rounds N] [--json]
 *     PROTOSTORE_LONG=1 deno run -A bench/copy_compare.ts   # 200,000 / 1,000,000
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { DatabaseSync } from "node:sqlite";
import { isDeepStrictEqual } from "node:util";
import { copyStore, migrate } from "../mod.ts";
import { startPostgres } from "../tests/helpers/postgres.ts";
import { fillGoDbBulk } from "../tests/helpers/go_store.ts";
import { openPool } from "../src/postgres/connection.ts";
import { preparePostgres } from "../src/postgres/migrate.ts";
import { TABLES } from "../src/copy/tables.ts";
import { copyText } from "../src/copy/postgres.ts";
import { openSqliteSource } from "../src/copy/sqlite.ts";

const LONG = (Deno.env.get("PROTOSTORE_LONG") ?? "") !== "";
const args = parseArgs({
  args: Deno.args,
  options: {
    resources: { type: "string" },
    audits: { type: "string" },
    rounds: { type: "string" },
    json: { type: "boolean" },
  },
});
const RESOURCES = Number(args.values.resources ?? (LONG ? 200_000 : 20_000));
const AUDITS = Number(args.values.audits ?? (LONG ? 1_000_000 : 100_000));
const ROUNDS = Number(args.values.rounds ?? (LONG ? 1 : 3));
const log = (text: string) => console.error(text);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const dir = await Deno.makeTempDir({ prefix: "protostore-copy-bench-" });
const server = await startPostgres();
try {
  const source = `${dir}/source.sqlite`;
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

  // The rows, encoded once in COPY's text format (for the raw COPY).
  const encoded = new Map<string, Buffer[]>();
  let rows = 0;
  {
    const reader = openSqliteSource(source);
    await reader.snapshot(async () => {
      for (const spec of TABLES) {
        const chunks: Buffer[] = [];
        for await (const batch of reader.rows(spec, 2000)) {
          chunks.push(Buffer.from(copyText(spec, batch)));
          rows += batch.length;
        }
        encoded.set(spec.name, chunks);
      }
    });
    await reader.close();
  }
  log(`${rows} rows in all`);

  let schemas = 0;
  const copyTimes: number[] = [];
  const rawTimes: number[] = [];
  const backTimes: number[] = [];
  const pool = openPool(server.url, { schema: "public", max: 1 });
  for (let round = 0; round < ROUNDS; round++) {
    // Raw: COPY the pre-encoded rows into a fresh migrated schema, one transaction.
    const raw = `raw_${++schemas}`;
    const rawPool = openPool(server.url, { schema: raw, max: 1 });
    await preparePostgres(rawPool, raw, { migrate: true, readOnly: false });
    let start = performance.now();
    await rawPool.begin(async (sql) => {
      for (const spec of TABLES) {
        const stream = await sql.unsafe(
          `COPY ${spec.name} (${spec.columns.join(", ")}) FROM STDIN`,
        ).writable() as unknown as Writable;
        for (const chunk of encoded.get(spec.name)!) {
          if (!stream.write(chunk)) await once(stream, "drain");
        }
        const finished = once(stream, "finish");
        stream.end();
        await finished;
      }
    });
    rawTimes.push(performance.now() - start);
    await rawPool.end();

    // copyStore into a fresh schema (created and migrated by the copy; timed whole).
    const target = `copy_${++schemas}`;
    start = performance.now();
    await copyStore(source, server.url, { toSchema: target });
    copyTimes.push(performance.now() - start);

    // And back to a new SQLite file.
    start = performance.now();
    await copyStore(server.url, `${dir}/back${round}.sqlite`, {
      fromSchema: target,
    });
    backTimes.push(performance.now() - start);
    log(
      `round ${round + 1}: raw COPY ${rawTimes.at(-1)!.toFixed(0)} ms, ` +
        `copy ${copyTimes.at(-1)!.toFixed(0)} ms, back ${
          backTimes.at(-1)!.toFixed(0)
        } ms`,
    );
    await pool.unsafe(`DROP SCHEMA ${raw} CASCADE`);
    await pool.unsafe(`DROP SCHEMA ${target} CASCADE`);
  }
  await pool.end();

  // The round trip is byte for byte: every row of every table, streamed side by side.
  const identical = (() => {
    const a = new DatabaseSync(source, { readOnly: true });
    const b = new DatabaseSync(`${dir}/back0.sqlite`, { readOnly: true });
    try {
      for (const spec of TABLES) {
        const sql = `SELECT * FROM ${spec.name} ORDER BY ${spec.orderBy}`;
        const left = a.prepare(sql).iterate();
        const right = b.prepare(sql).iterate();
        for (;;) {
          const x = left.next();
          const y = right.next();
          if (x.done || y.done) {
            if (x.done !== y.done) return false;
            break;
          }
          if (!isDeepStrictEqual({ ...x.value }, { ...y.value })) return false;
        }
      }
      return true;
    } finally {
      a.close();
      b.close();
    }
  })();

  const rate = (ms: number) => Math.round(rows / (ms / 1000));
  const result = {
    resources: RESOURCES,
    audits: AUDITS,
    rows,
    rounds: ROUNDS,
    rawCopyRowsPerSecond: rate(median(rawTimes)),
    copyStoreRowsPerSecond: rate(median(copyTimes)),
    ratio: Number((median(rawTimes) / median(copyTimes)).toFixed(2)),
    backToSqliteRowsPerSecond: rate(median(backTimes)),
    roundTripIdentical: identical,
    peakRssMiB: Math.round(Deno.memoryUsage().rss / 2 ** 20),
  };
  if (args.values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(
      `${rows} rows (${RESOURCES} resources, ${AUDITS} snapshots), median of ${ROUNDS}:\n` +
        `  raw COPY FROM STDIN (pre-encoded): ${result.rawCopyRowsPerSecond} rows/s\n` +
        `  copyStore SQLite -> PostgreSQL:     ${result.copyStoreRowsPerSecond} rows/s (${result.ratio}x of raw)\n` +
        `  copyStore PostgreSQL -> SQLite:     ${result.backToSqliteRowsPerSecond} rows/s\n` +
        `  round trip byte-identical: ${identical}; rss ${result.peakRssMiB} MiB`,
    );
  }
} finally {
  server.stop();
  await Deno.remove(dir, { recursive: true });
}
