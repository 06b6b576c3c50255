/**
 * Issue 9, items 5 and 9: space and speed of the schema layouts for 1-3 KB messages, and
 * the cost of migration 0004's time checks.
 *
 *     deno run -A bench/page_size.ts [--rows N] [--rounds N] [--json]
 *
 * Layouts (the same N messages of 1-3 KB, random sizes, inserted in random id order):
 * - `v3 4K`: migrations 0001-0003 as shipped before 0004: WITHOUT ROWID, 4 KiB pages;
 * - `v4 16K`: all migrations (what `openStore` creates now): WITHOUT ROWID, 16 KiB pages,
 *   ISO-time CHECKs;
 * - `rowid 4K`: the issue's other option: a rowid table with UNIQUE (kind, id), 4 KiB.
 * For each: file bytes after a WAL checkpoint / sum of message bytes, point reads (the
 * Store's `get` SQL, random ids), listing the kind (the Store's `list` SQL), and
 * autocommit upserts (the Store's `upsert` SQL). Then the checks alone: audit inserts and
 * resource upserts on v3 and v4 schemas both with 16 KiB pages, so only the CHECK
 * differs. Raw prepared statements on protostore's connection settings
 * (`openConnection`); short samples in interleaved rounds, timed in CPU time of this
 * process (see `time`), reported as minimum and median. Progress on stderr.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openConnection } from "../src/sqlite/connection.ts";
import { applyMigrations } from "../src/migrate/runner.ts";
import { MIGRATIONS } from "../src/migrate/files.ts";
import { SQL } from "../src/store/sql.ts";
import { Rng } from "../tests/helpers/prng.ts";
import { tempDir } from "./_data.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    rows: { type: "string", default: "20000" },
    rounds: { type: "string", default: "41" },
    json: { type: "boolean", default: false },
  },
});
const ROWS = Number(args.values.rows);
const ROUNDS = Number(args.values.rounds);
const KIND = "skill";

type Layout = "v3 4K" | "v4 16K" | "rowid 4K";

const ROWID_DDL = `CREATE TABLE resources (kind TEXT NOT NULL, id TEXT NOT NULL,
  data BLOB NOT NULL, updated_at TEXT NOT NULL, schema_id INTEGER, UNIQUE (kind, id))`;

function create(path: string, layout: Layout): DatabaseSync {
  const db = openConnection(path);
  if (layout === "v4 16K") applyMigrations(db);
  else if (layout === "v3 4K") applyMigrations(db, MIGRATIONS.slice(0, 3));
  else db.exec(ROWID_DDL);
  db.exec("PRAGMA journal_mode = WAL");
  return db;
}

const rng = new Rng(9);
const ids = Array.from(
  { length: ROWS },
  (_, i) => `${KIND}-${String(i).padStart(6, "0")}`,
);
const payloads = ids.map(() => rng.bytes(1024 + rng.int(2049)));
const payloadBytes = payloads.reduce((sum, p) => sum + p.length, 0);
const order = ids.map((_, i) => i);
for (let i = order.length - 1; i > 0; i--) {
  const j = rng.int(i + 1);
  [order[i], order[j]] = [order[j], order[i]];
}
const lookups = Array.from({ length: ROWS }, () => ids[rng.int(ROWS)]);
const iso = new Date().toISOString();
// Fresh times for every write: rewriting a row with identical bytes is not a write
// (BENCHMARKS.md, measuring pitfalls).
let tick = Date.UTC(2026, 0, 1);
const nextIso = () => new Date(tick++).toISOString();

function fill(db: DatabaseSync): void {
  const upsert = db.prepare(SQL.upsert);
  db.exec("BEGIN");
  for (const i of order) upsert.run(KIND, ids[i], payloads[i], iso, null);
  db.exec("COMMIT");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

function median(samples: number[]): number {
  const s = samples.toSorted((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function min(samples: number[]): number {
  return Math.min(...samples);
}

/**
 * CPU milliseconds (user + system) of this process spent in `fn`: on a shared machine
 * (the numbers in BENCHMARKS.md were taken at load average ~18 on 2 cores) wall time
 * mostly measures other processes; CPU time does not count the time spent waiting for a
 * core. These operations do not wait on the disk (WAL, synchronous=NORMAL, no fsync per
 * commit), so CPU time is their cost.
 */
function time(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

using dir = tempDir();
const layouts: Layout[] = ["v3 4K", "v4 16K", "rowid 4K"];
const dbs = new Map<Layout, { db: DatabaseSync; path: string }>();
for (const layout of layouts) {
  const path = `${dir.path}/${layout.replace(" ", "-")}.sqlite`;
  const db = create(path, layout);
  fill(db);
  dbs.set(layout, { db, path });
  console.error(`built ${layout}`);
}

const samples = new Map<string, number[]>();
const add = (key: string, v: number) =>
  samples.set(key, [...(samples.get(key) ?? []), v]);
// Short samples, layouts alternating inside each round: on a shared machine the minimum
// of many short samples estimates the cost without other processes' time in it.
const GETS = 1000;
const UPSERTS = 200;
for (let round = 0; round < ROUNDS; round++) {
  for (const layout of round % 2 ? layouts.toReversed() : layouts) {
    const { db } = dbs.get(layout)!;
    const get = db.prepare(SQL.get);
    const list = db.prepare(SQL.list);
    const upsert = db.prepare(SQL.upsert);
    const isos = Array.from({ length: UPSERTS }, nextIso);
    const from = (round * GETS) % ROWS;
    add(
      `${layout} get`,
      time(() => {
        for (let i = from; i < from + GETS; i++) {
          get.get(KIND, lookups[i % ROWS]);
        }
      }) * 1000 / GETS,
    );
    add(`${layout} list`, time(() => list.all(KIND)));
    add(
      `${layout} upsert`,
      time(() => {
        for (let i = 0; i < UPSERTS; i++) {
          const n = order[(round * UPSERTS + i) % ROWS];
          upsert.run(KIND, ids[n], payloads[(n + 1) % ROWS], isos[i], null);
        }
      }) * 1000 / UPSERTS,
    );
  }
  if (round % 10 === 9) console.error(`round ${round + 1}/${ROUNDS}`);
}

const space: Record<string, number> = {};
for (const layout of layouts) {
  const { db, path } = dbs.get(layout)!;
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  space[layout] = Deno.statSync(path).size / payloadBytes;
  db.close();
}

// --- The CHECK alone: v3 vs v4 schema, both with 16 KiB pages -------------------------
function checkDb(path: string, withChecks: boolean): DatabaseSync {
  const db = openConnection(path);
  db.exec("PRAGMA page_size = 16384");
  applyMigrations(db, withChecks ? MIGRATIONS : MIGRATIONS.slice(0, 3));
  db.exec("PRAGMA journal_mode = WAL");
  db.prepare(SQL.upsert).run(KIND, "parent", new Uint8Array(200), iso, null);
  return db;
}
const checkDbs = {
  "no CHECK": checkDb(`${dir.path}/nocheck.sqlite`, false),
  "CHECK": checkDb(`${dir.path}/check.sqlite`, true),
};
const small = rng.bytes(280);

const AUDITS = 2_000;
const AUTOCOMMIT = 200;
for (let round = 0; round < ROUNDS; round++) {
  const entries = Object.entries(checkDbs);
  for (const [name, db] of round % 2 ? entries.toReversed() : entries) {
    const audit: StatementSync = db.prepare(SQL.insertAudit);
    const upsert = db.prepare(SQL.upsert);
    const isos = Array.from({ length: AUDITS }, nextIso);
    add(
      `${name} saveAudit x2000 in one transaction`,
      time(() => {
        db.exec("BEGIN IMMEDIATE");
        for (let i = 0; i < AUDITS; i++) {
          audit.run(KIND, "parent", small, isos[i], null, null, null);
        }
        db.exec("COMMIT");
      }) * 1000 / AUDITS,
    );
    add(
      `${name} saveAudit autocommit`,
      time(() => {
        for (let i = 0; i < AUTOCOMMIT; i++) {
          audit.run(KIND, "parent", small, isos[i], null, null, null);
        }
      }) * 1000 / AUTOCOMMIT,
    );
    add(
      `${name} saveResource autocommit`,
      time(() => {
        for (let i = 0; i < AUTOCOMMIT; i++) {
          upsert.run(KIND, `r${i % 500}`, small, isos[i], null);
        }
      }) * 1000 / AUTOCOMMIT,
    );
  }
}
for (const db of Object.values(checkDbs)) db.close();

// --- Small rows: what 16 KiB pages cost a commit of a ~280-byte message ---------------
// A commit appends every page it changed to the WAL: one 16 KiB frame instead of 4 KiB.
function smallDb(path: string, files: typeof MIGRATIONS): DatabaseSync {
  const db = openConnection(path);
  applyMigrations(db, files);
  db.exec("PRAGMA journal_mode = WAL");
  const upsert = db.prepare(SQL.upsert);
  db.exec("BEGIN");
  for (let i = 0; i < ROWS; i++) {
    upsert.run(KIND, ids[i], small, nextIso(), null);
  }
  db.exec("COMMIT");
  return db;
}
const smallDbs = {
  "v3 4K": smallDb(`${dir.path}/small-v3.sqlite`, MIGRATIONS.slice(0, 3)),
  "v4 16K": smallDb(`${dir.path}/small-v4.sqlite`, MIGRATIONS),
};
for (let round = 0; round < ROUNDS; round++) {
  const entries = Object.entries(smallDbs);
  for (const [name, db] of round % 2 ? entries.toReversed() : entries) {
    const upsert = db.prepare(SQL.upsert);
    const isos = Array.from({ length: AUTOCOMMIT }, nextIso);
    add(
      `small ${name} saveResource autocommit`,
      time(() => {
        for (let i = 0; i < AUTOCOMMIT; i++) {
          upsert.run(
            KIND,
            ids[(round * AUTOCOMMIT + i) * 7 % ROWS],
            small,
            isos[i],
            null,
          );
        }
      }) * 1000 / AUTOCOMMIT,
    );
    const inTransaction = Array.from({ length: AUTOCOMMIT }, nextIso);
    add(
      `small ${name} saveResource x200 in one transaction`,
      time(() => {
        db.exec("BEGIN IMMEDIATE");
        for (let i = 0; i < AUTOCOMMIT; i++) {
          upsert.run(
            KIND,
            ids[(round * AUTOCOMMIT + i) * 7 % ROWS],
            small,
            inTransaction[i],
            null,
          );
        }
        db.exec("COMMIT");
      }) * 1000 / AUTOCOMMIT,
    );
  }
}
for (const db of Object.values(smallDbs)) db.close();

const result = {
  rows: ROWS,
  payloadBytes,
  rounds: ROUNDS,
  sizeRatio: space,
  minimums: Object.fromEntries(
    [...samples].map(([k, v]) => [k, Number(min(v).toFixed(3))]),
  ),
  medians: Object.fromEntries(
    [...samples].map(([k, v]) => [k, Number(median(v).toFixed(3))]),
  ),
};
if (args.values.json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  const m = result.minimums;
  const med = result.medians;
  const lines = [
    `bench/page_size: ${ROWS} messages of 1-3 KB (${
      (payloadBytes / 1e6).toFixed(1)
    } MB), ${ROUNDS} interleaved rounds, minimum (median); Deno ${Deno.version.deno}`,
    "",
    "LAYOUT     FILE/DATA  GET µs          LIST ms           UPSERT µs",
    ...layouts.map((l) => {
      const cell = (key: string, digits: number) =>
        `${m[`${l} ${key}`].toFixed(digits)} (${
          med[`${l} ${key}`].toFixed(digits)
        })`.padEnd(17);
      return `${l.padEnd(10)} ${space[l].toFixed(2).padStart(8)}x  ${
        cell("get", 2)
      }${cell("list", 1)}${cell("upsert", 2)}`;
    }),
    "",
    `v4 16K vs v3 4K: file ${
      (space["v4 16K"] / space["v3 4K"]).toFixed(2)
    }x, get ${(m["v4 16K get"] / m["v3 4K get"]).toFixed(2)}x, list ${
      (m["v4 16K list"] / m["v3 4K list"]).toFixed(2)
    }x, upsert ${
      (m["v4 16K upsert"] / m["v3 4K upsert"]).toFixed(2)
    }x (time ratios: < 1 is faster)`,
    "",
    "TIME CHECKS (16 KiB pages both)       no CHECK µs  CHECK µs  ratio (of medians)",
    ...[
      "saveAudit x2000 in one transaction",
      "saveAudit autocommit",
      "saveResource autocommit",
    ].map((op) =>
      `${op.padEnd(37)} ${m[`no CHECK ${op}`].toFixed(2).padStart(11)} ${
        m[`CHECK ${op}`].toFixed(2).padStart(9)
      } ${(m[`CHECK ${op}`] / m[`no CHECK ${op}`]).toFixed(2).padStart(6)}x (${
        (med[`CHECK ${op}`] / med[`no CHECK ${op}`]).toFixed(2)
      }x)`
    ),
    "",
    "SMALL ROWS (280 B)                      v3 4K µs  v4 16K µs  ratio (of medians)",
    ...["saveResource autocommit", "saveResource x200 in one transaction"].map((
      op,
    ) =>
      `${op.padEnd(37)} ${m[`small v3 4K ${op}`].toFixed(2).padStart(10)} ${
        m[`small v4 16K ${op}`].toFixed(2).padStart(10)
      } ${
        (m[`small v4 16K ${op}`] / m[`small v3 4K ${op}`]).toFixed(2).padStart(
          6,
        )
      }x (${
        (med[`small v4 16K ${op}`] / med[`small v3 4K ${op}`]).toFixed(2)
      }x)`
    ),
  ];
  console.log(lines.join("\n"));
}
