/**
 * Deterministic benchmark data shared by `bench/*.bench.ts` and `bench/compare.ts`:
 * Go-daemon-shaped `Skill` messages, fast bulk database builders (one transaction of
 * `INSERT ... SELECT` over a recursive CTE, so a million audit rows take seconds),
 * Go-store v1/v2 files (built by `tests/helpers/go_store.ts`), and the raw
 * `node:sqlite` statements that mirror the Store's SQL for side-by-side timing. The
 * seeded PRNG is `tests/helpers/prng.ts`.
 *
 * @module
 */
import { ARRAY_ROWS, SQL } from "../src/store/sql.ts";
import { create, toBinary } from "@bufbuild/protobuf";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  enableWal,
  openConnection,
  returnArrays,
} from "../src/sqlite/connection.ts";
import { applyMigrations } from "../src/migrate/runner.ts";
import { MIGRATIONS } from "../src/migrate/files.ts";
import { openStore } from "../src/store/store.ts";
import { SchemaIds } from "../src/store/schemas.ts";
import {
  type Skill,
  SkillSchema,
  Visibility,
} from "../tests/fixtures/gen/example/v1/example_pb.ts";
import { fillGoDbBulk, type GoBulkShape } from "../tests/helpers/go_store.ts";
import { prng } from "../tests/helpers/prng.ts";

export { SkillSchema };
export type { Skill };

/** The kind every generated resource has. */
export const KIND = "skill";

const WORDS = [
  "lint",
  "review",
  "deploy",
  "summarise",
  "translate",
  "search",
  "plan",
  "test",
  "format",
  "triage",
  "refactor",
  "document",
];

/** The resource id of resource number `n`: `skill-000042`. */
export function resourceId(n: number): string {
  return `skill-${String(n).padStart(6, "0")}`;
}

/**
 * A `Skill` shaped like the Go daemon's resources (~200 bytes encoded): strings, a
 * repeated field, a map, an enum, a Timestamp, a nested message and a small payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeSkill } from "./_data.ts";
 * import { prng } from "../tests/helpers/prng.ts";
 * assert(makeSkill(prng(1), 0).name === "skill-000000");
 * ```
 */
export function makeSkill(rng: () => number, n: number): Skill {
  const word = () => WORDS[Math.floor(rng() * WORDS.length)];
  const payload = new Uint8Array(32);
  for (let i = 0; i < payload.length; i++) {
    payload[i] = Math.floor(rng() * 256);
  }
  return create(SkillSchema, {
    name: resourceId(n),
    versionHash: `sha256:${Math.floor(rng() * 2 ** 32).toString(16)}`,
    tag: `v${n % 5}`,
    description: `${word()} then ${word()} the ${word()} output of step ${n}`,
    tools: [word(), word(), word()],
    labels: { team: `team-${n % 17}`, tier: word() },
    visibility: n % 2 === 0 ? Visibility.PUBLIC : Visibility.PRIVATE,
    createdAt: { seconds: BigInt(1_769_335_200 + n), nanos: (n * 7919) % 1e9 },
    limits: {
      maxTokens: 1024 + (n % 4096),
      temperature: rng(),
      timeoutMs: BigInt(30_000 + n),
    },
    payload,
  });
}

/**
 * `count` messages from one seed (message i has name `resourceId(i)`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeSkills } from "./_data.ts";
 * assert(makeSkills(3, 1).length === 3);
 * ```
 */
export function makeSkills(count: number, seed = 42): Skill[] {
  const rng = prng(seed);
  const out: Skill[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = makeSkill(rng, i);
  return out;
}

/**
 * `count` messages encoded with `toBinary`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeAll, makeSkills } from "./_data.ts";
 * assert(encodeAll(makeSkills(2)).length === 2);
 * ```
 */
export function encodeAll(messages: readonly Skill[]): Uint8Array[] {
  return messages.map((m) => toBinary(SkillSchema, m));
}

/** How big a generated database is. */
export interface DbShape {
  /** Resources of kind {@linkcode KIND}, ids `resourceId(0 .. resources-1)`. */
  resources: number;
  /** Audit snapshots per resource (0 for none). */
  snapshotsPerResource: number;
  /** Distinct encoded messages cycled through as row data (default 256). */
  templates?: number;
  /**
   * Migrate only up to this schema version (default: all), for baselines of code that
   * predates later files. From version 5 on, rows get revisions in row order.
   */
  schemaVersion?: number;
}

/** Version hash of audit row number `i` (0-based) as {@linkcode buildStoreDb} writes it. */
export function auditHash(i: number): string {
  return `sha256:${hex8(i)}${
    hex8(Number((BigInt(i) * 2654435761n) % 4294967296n))
  }`;
}

/** Tag of snapshot `j` (0-based) of a resource: `v0`..`v4`, so a tag repeats twice in 10. */
export function auditTag(j: number): string {
  return `v${j % 5}`;
}

/** Audit row number of snapshot `j` of resource `r` in a database of `resources`. */
export function auditRow(resources: number, r: number, j: number): number {
  return j * resources + r;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** The first generated timestamp: 2026-01-25T10:00:00.000Z, in seconds. */
export const BASE_SECONDS = 1_769_335_200;

/**
 * Creates a migrated protostore database at `path` with `shape.resources` resources and,
 * interleaved in time like real use (row i belongs to resource i % resources, one second
 * apart), `snapshotsPerResource` audit snapshots each. Rows carry valid `Skill` bytes and
 * the `message_schemas` id of `SkillSchema`, exactly as the Store writes them. Runs in one
 * transaction with foreign keys off and a large cache, all inside SQLite.
 *
 * @example
 * ```ts
 * import { buildStoreDb } from "./_data.ts";
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * buildStoreDb(path, { resources: 10, snapshotsPerResource: 2 });
 * ```
 */
export function buildStoreDb(path: string, shape: DbShape): void {
  const templates = shape.templates ?? 256;
  const version = shape.schemaVersion ?? Infinity;
  const revisions = version >= 5;
  fillStoreDb(path, {
    templates,
    foreignKeysOff: true,
    schemaVersion: version,
  }, (db, schemaId) => {
    // Parameters go in as BigInt: node:sqlite binds a JS number as REAL.
    db.prepare(
      `INSERT INTO resources (kind, id, data, updated_at, schema_id${
        revisions ? ", revision, create_revision" : ""
      })
       WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
       SELECT '${KIND}', 'skill-' || printf('%06d', i),
              (SELECT data FROM temp.tpl WHERE n = i % ?2),
              strftime('%Y-%m-%dT%H:%M:%S', ?3 + i, 'unixepoch') || '.000Z', ?4${
        revisions ? ", i + 1, i + 1" : ""
      }
       FROM s`,
    ).run(
      BigInt(shape.resources),
      BigInt(templates),
      BigInt(BASE_SECONDS),
      BigInt(schemaId),
    );
    const audits = shape.resources * shape.snapshotsPerResource;
    if (audits > 0) {
      db.prepare(
        `INSERT INTO resource_audit
           (kind, resource_id, data, archived_at, version_hash, tag, schema_id)
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
         SELECT '${KIND}', 'skill-' || printf('%06d', i % ?2),
                (SELECT data FROM temp.tpl WHERE n = i % ?3),
                strftime('%Y-%m-%dT%H:%M:%S', ?4 + i, 'unixepoch') || '.000Z',
                printf('sha256:%08x%08x', i, (i * 2654435761) % 4294967296),
                'v' || ((i / ?2) % 5), ?5
         FROM s`,
      ).run(
        BigInt(audits),
        BigInt(shape.resources),
        BigInt(templates),
        BigInt(BASE_SECONDS),
        BigInt(schemaId),
      );
    }
    // The rows' revisions are 1..resources, as migration 0005 gives them.
    if (revisions) {
      db.prepare("UPDATE change_log SET compacted_through = ?").run(
        BigInt(shape.resources),
      );
    }
  });
}

/**
 * Creates a migrated protostore database at `path` with `count` resources spread over
 * `kinds` kinds (`kind-0` …), no audit rows: the shape `inspect` summarises.
 *
 * @example
 * ```ts
 * import { buildKindsDb } from "./_data.ts";
 * buildKindsDb(`${await Deno.makeTempDir()}/db.sqlite`, 100, 3);
 * ```
 */
export function buildKindsDb(path: string, count: number, kinds: number): void {
  fillStoreDb(
    path,
    { templates: 256, foreignKeysOff: false },
    (db, schemaId) => {
      db.prepare(
        `INSERT INTO resources (kind, id, data, updated_at, schema_id)
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
         SELECT 'kind-' || (i % ?2), printf('r-%08d', i), (SELECT data FROM temp.tpl WHERE n = i % 256),
                strftime('%Y-%m-%dT%H:%M:%S', ?3 + i, 'unixepoch') || '.000Z', ?4
         FROM s`,
      ).run(
        BigInt(count),
        BigInt(kinds),
        BigInt(BASE_SECONDS),
        BigInt(schemaId),
      );
    },
  );
}

/**
 * Creates a migrated store at `path`, then runs `fill(db, schemaId)` (the id of
 * `SkillSchema`) in one transaction with a large cache and `templates` encoded Skills
 * in `temp.tpl`; rolls back when `fill` throws.
 */
function fillStoreDb(
  path: string,
  options: {
    templates: number;
    foreignKeysOff: boolean;
    schemaVersion?: number;
  },
  fill: (db: DatabaseSync, schemaId: number) => void,
): void {
  const version = options.schemaVersion ?? Infinity;
  if (version === Infinity) openStore(path).close();
  else {
    const db = openConnection(path);
    applyMigrations(db, MIGRATIONS.filter((m) => m.version <= version));
    enableWal(db);
    db.close();
  }
  const db = openConnection(path);
  try {
    const schemaId = schemaIdOf(db);
    if (options.foreignKeysOff) db.exec("PRAGMA foreign_keys = OFF");
    db.exec("PRAGMA cache_size = -1048576");
    db.exec("BEGIN IMMEDIATE");
    fillTemplates(db, options.templates);
    fill(db, schemaId);
    db.exec("DROP TABLE temp.tpl; COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  } finally {
    db.close();
  }
}

function schemaIdOf(db: DatabaseSync): number {
  db.exec("BEGIN IMMEDIATE");
  const id = new SchemaIds(db).idOf(SkillSchema);
  db.exec("COMMIT");
  return id;
}

function fillTemplates(db: DatabaseSync, count: number): void {
  db.exec("CREATE TEMP TABLE tpl (n INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  const insert = db.prepare("INSERT INTO temp.tpl (n, data) VALUES (?, ?)");
  const bytes = encodeAll(makeSkills(count, 7));
  for (let n = 0; n < count; n++) insert.run(n, bytes[n]);
}

/** What {@linkcode buildGoDb} writes: see {@linkcode GoBulkShape}. */
export type GoDbShape = Pick<GoBulkShape, "version" | "resources" | "audits">;

/**
 * Writes a database as the Go store left it (its DDL, `datetime('now')`-style
 * second-precision text times, empty strings for absent hash/tag, no type records),
 * with rows of {@linkcode KIND} carrying valid `Skill` bytes, timed from
 * {@linkcode BASE_SECONDS}. The file is left in WAL mode (Go's were not).
 *
 * @example
 * ```ts
 * import { buildGoDb } from "./_data.ts";
 * const path = `${await Deno.makeTempDir()}/go.sqlite`;
 * buildGoDb(path, { version: 1, resources: 10, audits: 20 });
 * ```
 */
export function buildGoDb(path: string, shape: GoDbShape): void {
  const db = openConnection(path);
  try {
    db.exec("PRAGMA journal_mode = WAL; PRAGMA cache_size = -1048576");
    fillGoDbBulk(db, {
      ...shape,
      data: encodeAll(makeSkills(256, 7)),
      baseSeconds: BASE_SECONDS,
      appliedAt: ["2025-06-01 09:00:00", "2025-09-01 09:00:00"],
    });
  } finally {
    db.close();
  }
}

/** The SQL the Store runs, used as is for the raw baseline (same text, same plans). */
export const STORE_SQL = SQL;

/** Raw prepared statements of {@linkcode STORE_SQL} on one connection. */
export type RawStatements = { [K in keyof typeof STORE_SQL]: StatementSync };

/**
 * Prepares {@linkcode STORE_SQL} on `db`, lists in arrays mode like the Store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rawStatements } from "./_data.ts";
 * import { openStore, Store } from "../src/store/store.ts";
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * const raw = rawStatements(Store.connectionOf(store));
 * assert(raw.get.get("skill", "x") === undefined);
 * ```
 */
export function rawStatements(db: DatabaseSync): RawStatements {
  const out = {} as Record<string, StatementSync>;
  for (const [name, sql] of Object.entries(STORE_SQL)) {
    out[name] = db.prepare(sql);
  }
  for (const name of ARRAY_ROWS) returnArrays(out[name]);
  return out as RawStatements;
}

let lastMs = -1;
let lastIso = "";
/**
 * The current time as ISO-8601 text, cached per millisecond as the Store does. Raw
 * writes need a fresh time too: a row rewritten with identical bytes leaves its page
 * clean, and SQLite then writes nothing at all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isoNow } from "./_data.ts";
 * assert(isoNow().endsWith("Z"));
 * ```
 */
export function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/**
 * A temp directory removed by `using` at scope end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tempDir } from "./_data.ts";
 * using dir = tempDir();
 * assert(dir.path.length > 0);
 * ```
 */
export function tempDir(): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix: "protostore-bench-" });
  return {
    path,
    [Symbol.dispose]() {
      Deno.removeSync(path, { recursive: true });
    },
  };
}

/**
 * Copies a database file (after a checkpoint, the main file is the whole database).
 *
 * @example
 * ```ts
 * import { buildStoreDb, copyDb } from "./_data.ts";
 * const dir = await Deno.makeTempDir();
 * buildStoreDb(`${dir}/a.sqlite`, { resources: 1, snapshotsPerResource: 0 });
 * copyDb(`${dir}/a.sqlite`, `${dir}/b.sqlite`);
 * ```
 */
export function copyDb(from: string, to: string): void {
  const db = openConnection(from);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  Deno.copyFileSync(from, to);
  for (const suffix of ["-wal", "-shm"]) {
    try {
      Deno.removeSync(to + suffix);
    } catch {
      // absent: nothing to remove
    }
  }
}
