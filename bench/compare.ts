/**
 * The judge of issue 5: the Store against raw `node:sqlite`, side by side in one process.
 *
 *     deno run -A bench/compare.ts [--json] [--quick] [--no-import] [--only SECTIONS]
 *
 * For every Store operation it times, over the same data and in interleaved rounds
 * (medians):
 * - store: the Store call;
 * - SQLite: the same SQL through raw prepared statements on the same connection (same
 *   pragmas), with the bytes already encoded;
 * - protobuf: `toBinary`/`fromBinary` of the same messages alone;
 * - hand-written: raw statements and protobuf in one loop, building the same result —
 *   what a caller would write without the Store.
 * Store overhead is store − SQLite − protobuf. Then the scaling checks: audit lookups at
 * 10,000 vs 1,000,000 audit rows (Store and raw on the same files), bulk save of 100,000
 * resources vs raw inserts, the cascading delete of a resource with 1,000 snapshots
 * (with its query plan), `inspectDatabase` on 1,000,000 resources vs a raw
 * `GROUP BY kind`, and `bench/import_badger_compare.ts` (its own child processes, for
 * peak RSS). `--quick` uses smaller sizes; `--no-import` skips the import; `--only`
 * runs some sections (comma-separated: ops, go, bulk, scaling, inspect, import,
 * revisions — `bench/revisions_compare.ts`: the cost of revisions; postgres —
 * `bench/postgres_compare.ts`: the PostgreSQL store against the raw driver, throughput at
 * 1/4/16 clients, watch latency, SQLite behind AsyncStore); `--json`
 * prints one JSON document instead of tables. Progress goes to stderr.
 *
 * @module
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { parseArgs } from "node:util";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { openConnection } from "../src/sqlite/connection.ts";
import { inspectDatabase } from "../src/admin/inspect.ts";
import { openStore, Store } from "../src/store/store.ts";
import { SchemaIds } from "../src/store/schemas.ts";
import {
  auditHash,
  auditRow,
  auditTag,
  buildKindsDb,
  buildStoreDb,
  encodeAll,
  isoNow,
  KIND,
  makeSkills,
  rawStatements,
  resourceId,
  type Skill,
  SkillSchema,
  tempDir,
} from "./_data.ts";
import { prng } from "../tests/helpers/prng.ts";
import { measureRevisions, revisionsMarkdown } from "./revisions_compare.ts";
import { measureGoBaseline } from "./_go_baseline.ts";
import { measurePostgres } from "./postgres_compare.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    "no-import": { type: "boolean", default: false },
    only: {
      type: "string",
      default: "ops,go,bulk,scaling,inspect,import,revisions,postgres",
    },
  },
});
const SECTIONS = new Set(args.values.only.split(","));
if (args.values["no-import"]) SECTIONS.delete("import");
const QUICK = args.values.quick;
const JSON_OUT = args.values.json;

const CONFIG = QUICK
  ? {
    resources: 2_000,
    batch: 300,
    rounds: 9,
    bulkRows: 20_000,
    bulkRounds: 3,
    scaleSmall: 1_000,
    scaleLarge: 10_000,
    lookups: 500,
    scaleRounds: 5,
    deleteSnapshots: 1_000,
    deleteRounds: 3,
    inspectResources: 100_000,
    inspectRounds: 3,
    importKeys: 100_000,
    importRounds: 1,
    go: { resources: 5_000, withHistory: 500, batch: 200, rounds: 9 },
  }
  : {
    resources: 10_000,
    batch: 400,
    rounds: 61,
    bulkRows: 100_000,
    bulkRounds: 5,
    scaleSmall: 1_000,
    scaleLarge: 100_000,
    lookups: 1_000,
    scaleRounds: 15,
    deleteSnapshots: 1_000,
    deleteRounds: 7,
    inspectResources: 1_000_000,
    inspectRounds: 7,
    importKeys: 1_000_000,
    importRounds: 3,
    go: { resources: 20_000, withHistory: 2_000, batch: 400, rounds: 31 },
  };
/** Audit snapshots per resource everywhere: "a 10-snapshot resource". */
const SNAPSHOTS = 10;
/** The generated databases cycle through this many distinct messages (bytes known). */
const TEMPLATES = 256;
/** Target of the Go-schema comparison: the Store's rate over raw's. */
const GO_TARGET = 0.85;
/** Per-operation target: store overhead at most this share of the call. */
const MAX_OVERHEAD_PCT = 10;

const log = (line: string) => console.error(line);

// ---------------------------------------------------------------------------- timing

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Runs every side once per round, rotating which side goes first, after `warmup` untimed
 * rounds; returns each side's median milliseconds. `before(round, side, position)` runs
 * untimed before each side (position 0: the first side of the round).
 */
function interleave<K extends string>(
  sides: Record<K, () => void>,
  rounds: number,
  options: {
    warmup?: number;
    before?: (round: number, side: K, position: number) => void;
  } = {},
): Record<K, number> {
  const samples = interleaveSamples(sides, rounds, options);
  return Object.fromEntries(
    Object.entries(samples).map(([n, v]) => [n, median(v as number[])]),
  ) as Record<K, number>;
}

/** {@linkcode interleave}'s milliseconds of every round, per side, in round order. */
function interleaveSamples<K extends string>(
  sides: Record<K, () => void>,
  rounds: number,
  options: {
    warmup?: number;
    before?: (round: number, side: K, position: number) => void;
  } = {},
): Record<K, number[]> {
  const names = Object.keys(sides) as K[];
  const samples = new Map<K, number[]>(names.map((n) => [n, []]));
  const warmup = options.warmup ?? 2;
  for (let round = 0; round < warmup + rounds; round++) {
    for (let s = 0; s < names.length; s++) {
      const name = names[(round + s) % names.length];
      options.before?.(round, name, s);
      const start = performance.now();
      sides[name]();
      const ms = performance.now() - start;
      if (round >= warmup) samples.get(name)!.push(ms);
    }
  }
  return Object.fromEntries(names.map((n) => [n, samples.get(n)!])) as Record<
    K,
    number[]
  >;
}

// ---------------------------------------------------------------------------- setup

using dir = tempDir();
const env = {
  deno: Deno.version.deno,
  v8: Deno.version.v8,
  sqlite: sqliteVersion(),
  cpus: navigator.hardwareConcurrency,
  os: `${Deno.build.os}-${Deno.build.arch}`,
  mode: QUICK ? "quick" : "full",
  date: new Date().toISOString(),
  loadAverageBefore: Deno.loadavg(),
  loadAverageAfter: [] as number[],
};

function sqliteVersion(): string {
  const db = new DatabaseSync(":memory:");
  try {
    return (db.prepare("SELECT sqlite_version() AS v").get() as { v: string })
      .v;
  } finally {
    db.close();
  }
}

/** The encoded templates the generated databases hold, by template number. */
const TEMPLATE_BYTES = encodeAll(makeSkills(TEMPLATES, 7));

// ---------------------------------------------------------------------------- operations

type Side = "store" | "raw" | "pb" | "hand";

interface OperationResult {
  operation: string;
  storeUs: number;
  sqliteUs: number;
  protobufUs: number;
  overheadUs: number;
  overheadPct: number;
  storeOverRaw: number;
  handUs: number;
  storeOverHand: number;
  met: boolean;
}

function measureOperations(): OperationResult[] {
  const N = CONFIG.resources;
  const B = CONFIG.batch;
  const path = `${dir.path}/ops.sqlite`;
  log(`building ${N} resources × ${SNAPSHOTS} snapshots …`);
  buildStoreDb(path, { resources: N, snapshotsPerResource: SNAPSHOTS });
  using store = openStore(path);
  const db = Store.connectionOf(store);
  const raw = rawStatements(db);
  const schemaId = new SchemaIds(db).idOf(SkillSchema); // already recorded: a read

  // Saves rewrite existing resources with new messages, so a row's size barely changes.
  const messages = makeSkills(N, 42);
  const bytes = encodeAll(messages);
  const ids = Array.from({ length: N }, (_, i) => resourceId(i));
  // Saves of audit snapshots go to other resources, so the 10-snapshot histories stay.
  const TARGETS = 100;
  const targetIds = Array.from({ length: TARGETS }, (_, i) => `target-${i}`);
  db.exec("BEGIN IMMEDIATE");
  for (let i = 0; i < TARGETS; i++) {
    raw.upsert.run("target", targetIds[i], bytes[i], isoNow(), schemaId, 1);
  }
  db.exec("COMMIT");

  const rng = prng(5);
  const order = Array.from({ length: N }, () => Math.floor(rng() * N));
  let cursor = 0; // first index of this round's batch, shared by all sides of a round
  const nextBatch = (round: number, _side: Side, position: number) => {
    if (position === 0) cursor = (round * B) % N;
  };
  const at = (k: number) => (cursor + k) % N;
  const results: OperationResult[] = [];
  const run = (
    operation: string,
    units: number,
    sides: Record<Side, () => void>,
  ) => {
    log(`  ${operation}`);
    const ms = interleaveSamples(sides, CONFIG.rounds, { before: nextBatch });
    const us = (side: Side) => (median(ms[side]) * 1000) / units;
    // Overhead and ratios pair the sides of each round, then take the median over rounds:
    // a slow spell on this shared machine then slows all sides of a round alike.
    const paired = (f: (round: number) => number) =>
      median(ms.store.map((_, r) => f(r)));
    const overhead = (r: number) => ms.store[r] - ms.raw[r] - ms.pb[r];
    const overheadPct = paired((r) => (100 * overhead(r)) / ms.store[r]);
    results.push({
      operation,
      storeUs: us("store"),
      sqliteUs: us("raw"),
      protobufUs: us("pb"),
      overheadUs: (paired(overhead) * 1000) / units,
      overheadPct,
      storeOverRaw: paired((r) => ms.store[r] / ms.raw[r]),
      handUs: us("hand"),
      storeOverHand: paired((r) => ms.store[r] / ms.hand[r]),
      met: overheadPct <= MAX_OVERHEAD_PCT,
    });
  };
  const encodeBatch = () => {
    for (let k = 0; k < B; k++) toBinary(SkillSchema, messages[at(k)]);
  };

  run("saveResource (autocommit)", B, {
    store: () => {
      for (let k = 0; k < B; k++) {
        const i = at(k);
        store.saveResource(SkillSchema, KIND, ids[i], messages[i]);
      }
    },
    raw: () => {
      for (let k = 0; k < B; k++) {
        const i = at(k);
        raw.upsert.run(KIND, ids[i], bytes[i], isoNow(), schemaId, 1);
      }
    },
    pb: encodeBatch,
    hand: () => {
      for (let k = 0; k < B; k++) {
        const i = at(k);
        const data = toBinary(SkillSchema, messages[i]);
        raw.upsert.run(KIND, ids[i], data, isoNow(), schemaId, 1);
      }
    },
  });

  run("saveResource (in transaction)", B, {
    store: () =>
      store.transaction(() => {
        for (let k = 0; k < B; k++) {
          const i = at(k);
          store.saveResource(SkillSchema, KIND, ids[i], messages[i]);
        }
      }),
    raw: () => {
      db.exec("BEGIN IMMEDIATE");
      for (let k = 0; k < B; k++) {
        const i = at(k);
        raw.upsert.run(KIND, ids[i], bytes[i], isoNow(), schemaId, 1);
      }
      db.exec("COMMIT");
    },
    pb: encodeBatch,
    hand: () => {
      db.exec("BEGIN IMMEDIATE");
      for (let k = 0; k < B; k++) {
        const i = at(k);
        const data = toBinary(SkillSchema, messages[i]);
        raw.upsert.run(KIND, ids[i], data, isoNow(), schemaId, 1);
      }
      db.exec("COMMIT");
    },
  });

  // The saves above rewrote every resource with `messages`: reads decode those bytes.
  run("getResource", B, {
    store: () => {
      for (let k = 0; k < B; k++) {
        store.getResource(SkillSchema, KIND, ids[order[at(k)]]);
      }
    },
    raw: () => {
      for (let k = 0; k < B; k++) raw.get.get(KIND, ids[order[at(k)]]);
    },
    pb: () => {
      for (let k = 0; k < B; k++) fromBinary(SkillSchema, bytes[order[at(k)]]);
    },
    hand: () => {
      for (let k = 0; k < B; k++) {
        const row = raw.get.get(KIND, ids[order[at(k)]]) as unknown as [
          Uint8Array,
        ];
        fromBinary(SkillSchema, row[0]);
      }
    },
  });

  run(`listResources (${N} rows)`, 1, {
    store: () => {
      store.listResources(SkillSchema, KIND);
    },
    raw: () => {
      raw.list.all(KIND);
    },
    pb: () => {
      const out = new Array(N);
      for (let i = 0; i < N; i++) out[i] = fromBinary(SkillSchema, bytes[i]);
    },
    hand: () => {
      const rows = raw.list.all(KIND) as unknown as [Uint8Array][];
      const out = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        out[i] = fromBinary(SkillSchema, rows[i][0]);
      }
    },
  });

  const hashes = Array.from({ length: B }, (_, k) => `bench-${k}`);
  run("saveAudit", B, {
    store: () => {
      for (let k = 0; k < B; k++) {
        store.saveAudit(
          SkillSchema,
          "target",
          targetIds[k % TARGETS],
          messages[at(k)],
          {
            versionHash: hashes[k],
            tag: "bench",
          },
        );
      }
    },
    raw: () => {
      for (let k = 0; k < B; k++) {
        raw.insertAudit.all(
          "target",
          targetIds[k % TARGETS],
          bytes[at(k)],
          isoNow(),
          hashes[k],
          "bench",
          schemaId,
        );
      }
    },
    pb: encodeBatch,
    hand: () => {
      for (let k = 0; k < B; k++) {
        const data = toBinary(SkillSchema, messages[at(k)]);
        raw.insertAudit.all(
          "target",
          targetIds[k % TARGETS],
          data,
          isoNow(),
          hashes[k],
          "bench",
          schemaId,
        );
      }
    },
  });

  // Lookups of random (resource, snapshot) pairs among the generated histories.
  const lookupR = Array.from({ length: N }, () => Math.floor(rng() * N));
  const lookupJ = Array.from(
    { length: N },
    () => Math.floor(rng() * SNAPSHOTS),
  );
  const hashOf = lookupR.map((r, i) => auditHash(auditRow(N, r, lookupJ[i])));
  const hashData = lookupR.map((r, i) =>
    TEMPLATE_BYTES[auditRow(N, r, lookupJ[i]) % TEMPLATES]
  );
  const tagOf = lookupJ.map(auditTag);
  // The newest snapshot with tag v(j % 5) is snapshot j % 5 + 5.
  const tagData = lookupR.map((r, i) =>
    TEMPLATE_BYTES[auditRow(N, r, (lookupJ[i] % 5) + 5) % TEMPLATES]
  );
  const lookup = (
    name: string,
    method: "getAuditByHash" | "getAuditByTag",
    statement: StatementSync,
    values: string[],
    data: Uint8Array[],
  ) =>
    run(name, B, {
      store: () => {
        for (let k = 0; k < B; k++) {
          const i = at(k);
          store[method](SkillSchema, KIND, ids[lookupR[i]], values[i]);
        }
      },
      raw: () => {
        for (let k = 0; k < B; k++) {
          const i = at(k);
          statement.get(KIND, ids[lookupR[i]], values[i]);
        }
      },
      pb: () => {
        for (let k = 0; k < B; k++) fromBinary(SkillSchema, data[at(k)]);
      },
      hand: () => {
        for (let k = 0; k < B; k++) {
          const i = at(k);
          const row = statement.get(
            KIND,
            ids[lookupR[i]],
            values[i],
          ) as unknown as [Uint8Array];
          fromBinary(SkillSchema, row[0]);
        }
      },
    });
  lookup("getAuditByHash", "getAuditByHash", raw.auditByHash, hashOf, hashData);
  lookup("getAuditByTag", "getAuditByTag", raw.auditByTag, tagOf, tagData);

  const H = Math.max(1, B >> 2);
  type HistoryRow = [number, string, string | null, string | null, Uint8Array];
  run(`listAuditHistory (${SNAPSHOTS} snapshots)`, H, {
    store: () => {
      for (let k = 0; k < H; k++) {
        store.listAuditHistory(SkillSchema, KIND, ids[lookupR[at(k)]]);
      }
    },
    raw: () => {
      for (let k = 0; k < H; k++) raw.history.all(KIND, ids[lookupR[at(k)]]);
    },
    pb: () => {
      for (let k = 0; k < H; k++) {
        const r = lookupR[at(k)];
        const out = new Array(SNAPSHOTS);
        for (let j = SNAPSHOTS - 1; j >= 0; j--) {
          out[j] = fromBinary(
            SkillSchema,
            TEMPLATE_BYTES[auditRow(N, r, j) % TEMPLATES],
          );
        }
      }
    },
    hand: () => {
      for (let k = 0; k < H; k++) {
        const rows = raw.history.all(
          KIND,
          ids[lookupR[at(k)]],
        ) as unknown as HistoryRow[];
        const out = new Array(rows.length);
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i];
          // Same entries as the Store's: absent labels are absent keys.
          const entry: Record<string, unknown> = {
            id: row[0],
            archivedAt: new Date(row[1]),
            message: fromBinary(SkillSchema, row[4]),
          };
          if (row[2]) entry.versionHash = row[2];
          if (row[3]) entry.tag = row[3];
          out[i] = entry;
        }
      }
    },
  });
  return results;
}

// ---------------------------------------------------------------------------- bulk save

interface BulkResult {
  rows: number;
  storeRowsPerSec: number;
  rawRowsPerSec: number;
  protobufRowsPerSec: number;
  handRowsPerSec: number;
  ratio: number;
  ratioWithoutProtobuf: number;
  storeOverHand: number;
  target: number;
  met: boolean;
}

function measureBulk(): BulkResult {
  const n = CONFIG.bulkRows;
  log(
    `bulk save of ${n} resources in one transaction, fresh database per side …`,
  );
  const messages: Skill[] = makeSkills(n, 99);
  const bytes = encodeAll(messages);
  const ids = Array.from({ length: n }, (_, i) => resourceId(i));
  let store: Store | undefined;
  let db: DatabaseSync | undefined;
  let file = 0;
  const fresh = () => {
    if (store) {
      const old = store.path;
      store.close();
      Deno.removeSync(old);
    }
    store = openStore(`${dir.path}/bulk-${file++}.sqlite`);
    db = Store.connectionOf(store);
  };
  const rawLoop = (encode: boolean) => {
    const upsert = rawStatements(db!).upsert;
    db!.exec("BEGIN IMMEDIATE");
    const schemaId = new SchemaIds(db!).idOf(SkillSchema);
    for (let i = 0; i < n; i++) {
      const data = encode ? toBinary(SkillSchema, messages[i]) : bytes[i];
      upsert.run(KIND, ids[i], data, isoNow(), schemaId, 1);
    }
    db!.exec("COMMIT");
  };
  const ms = interleave(
    {
      store: () =>
        store!.transaction(() => {
          for (let i = 0; i < n; i++) {
            store!.saveResource(SkillSchema, KIND, ids[i], messages[i]);
          }
        }),
      raw: () => rawLoop(false),
      pb: () => {
        for (let i = 0; i < n; i++) toBinary(SkillSchema, messages[i]);
      },
      hand: () => rawLoop(true),
    },
    CONFIG.bulkRounds,
    { warmup: 1, before: fresh },
  );
  if (store) {
    store.close();
    Deno.removeSync(store.path);
  }
  const rate = (t: number) => (n * 1000) / t;
  const ratio = ms.raw / ms.store;
  return {
    rows: n,
    storeRowsPerSec: rate(ms.store),
    rawRowsPerSec: rate(ms.raw),
    protobufRowsPerSec: rate(ms.pb),
    handRowsPerSec: rate(ms.hand),
    ratio,
    ratioWithoutProtobuf: ms.raw / (ms.store - ms.pb),
    storeOverHand: ms.hand / ms.store,
    target: 0.85,
    met: ratio >= 0.85,
  };
}

// ---------------------------------------------------------------------------- scaling

interface ScalingResult {
  lookup: string;
  smallRows: number;
  largeRows: number;
  storeSmallUs: number;
  storeLargeUs: number;
  storeRatio: number;
  rawSmallUs: number;
  rawLargeUs: number;
  rawRatio: number;
  target: number;
  met: boolean;
}

interface DeleteResult {
  snapshots: number;
  auditRows: number;
  storeMs: number;
  rawMs: number;
}

interface DeleteReport {
  runs: DeleteResult[];
  growth: number;
  plans: { sql: string; plan: string[] }[];
  met: boolean;
}

function measureScaling(): { scaling: ScalingResult[]; deletes: DeleteReport } {
  const sizes = [CONFIG.scaleSmall, CONFIG.scaleLarge];
  const dbs = sizes.map((resources) => {
    const path = `${dir.path}/scale-${resources}.sqlite`;
    const start = performance.now();
    buildStoreDb(path, { resources, snapshotsPerResource: SNAPSHOTS });
    log(
      `built ${resources * SNAPSHOTS} audit rows in ${
        ((performance.now() - start) / 1000).toFixed(1)
      } s (${(Deno.statSync(path).size / 1e6).toFixed(0)} MB)`,
    );
    const store = openStore(path);
    const db = Store.connectionOf(store);
    return { resources, store, db, raw: rawStatements(db) };
  });
  const L = CONFIG.lookups;
  // Fresh random keys every round, so later rounds do not just re-read cached pages.
  const keys = dbs.map(() => ({
    ids: new Array<string>(L),
    hashes: new Array<string>(L),
    tags: new Array<string>(L),
  }));
  const pickKeys = (round: number, _side: string, position: number) => {
    if (position !== 0) return;
    const rng = prng(1000 + round);
    dbs.forEach(({ resources }, d) => {
      for (let k = 0; k < L; k++) {
        const r = Math.floor(rng() * resources);
        const j = Math.floor(rng() * SNAPSHOTS);
        keys[d].ids[k] = resourceId(r);
        keys[d].hashes[k] = auditHash(auditRow(resources, r, j));
        keys[d].tags[k] = auditTag(j);
      }
    });
  };
  const lookups: Record<
    string,
    { store: (d: number) => void; raw: (d: number) => void }
  > = {
    getAuditByHash: {
      store: (d) => {
        const { store } = dbs[d], { ids, hashes } = keys[d];
        for (let k = 0; k < L; k++) {
          store.getAuditByHash(SkillSchema, KIND, ids[k], hashes[k]);
        }
      },
      raw: (d) => {
        const { raw } = dbs[d], { ids, hashes } = keys[d];
        for (let k = 0; k < L; k++) {
          raw.auditByHash.get(KIND, ids[k], hashes[k]);
        }
      },
    },
    getAuditByTag: {
      store: (d) => {
        const { store } = dbs[d], { ids, tags } = keys[d];
        for (let k = 0; k < L; k++) {
          store.getAuditByTag(SkillSchema, KIND, ids[k], tags[k]);
        }
      },
      raw: (d) => {
        const { raw } = dbs[d], { ids, tags } = keys[d];
        for (let k = 0; k < L; k++) raw.auditByTag.get(KIND, ids[k], tags[k]);
      },
    },
    listAuditHistory: {
      store: (d) => {
        const { store } = dbs[d], { ids } = keys[d];
        for (let k = 0; k < L; k++) {
          store.listAuditHistory(SkillSchema, KIND, ids[k]);
        }
      },
      raw: (d) => {
        const { raw } = dbs[d], { ids } = keys[d];
        for (let k = 0; k < L; k++) raw.history.all(KIND, ids[k]);
      },
    },
  };
  const scaling: ScalingResult[] = [];
  for (const [lookup, fns] of Object.entries(lookups)) {
    log(
      `  ${lookup} at ${sizes[0] * SNAPSHOTS} vs ${
        sizes[1] * SNAPSHOTS
      } audit rows`,
    );
    const ms = interleave(
      {
        storeSmall: () => fns.store(0),
        storeLarge: () => fns.store(1),
        rawSmall: () => fns.raw(0),
        rawLarge: () => fns.raw(1),
      },
      CONFIG.scaleRounds,
      { before: pickKeys },
    );
    const us = (t: number) => (t * 1000) / L;
    const storeRatio = ms.storeLarge / ms.storeSmall;
    const rawRatio = ms.rawLarge / ms.rawSmall;
    scaling.push({
      lookup,
      smallRows: sizes[0] * SNAPSHOTS,
      largeRows: sizes[1] * SNAPSHOTS,
      storeSmallUs: us(ms.storeSmall),
      storeLargeUs: us(ms.storeLarge),
      storeRatio,
      rawSmallUs: us(ms.rawSmall),
      rawLargeUs: us(ms.rawLarge),
      rawRatio,
      target: 1.5,
      met: storeRatio <= Math.max(1.5, rawRatio),
    });
  }

  const runs = dbs.map(({ resources, store, db, raw }) =>
    measureDelete(resources * SNAPSHOTS, store, db, raw.delete)
  );
  // SQLite shows the foreign key's cascade as a second line of the parent's plan.
  const plans = [
    "DELETE FROM resources WHERE kind = ? AND id = ?",
    "DELETE FROM resource_audit WHERE kind = ? AND resource_id = ?",
  ].map((sql) => ({
    sql,
    plan: (dbs[1].db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all("k", "i") as {
      detail: string;
    }[]).map((row) => row.detail),
  }));
  for (const { store } of dbs) store.close();
  const growth = runs[1].storeMs / runs[0].storeMs;
  return {
    scaling,
    deletes: {
      runs,
      growth,
      plans,
      met:
        plans.every((p) =>
          p.plan.length > 0 && p.plan.every((line) => line.startsWith("SEARCH"))
        ) && plans[0].plan.some((line) => line.includes("resource_audit")),
    },
  };
}

function measureDelete(
  auditRows: number,
  store: Store,
  db: DatabaseSync,
  rawDelete: StatementSync,
): DeleteResult {
  const S = CONFIG.deleteSnapshots;
  log(`  deleteResource with ${S} snapshots among ${auditRows} audit rows`);
  const insert = db.prepare(
    `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag)
     VALUES (?, ?, ?, ?, ?, NULL)`,
  );
  const upsert = rawStatements(db).upsert;
  let victim = "";
  let n = 0;
  const seed = () => {
    victim = `victim-${n++}`;
    db.exec("BEGIN IMMEDIATE");
    upsert.run(KIND, victim, TEMPLATE_BYTES[0], isoNow(), null, 1);
    for (let j = 0; j < S; j++) {
      insert.run(
        KIND,
        victim,
        TEMPLATE_BYTES[j % TEMPLATES],
        isoNow(),
        `h${j}`,
      );
    }
    db.exec("COMMIT");
  };
  const ms = interleave(
    {
      store: () => {
        if (!store.deleteResource(KIND, victim)) {
          throw new Error(
            "nothing deleted",
          );
        }
      },
      raw: () => {
        if (rawDelete.run(KIND, victim).changes !== 1) {
          throw new Error(
            "nothing deleted",
          );
        }
      },
    },
    CONFIG.deleteRounds,
    { warmup: 1, before: seed },
  );
  const left = db.prepare(
    "SELECT count(*) AS n FROM resource_audit WHERE kind = ? AND resource_id LIKE 'victim-%'",
  ).get(KIND) as { n: number };
  if (left.n !== 0) throw new Error(`the cascade left ${left.n} snapshots`);
  return { snapshots: S, auditRows, storeMs: ms.store, rawMs: ms.raw };
}

// ---------------------------------------------------------------------------- inspect

interface InspectResult {
  resources: number;
  kinds: number;
  inspectMs: number;
  rawGroupByMs: number;
  rawGroupBySizesMs: number;
  ratio: number;
  ratioToSizes: number;
  target: number;
  met: boolean;
}

function measureInspect(): InspectResult {
  const count = CONFIG.inspectResources;
  const kinds = 5;
  const path = `${dir.path}/inspect.sqlite`;
  const start = performance.now();
  buildKindsDb(path, count, kinds);
  log(
    `built ${count} resources for inspect in ${
      ((performance.now() - start) / 1000).toFixed(1)
    } s; timing inspectDatabase vs GROUP BY kind …`,
  );
  const db = openConnection(path, { readOnly: true });
  try {
    const groupBy = db.prepare(
      "SELECT kind, count(*) AS n FROM resources GROUP BY kind",
    );
    const groupBySizes = db.prepare(
      `SELECT kind, count(*) AS n, sum(length(data)) AS bytes, max(updated_at) AS last
       FROM resources GROUP BY kind`,
    );
    const ms = interleave(
      {
        inspect: () => {
          if (inspectDatabase(path).resources !== count) {
            throw new Error("wrong count");
          }
        },
        raw: () => groupBy.all(),
        rawSizes: () => groupBySizes.all(),
      },
      CONFIG.inspectRounds,
      { warmup: 1 },
    );
    return {
      resources: count,
      kinds,
      inspectMs: ms.inspect,
      rawGroupByMs: ms.raw,
      rawGroupBySizesMs: ms.rawSizes,
      ratio: ms.inspect / ms.raw,
      ratioToSizes: ms.inspect / ms.rawSizes,
      target: 2,
      met: ms.inspect / ms.raw <= 2,
    };
  } finally {
    db.close();
    Deno.removeSync(path);
  }
}

// ---------------------------------------------------------------------------- import

/** What `bench/import_badger_compare.ts --json` prints (the fields used here). */
interface ImportResult {
  keys: number;
  rawRowsPerSec: number;
  importKeysPerSec: number;
  importPeakRssMb: number;
  rateRatio: number;
  [field: string]: unknown;
}

async function measureImport(): Promise<ImportResult | { error: string }> {
  log(
    `import-badger of ${CONFIG.importKeys} keys via bench/import_badger_compare.ts …`,
  );
  const script =
    new URL("./import_badger_compare.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      script,
      "--json",
      "--keys",
      String(CONFIG.importKeys),
      "--rounds",
      String(CONFIG.importRounds),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) return { error: `${script} exited with ${output.code}` };
  return JSON.parse(new TextDecoder().decode(output.stdout)) as ImportResult;
}

// ---------------------------------------------------------------------------- report

const operations = SECTIONS.has("ops") ? measureOperations() : null;
const goBaseline = SECTIONS.has("go")
  ? measureGoBaseline(dir.path, CONFIG.go, log)
  : null;
const bulk = SECTIONS.has("bulk") ? measureBulk() : null;
const { scaling, deletes } = SECTIONS.has("scaling")
  ? measureScaling()
  : { scaling: null, deletes: null };
const inspect = SECTIONS.has("inspect") ? measureInspect() : null;
const imported = SECTIONS.has("import") ? await measureImport() : null;
const revisions = SECTIONS.has("revisions")
  ? await measureRevisions(dir.path, { quick: QUICK, log })
  : null;
const postgres = SECTIONS.has("postgres")
  ? await measurePostgres({ quick: QUICK, log })
  : null;
env.loadAverageAfter = Deno.loadavg();
const report = {
  env,
  config: CONFIG,
  operations,
  goBaseline,
  bulk,
  scaling,
  deletes,
  inspect,
  importBadger: imported,
  revisions,
  postgres,
};

console.log(JSON_OUT ? JSON.stringify(report, null, 2) : render());

function render(): string {
  const f = (n: number, digits = 1) => n.toFixed(digits);
  const x = (n: number) => `${n.toFixed(2)}x`;
  const int = (n: number) => Math.round(n).toLocaleString("en-US");
  const ok = (met: boolean) => (met ? "met" : "NOT MET");
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(" ");
  const out = [
    `protostore bench/compare (${env.mode}): Deno ${env.deno}, SQLite ${env.sqlite}, ` +
    `${env.cpus} CPUs, ${env.os}`,
    `load average ${load(env.loadAverageBefore)} before, ` +
    `${load(env.loadAverageAfter)} after`,
  ];
  if (operations) {
    const header = [
      "operation",
      "store",
      "SQLite",
      "protobuf",
      "overhead",
      "overhead %",
      "store/raw",
      "hand-written",
      "store/hand",
      `≤${MAX_OVERHEAD_PCT}%`,
    ];
    const rows = operations.map((o) => [
      o.operation,
      f(o.storeUs),
      f(o.sqliteUs),
      f(o.protobufUs),
      f(o.overheadUs),
      `${f(o.overheadPct)}%`,
      x(o.storeOverRaw),
      f(o.handUs),
      x(o.storeOverHand),
      ok(o.met),
    ]);
    out.push(
      "",
      "Per operation (µs per call; medians of interleaved rounds):",
      table(header, rows),
    );
  }
  if (goBaseline) {
    const rows = goBaseline.map((o) => [
      o.operation,
      f(o.storeUs),
      f(o.rawUs),
      x(o.ratio),
      ok(o.ratio >= GO_TARGET),
    ]);
    out.push(
      "",
      "Against raw node:sqlite on the Go store's schema and SQL, with protobuf " +
        `(${
          CONFIG.go.resources.toLocaleString("en-US")
        } BytesValue of 280 bytes; ` +
        "µs of CPU per call; rate ratio, paired per round):",
      table(
        [
          "operation",
          "store",
          "raw Go SQL",
          "store/raw rate",
          `≥${GO_TARGET}x`,
        ],
        rows,
      ),
      ...goBaseline.filter((o) => o.note).map((o) =>
        `  ${o.operation}: ${o.note}`
      ),
    );
  }
  if (bulk) {
    const b = bulk;
    out.push(
      "",
      `Bulk save of ${int(b.rows)} resources in one transaction (rows/s):`,
      `  store ${int(b.storeRowsPerSec)}; raw insert of the encoded bytes ` +
        `${int(b.rawRowsPerSec)}; protobuf encode alone ${
          int(b.protobufRowsPerSec)
        }; ` +
        `hand-written encode + insert ${int(b.handRowsPerSec)}`,
      `  store/raw rate ${x(b.ratio)} (target ≥ ${b.target}x: ${ok(b.met)}); ` +
        `without the encode time ${x(b.ratioWithoutProtobuf)}; ` +
        `store/hand-written rate ${x(b.storeOverHand)}`,
    );
  }
  if (scaling && deletes) {
    const header = [
      "lookup",
      "audit rows",
      "store",
      "raw",
      "store ratio",
      "raw ratio",
      "target",
    ];
    const rows = scaling.flatMap((s) => [
      [
        s.lookup,
        int(s.smallRows),
        f(s.storeSmallUs),
        f(s.rawSmallUs),
        "",
        "",
        "",
      ],
      [
        "",
        int(s.largeRows),
        f(s.storeLargeUs),
        f(s.rawLargeUs),
        x(s.storeRatio),
        x(s.rawRatio),
        `${ok(s.met)} (≤${s.target}x or ≤ raw)`,
      ],
    ]);
    const [small, large] = deletes.runs;
    out.push(
      "",
      "Audit lookups as the table grows (µs per lookup; fresh random keys each round):",
      table(header, rows),
      "",
      "deleteResource of a resource with its snapshots (ON DELETE CASCADE):",
      ...deletes.runs.map((d) =>
        `  ${int(d.snapshots)} snapshots among ${
          int(d.auditRows)
        } audit rows: ` +
        `store ${f(d.storeMs, 2)} ms, raw DELETE ${f(d.rawMs, 2)} ms`
      ),
      `  time at ${int(large.auditRows)} rows / at ${int(small.auditRows)}: ` +
        x(deletes.growth),
      ...deletes.plans.map((p) =>
        `  EXPLAIN QUERY PLAN ${p.sql}\n    ${p.plan.join("\n    ")}`
      ),
      `  one indexed delete, no scan: ${ok(deletes.met)}`,
    );
  }
  if (inspect) {
    const i = inspect;
    out.push(
      "",
      `inspectDatabase on ${int(i.resources)} resources in ${i.kinds} kinds: ` +
        `${f(i.inspectMs)} ms`,
      `  raw SELECT kind, count(*) … GROUP BY kind: ${f(i.rawGroupByMs)} ms; ` +
        `inspect ${x(i.ratio)} (target ≤ ${i.target}x: ${ok(i.met)})`,
      `  raw GROUP BY kind with sum(length(data)), max(updated_at): ` +
        `${f(i.rawGroupBySizesMs)} ms; inspect ${x(i.ratioToSizes)}`,
    );
  }
  if (imported && "error" in imported) {
    out.push("", `import-badger: ${imported.error}`);
  } else if (imported) {
    const m = imported;
    out.push(
      "",
      `import-badger of ${int(m.keys)} keys (bench/import_badger_compare.ts):`,
      `  ${int(m.importKeysPerSec)} keys/s vs raw bulk insert ${
        int(m.rawRowsPerSec)
      } ` +
        `rows/s = ${x(m.rateRatio)} (target ≥ 0.6x: ${
          ok(m.rateRatio >= 0.6)
        }); ` +
        `peak RSS ${int(m.importPeakRssMb)} MB (target ≤ 300 MB: ` +
        `${ok(m.importPeakRssMb <= 300)})`,
    );
  }
  if (revisions) {
    out.push(
      "",
      "Revisions (bench/revisions_compare.ts; CPU µs per call, medians of paired rounds):",
      revisionsMarkdown(revisions),
    );
  }
  if (postgres) {
    out.push(
      "",
      "PostgreSQL (bench/postgres_compare.ts; wall µs per call, medians of alternating rounds):",
      JSON.stringify(postgres, null, 2),
    );
  }
  return out.join("\n");
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) =>
    Math.max(h.length, ...rows.map((r) => r[c].length))
  );
  const line = (cells: string[]) =>
    "  " +
    cells.map((
      cell,
      c,
    ) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join("  ");
  return [
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ].join(
    "\n",
  );
}
