/**
 * The Store against what a user would otherwise write (issue 9, item 10): raw
 * `node:sqlite` on the Go store's exact schema (migrations 0001/0002, the DDL in
 * `tests/helpers/go_store.ts`) running the Go store's SQL (`INSERT OR REPLACE`, a plain
 * audit `INSERT`, `SELECT data …`), with protobuf-es encoding and decoding, on the same
 * data: 20,000 `google.protobuf.BytesValue` resources of 280 encoded bytes, as in the
 * issue's run against the Go store itself, and 10 snapshots for each of 2,000 of them.
 * Both sides use protostore's connection settings (WAL, `synchronous=NORMAL`, …), so
 * the difference is the schema, the SQL and the Store's own work.
 *
 * @module
 */
import process from "node:process";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type BytesValue, BytesValueSchema } from "@bufbuild/protobuf/wkt";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openConnection, returnArrays } from "../src/sqlite/connection.ts";
import { openStore } from "../src/store/store.ts";
import { goSchemaSql } from "../tests/helpers/go_store.ts";
import { isoNow } from "./_data.ts";
import { prng } from "../tests/helpers/prng.ts";

/** One operation: µs per call on each side, and the Store's rate over raw's. */
export interface GoBaselineResult {
  operation: string;
  storeUs: number;
  rawUs: number;
  /** Store rate / raw rate, paired per round then the median (≥ 0.85x is the target). */
  ratio: number;
  /** What the Store does that the raw side does not, when it costs. */
  note?: string;
}

/** Sizes of the comparison. */
export interface GoBaselineConfig {
  resources: number;
  withHistory: number;
  batch: number;
  rounds: number;
}

/** The Go store's statements (its SQL; reads in the same order as the Store's). */
export const GO_SQL = {
  save:
    "INSERT OR REPLACE INTO resources (kind, id, data, updated_at) VALUES (?, ?, ?, ?)",
  get: "SELECT data FROM resources WHERE kind = ? AND id = ?",
  list: "SELECT data FROM resources WHERE kind = ? ORDER BY id",
  insertAudit:
    `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag)
    VALUES (?, ?, ?, ?, ?, ?)`,
  auditByHash: `SELECT data FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND version_hash = ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  auditByTag: `SELECT data FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND tag = ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  history: `SELECT id, archived_at, version_hash, tag, data FROM resource_audit
    WHERE kind = ? AND resource_id = ? ORDER BY archived_at DESC, id DESC`,
} as const;

const KIND = "blob";
const SNAPSHOTS = 10;

/** 280 encoded bytes: tag, a 2-byte length and 277 bytes of value. */
function message(i: number): BytesValue {
  const value = new Uint8Array(277);
  for (let j = 0; j < value.length; j++) value[j] = (i * 31 + j) & 0xff;
  return create(BytesValueSchema, { value });
}

type Side = "store" | "raw";

/**
 * Milliseconds of CPU time this process spent in each side, per round, the sides
 * alternating which goes first, after two warm-up rounds. CPU time rather than wall
 * time: on a machine shared by many jobs, waiting for a core is not the code's cost.
 */
function sample(
  sides: Record<Side, () => void>,
  rounds: number,
  before: (round: number, position: number) => void,
): Record<Side, number[]> {
  const names: Side[] = ["store", "raw"];
  const out: Record<Side, number[]> = { store: [], raw: [] };
  for (let round = 0; round < rounds + 2; round++) {
    for (let p = 0; p < names.length; p++) {
      const name = names[(round + p) % names.length];
      before(round, p);
      const start = process.cpuUsage();
      sides[name]();
      const used = process.cpuUsage(start);
      if (round >= 2) out[name].push((used.user + used.system) / 1000);
    }
  }
  return out;
}

/** Runs the comparison in `dir`. */
export function measureGoBaseline(
  dir: string,
  config: GoBaselineConfig,
  log: (line: string) => void,
): GoBaselineResult[] {
  const N = config.resources;
  const H = config.withHistory;
  const B = config.batch;
  const messages = Array.from({ length: N }, (_, i) => message(i));
  const ids = Array.from(
    { length: N },
    (_, i) => `r-${String(i).padStart(6, "0")}`,
  );
  log(
    `go baseline: ${N} resources, ${H} × ${SNAPSHOTS} snapshots, both files …`,
  );

  using store = openStore(`${dir}/go-compare-store.sqlite`);
  const go = openConnection(`${dir}/go-compare-go.sqlite`);
  go.exec("PRAGMA journal_mode = WAL");
  go.exec(goSchemaSql(2));
  const s = {} as Record<keyof typeof GO_SQL, StatementSync>;
  for (const [name, sql] of Object.entries(GO_SQL)) {
    s[name as keyof typeof GO_SQL] = go.prepare(sql);
  }
  for (const name of ["get", "list", "auditByHash", "auditByTag", "history"]) {
    returnArrays(s[name as keyof typeof GO_SQL]);
  }
  const t0 = Date.parse("2026-01-25T10:00:00.000Z");
  const at = (n: number) => new Date(t0 + n).toISOString();
  store.transaction(() => {
    for (let i = 0; i < N; i++) {
      store.saveResource(BytesValueSchema, KIND, ids[i], messages[i]);
    }
  });
  inTransaction(go, () => {
    for (let i = 0; i < N; i++) {
      s.save.run(KIND, ids[i], toBinary(BytesValueSchema, messages[i]), at(0));
    }
  });
  // Snapshot j of resource i: hash h<i>-<j>, tag v<j % 5>, the message of i + j.
  const realNow = Date.now;
  try {
    let tick = 0;
    Date.now = () => t0 + tick++;
    store.transaction(() => {
      for (let j = 0; j < SNAPSHOTS; j++) {
        for (let i = 0; i < H; i++) {
          store.saveAudit(
            BytesValueSchema,
            KIND,
            ids[i],
            messages[(i + j) % N],
            { versionHash: `h${i}-${j}`, tag: `v${j % 5}` },
          );
        }
      }
    });
  } finally {
    Date.now = realNow;
  }
  inTransaction(go, () => {
    let tick = 0;
    for (let j = 0; j < SNAPSHOTS; j++) {
      for (let i = 0; i < H; i++) {
        s.insertAudit.run(
          KIND,
          ids[i],
          toBinary(BytesValueSchema, messages[(i + j) % N]),
          at(tick++),
          `h${i}-${j}`,
          `v${j % 5}`,
        );
      }
    }
  });

  const rng = prng(9);
  const pick = Array.from({ length: N }, () => Math.floor(rng() * N));
  const pickH = Array.from({ length: N }, () => Math.floor(rng() * H));
  let cursor = 0;
  const before = (round: number, position: number) => {
    if (position === 0) cursor = (round * B) % N;
  };
  const idx = (k: number) => (cursor + k) % N;
  const results: GoBaselineResult[] = [];
  const run = (
    operation: string,
    units: number,
    sides: Record<Side, () => void>,
    note?: string,
  ) => {
    log(`  ${operation}`);
    const ms = sample(sides, config.rounds, before);
    const median = (v: number[]) => {
      const sorted = [...v].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      return sorted.length % 2
        ? sorted[mid]
        : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    results.push({
      operation,
      storeUs: (median(ms.store) * 1000) / units,
      rawUs: (median(ms.raw) * 1000) / units,
      ratio: median(ms.store.map((v, r) => ms.raw[r] / v)),
      ...(note ? { note } : {}),
    });
  };

  run("saveResource (autocommit)", B, {
    store: () => {
      for (let k = 0; k < B; k++) {
        const i = pick[idx(k)];
        store.saveResource(BytesValueSchema, KIND, ids[i], messages[i]);
      }
    },
    raw: () => {
      for (let k = 0; k < B; k++) {
        const i = pick[idx(k)];
        s.save.run(
          KIND,
          ids[i],
          toBinary(BytesValueSchema, messages[i]),
          isoNow(),
        );
      }
    },
  });
  run(`saveResource (${B} in a transaction)`, B, {
    store: () =>
      store.transaction(() => {
        for (let k = 0; k < B; k++) {
          const i = pick[idx(k)];
          store.saveResource(BytesValueSchema, KIND, ids[i], messages[i]);
        }
      }),
    raw: () =>
      inTransaction(go, () => {
        for (let k = 0; k < B; k++) {
          const i = pick[idx(k)];
          s.save.run(
            KIND,
            ids[i],
            toBinary(BytesValueSchema, messages[i]),
            isoNow(),
          );
        }
      }),
  });
  run("getResource", B, {
    store: () => {
      for (let k = 0; k < B; k++) {
        store.getResource(BytesValueSchema, KIND, ids[pick[idx(k)]]);
      }
    },
    raw: () => {
      for (let k = 0; k < B; k++) {
        const row = s.get.get(KIND, ids[pick[idx(k)]]) as unknown as [
          Uint8Array,
        ];
        fromBinary(BytesValueSchema, row[0]);
      }
    },
  });
  run(`listResources (${N} rows)`, 1, {
    store: () => {
      store.listResources(BytesValueSchema, KIND);
    },
    raw: () => {
      const rows = s.list.all(KIND) as unknown as [Uint8Array][];
      const out = new Array(rows.length);
      for (let i = 0; i < rows.length; i++) {
        out[i] = fromBinary(BytesValueSchema, rows[i][0]);
      }
    },
  });
  const lookup = (method: "getAuditByHash" | "getAuditByTag") =>
    run(method, B, {
      store: () => {
        for (let k = 0; k < B; k++) {
          const i = pickH[idx(k)];
          const value = method === "getAuditByHash"
            ? `h${i}-${k % SNAPSHOTS}`
            : `v${k % 5}`;
          store[method](BytesValueSchema, KIND, ids[i], value);
        }
      },
      raw: () => {
        const statement = method === "getAuditByHash"
          ? s.auditByHash
          : s.auditByTag;
        for (let k = 0; k < B; k++) {
          const i = pickH[idx(k)];
          const value = method === "getAuditByHash"
            ? `h${i}-${k % SNAPSHOTS}`
            : `v${k % 5}`;
          const row = statement.get(KIND, ids[i], value) as unknown as [
            Uint8Array,
          ];
          fromBinary(BytesValueSchema, row[0]);
        }
      },
    });
  lookup("getAuditByHash");
  lookup("getAuditByTag");
  const HB = Math.max(1, B >> 2);
  run(`listAuditHistory (${SNAPSHOTS} snapshots)`, HB, {
    store: () => {
      for (let k = 0; k < HB; k++) {
        store.listAuditHistory(BytesValueSchema, KIND, ids[pickH[idx(k)]]);
      }
    },
    raw: () => {
      for (let k = 0; k < HB; k++) {
        const rows = s.history.all(KIND, ids[pickH[idx(k)]]) as unknown as [
          number,
          string,
          string | null,
          string | null,
          Uint8Array,
        ][];
        const out = new Array(rows.length);
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i];
          // The same entries as the Store's: absent labels are absent keys.
          const entry: Record<string, unknown> = {
            id: row[0],
            archivedAt: new Date(row[1]),
            message: fromBinary(BytesValueSchema, row[4]),
          };
          if (row[2]) entry.versionHash = row[2];
          if (row[3]) entry.tag = row[3];
          out[i] = entry;
        }
      }
    },
  });
  // New snapshots go to resources without history, so the histories read stay 10 long.
  run(
    "saveAudit (autocommit)",
    B,
    {
      store: () => {
        for (let k = 0; k < B; k++) {
          const i = H + (idx(k) % (N - H));
          store.saveAudit(BytesValueSchema, KIND, ids[i], messages[i], {
            versionHash: "bench",
            tag: "bench",
          });
        }
      },
      raw: () => {
        for (let k = 0; k < B; k++) {
          const i = H + (idx(k) % (N - H));
          s.insertAudit.run(
            KIND,
            ids[i],
            toBinary(BytesValueSchema, messages[i]),
            isoNow(),
            "bench",
            "bench",
          );
        }
      },
    },
    "the Store checks that the resource exists (foreign key), records the type, and " +
      "keeps archivedAt from going back (a read of the latest time in the insert)",
  );
  go.close();
  return results;
}

function inTransaction(db: DatabaseSync, fn: () => void): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    fn();
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}
