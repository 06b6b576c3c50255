/**
 * Database files as the Go store left them, for tests and benchmarks: its v1/v2 DDL
 * (verbatim from issue 2) and its `schema_version(version, applied_at)` table,
 * `datetime('now')`-style text timestamps, writes with `INSERT OR REPLACE`, empty
 * strings for an absent hash or tag, and no recorded message types. Three builders:
 * {@linkcode writeGoDb} with given rows, {@linkcode writeSeededGoDb} with seeded random
 * rows (legacy data: NULL next to empty hashes and tags, audit rows whose resource is
 * gone), and {@linkcode fillGoDbBulk} with rows generated inside SQLite for benchmarks
 * (v1 legacy audit rows stored as resources `<kind>_audit/<resourceId>/<unixNanos>`).
 * All use raw `node:sqlite`, never protostore's code.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Rng } from "./prng.ts";

/** The Go store's `schema_version` table (issue 2). */
export const GO_SCHEMA_VERSION_DDL =
  `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,
  applied_at TEXT NOT NULL DEFAULT (datetime('now')));`;

/** The Go store's v1 DDL (issue 2), verbatim. */
export const GO_V1_DDL =
  `CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,
  updated_at TEXT NOT NULL DEFAULT (datetime('now')), PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_resources_kind_id ON resources(kind, id);`;

/** The Go store's v2 DDL (issue 2), verbatim. */
export const GO_V2_DDL =
  `CREATE TABLE IF NOT EXISTS resource_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
  resource_id TEXT NOT NULL, data BLOB NOT NULL, archived_at TEXT NOT NULL DEFAULT (datetime('now')),
  version_hash TEXT, tag TEXT);
CREATE INDEX IF NOT EXISTS idx_audit_resource ON resource_audit(kind, resource_id);
CREATE INDEX IF NOT EXISTS idx_audit_hash ON resource_audit(kind, resource_id, version_hash);
CREATE INDEX IF NOT EXISTS idx_audit_tag ON resource_audit(kind, resource_id, tag, archived_at DESC);`;

/** `applied_at` of the `schema_version` rows unless a builder is given others. */
export const GO_APPLIED_AT = "2026-01-20 09:00:00";

/**
 * `applied_at` of `schema_version` rows 1 and 2, as `datetime('now')` text; `null` (or
 * no second entry) leaves a row to the column default (the time of writing).
 */
export type GoAppliedAt = readonly [string | null, (string | null)?];

/**
 * The SQL the Go store had run on a file at `version`: the v1 (and v2) DDL, its
 * `schema_version` table and rows 1..`version`. Exported as text so a test can craft a
 * variant of it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { goSchemaSql } from "./go_store.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec(goSchemaSql(2));
 * assert(db.prepare("SELECT count(*) AS n FROM schema_version").get()?.n === 2);
 * db.close();
 * ```
 */
export function goSchemaSql(
  version: 1 | 2,
  appliedAt: GoAppliedAt = [GO_APPLIED_AT, GO_APPLIED_AT],
): string {
  const rows = [];
  for (let v = 1; v <= version; v++) {
    const at = appliedAt[v - 1];
    rows.push(
      `(${v}, ${
        typeof at === "string"
          ? `'${at.replaceAll("'", "''")}'`
          : "datetime('now')"
      })`,
    );
  }
  return [
    GO_V1_DDL,
    ...(version === 2 ? [GO_V2_DDL] : []),
    GO_SCHEMA_VERSION_DDL,
    `INSERT INTO schema_version (version, applied_at) VALUES ${
      rows.join(", ")
    };`,
  ].join("\n");
}

/**
 * A time as the Go store wrote it (`datetime('now')` text, whole seconds).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { goTime } from "./go_store.ts";
 *
 * assert(goTime(Date.UTC(2026, 0, 25, 10)) === "2026-01-25 10:00:00");
 * ```
 */
export function goTime(date: Date | number): string {
  return new Date(date).toISOString().slice(0, 19).replace("T", " ");
}

/** A row of the Go store's `resources`: `updatedAt` as `datetime('now')` text. */
export interface GoResource {
  kind: string;
  id: string;
  data: Uint8Array;
  /** e.g. `2026-01-25 10:00:00`. */
  updatedAt: string;
}

/** A row of the Go store's `resource_audit` (v2). */
export interface GoAudit {
  kind: string;
  resourceId: string;
  data: Uint8Array;
  /** e.g. `2026-01-25 10:00:00`. */
  archivedAt: string;
  /** Absent: the empty string, as the Go code wrote it; `null`: SQL NULL. */
  versionHash?: string | null;
  /** Absent: the empty string, as the Go code wrote it; `null`: SQL NULL. */
  tag?: string | null;
}

/** Writes rows the way the Go store did; see {@linkcode goRowWriter}. */
export interface GoRowWriter {
  /** `INSERT OR REPLACE` into `resources`. */
  resource(row: GoResource): void;
  /** `INSERT` into `resource_audit` (v2 files only). */
  audit(row: GoAudit): void;
}

/**
 * Prepared Go-style writes on an open connection to a Go-shaped file.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { goRowWriter, goSchemaSql } from "./go_store.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec(goSchemaSql(1));
 * goRowWriter(db).resource({ kind: "skill", id: "s1", data: new Uint8Array([8, 1]), updatedAt: "2026-01-25 10:00:00" });
 * db.close();
 * ```
 */
export function goRowWriter(db: DatabaseSync): GoRowWriter {
  const resource = db.prepare(
    "INSERT OR REPLACE INTO resources (kind, id, data, updated_at) VALUES (?, ?, ?, ?)",
  );
  // Prepared on first use: a v1 file has no resource_audit.
  let audit: StatementSync | undefined;
  return {
    resource(r) {
      resource.run(r.kind, r.id, r.data, r.updatedAt);
    },
    audit(a) {
      audit ??= db.prepare(
        `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag)
         VALUES (?, ?, ?, ?, ?, ?)`,
      );
      audit.run(
        a.kind,
        a.resourceId,
        a.data,
        a.archivedAt,
        a.versionHash === undefined ? "" : a.versionHash,
        a.tag === undefined ? "" : a.tag,
      );
    },
  };
}

/** What {@linkcode writeGoDb} and {@linkcode openGoDb} write. */
export interface GoDbInit {
  /** 1: resources only (schema_version row 1); 2: also resource_audit (rows 1 and 2). */
  version: 1 | 2;
  /** Times of the schema_version rows; default {@linkcode GO_APPLIED_AT} for both. */
  appliedAt?: GoAppliedAt;
  resources?: GoResource[];
  /** Only with version 2. */
  audit?: GoAudit[];
}

/**
 * Writes a database file as the Go store left it ({@linkcode GoDbInit}) and returns the
 * connection, for tests that add rows of their own with raw SQL. The file is in
 * rollback-journal mode, as Go left it.
 *
 * @example
 * ```ts
 * import { openGoDb } from "./go_store.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = openGoDb(`${dir}/go.sqlite`, { version: 2, appliedAt: ["2025-06-01 12:00:00", null] });
 * db.prepare("INSERT INTO resource_audit (kind, resource_id, data) VALUES ('skill', 's1', x'0801')").run();
 * db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openGoDb(path: string, init: GoDbInit): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    db.exec(goSchemaSql(init.version, init.appliedAt));
    const rows = goRowWriter(db);
    for (const r of init.resources ?? []) rows.resource(r);
    if (init.audit?.length) {
      assert.equal(init.version, 2, "audit rows need the v2 schema");
      for (const a of init.audit) rows.audit(a);
    }
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * Writes a database file as the Go store left it: {@linkcode openGoDb}, closed.
 *
 * @example
 * ```ts
 * import { writeGoDb } from "./go_store.ts";
 *
 * const dir = await Deno.makeTempDir();
 * writeGoDb(`${dir}/go.sqlite`, {
 *   version: 1,
 *   resources: [{ kind: "skill", id: "s1", data: new Uint8Array([8, 1]), updatedAt: "2026-01-25 10:00:00" }],
 * });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeGoDb(path: string, init: GoDbInit): void {
  openGoDb(path, init).close();
}

/** Size of a database written by {@linkcode writeSeededGoDb}. */
export interface SeededGoDbOptions {
  /** Live resources. */
  resources: number;
  /** Audit snapshots per resource (0..2×, random). */
  auditsPerResource: number;
  /** Mean payload bytes per row. */
  payload: number;
  /** Share of audit snapshots whose resource was deleted (orphans after 0003). */
  orphanFraction?: number;
}

/**
 * Writes a database shaped like one the Go store left at schema version 2, from
 * `seed`: second-precision text timestamps, empty-string hashes and tags next to real
 * ones and NULLs, audit rows whose resource was deleted, rows of several kinds, data
 * that are valid `Skill` bytes. The same seed gives the same rows. The file is left in
 * rollback-journal mode, as Go left it.
 *
 * @example
 * ```ts
 * import { writeSeededGoDb } from "./go_store.ts";
 *
 * const dir = await Deno.makeTempDir();
 * writeSeededGoDb(`${dir}/go.sqlite`, 1, { resources: 10, auditsPerResource: 2, payload: 50 });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeSeededGoDb(
  path: string,
  seed: number,
  options: SeededGoDbOptions,
): void {
  const rng = new Rng(seed);
  const db = new DatabaseSync(path);
  try {
    db.exec(goSchemaSql(2, ["2025-01-01 10:00:00", "2025-06-01 10:00:00"]));
    db.exec("BEGIN");
    const rows = goRowWriter(db);
    const base = Date.UTC(2025, 0, 1) / 1000;
    const time = (s: number) => goTime((base + s) * 1000);
    const kinds = ["agent", "skill", "workflow"];
    const orphanFraction = options.orphanFraction ?? 0.05;
    for (let i = 0; i < options.resources; i++) {
      const kind = kinds[i % kinds.length];
      const id = `${kind}-${i.toString(36)}-${rng.u32().toString(16)}`;
      const payload = () =>
        skillBytes(
          `${kind}/${id}`,
          rng.bytes(rng.int(options.payload * 2) + 1),
        );
      const t = rng.int(10_000_000);
      const audits = rng.int(options.auditsPerResource * 2 + 1);
      for (let a = 0; a < audits; a++) {
        const hashChoice = rng.int(3);
        // Property order is draw order: data, then hash, then tag.
        rows.audit({
          kind,
          resourceId: id,
          data: payload(),
          archivedAt: time(t - audits + a),
          versionHash: hashChoice === 0
            ? null
            : hashChoice === 1
            ? ""
            : `h${rng.u32()}`,
          tag: rng.chance(0.3) ? `v${a}` : rng.chance(0.5) ? "" : null,
        });
      }
      // The Go store deleted resources without their history: those become orphans.
      if (!rng.chance(orphanFraction)) {
        rows.resource({ kind, id, data: payload(), updatedAt: time(t) });
      }
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

/** A small valid protobuf (`Skill{name, payload}`), for raw-SQL rows. */
function skillBytes(name: string, payload: Uint8Array): Uint8Array {
  return new BinaryWriter()
    .tag(1, WireType.LengthDelimited).string(name)
    .tag(10, WireType.LengthDelimited).bytes(payload)
    .finish();
}

/** What {@linkcode fillGoDbBulk} writes. */
export interface GoBulkShape {
  /** 1: `schema_version` row 1 only, legacy snapshots stored as resources with ids
   * `skill_audit/<resourceId>/<unixNanos>` (0002 moves them); 2: rows 1 and 2 with a
   * `resource_audit` table. */
  version: 1 | 2;
  /** Live resources `skill/skill-000000` … */
  resources: number;
  /** v1: legacy audit resources; v2: `resource_audit` rows (a tenth of them orphans). */
  audits: number;
  /** Row data, cycled (row i gets `data[i % data.length]`). */
  data: readonly Uint8Array[];
  /** Unix seconds of the first row of each table; row i is i seconds later. */
  baseSeconds: number;
  /** Times of the schema_version rows; default {@linkcode GO_APPLIED_AT} for both. */
  appliedAt?: GoAppliedAt;
}

/**
 * Writes the Go schema and {@linkcode GoBulkShape}'s rows on `db` in one transaction,
 * generated inside SQLite (`INSERT … SELECT` over a recursive CTE), so a hundred
 * thousand rows take well under a second. v2 audit rows have empty hashes (one in
 * three) and tags (three in four). The caller opens `db` with the pragmas it wants.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { fillGoDbBulk } from "./go_store.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * fillGoDbBulk(db, { version: 1, resources: 10, audits: 20, data: [new Uint8Array([8, 1])], baseSeconds: 1_769_335_200 });
 * assert(db.prepare("SELECT count(*) AS n FROM resources").get()?.n === 30);
 * db.close();
 * ```
 */
export function fillGoDbBulk(db: DatabaseSync, shape: GoBulkShape): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(goSchemaSql(shape.version, shape.appliedAt));
    db.exec(
      "CREATE TEMP TABLE go_data (n INTEGER PRIMARY KEY, data BLOB NOT NULL)",
    );
    const insert = db.prepare(
      "INSERT INTO temp.go_data (n, data) VALUES (?, ?)",
    );
    shape.data.forEach((data, n) => insert.run(n, data));
    // Parameters go in as BigInt: node:sqlite binds a JS number as REAL.
    const count = BigInt(shape.data.length);
    const base = BigInt(shape.baseSeconds);
    db.prepare(
      `INSERT INTO resources (kind, id, data, updated_at)
       WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
       SELECT 'skill', 'skill-' || printf('%06d', i), (SELECT data FROM temp.go_data WHERE n = i % ?2),
              datetime(?3 + i, 'unixepoch')
       FROM s`,
    ).run(BigInt(shape.resources), count, base);
    if (shape.version === 1) {
      // Legacy snapshots: resources of the same kind whose id carries the nanosecond time.
      db.prepare(
        `INSERT INTO resources (kind, id, data, updated_at)
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
         SELECT 'skill', 'skill_audit/skill-' || printf('%06d', i % ?2) || '/' ||
                  ((?3 + i) * 1000000000 + (i * 7919) % 1000000000),
                (SELECT data FROM temp.go_data WHERE n = i % ?4), datetime(?3 + i, 'unixepoch')
         FROM s`,
      ).run(BigInt(shape.audits), BigInt(shape.resources), base, count);
    } else {
      // Every tenth row belongs to a resource that no longer exists (an orphan).
      db.prepare(
        `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag)
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
         SELECT 'skill',
                CASE WHEN i % 10 = 9 THEN printf('gone-%06d', i) ELSE printf('skill-%06d', i % ?2) END,
                (SELECT data FROM temp.go_data WHERE n = i % ?4), datetime(?3 + i, 'unixepoch'),
                CASE WHEN i % 3 = 0 THEN '' ELSE printf('sha256:%08x', i) END,
                CASE WHEN i % 4 = 0 THEN 'v' || (i % 7) ELSE '' END
         FROM s`,
      ).run(BigInt(shape.audits), BigInt(shape.resources), base, count);
    }
    db.exec("DROP TABLE temp.go_data; COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}
