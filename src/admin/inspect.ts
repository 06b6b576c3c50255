/**
 * Read-only inspection of a database file: the overview (file, schema, per-kind counts,
 * orphans, integrity) and one resource decoded. Opens the file read-only and never
 * migrates, so it works on read-only files, on the Go store's files and on files with
 * pending migrations, and leaves the bytes as they were.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { readText, wholeText } from "../sqlite/connection.ts";
import { plainTable, refusedRead } from "../sqlite/untrusted.ts";
import { sqliteErrorCode } from "../sqlite/errors.ts";
import {
  describeResource,
  messageOf,
  NotFoundError,
  StoreError,
} from "../errors.ts";
import {
  type AppliedMigration,
  type MigrationPlan,
  planMigrations,
} from "../migrate/plan.ts";
import { parseSqliteTime } from "../sqlite/time.ts";
import { openUntrusted, requireProtostore, requireTable } from "./read_only.ts";
import { type DecodeOptions, RowDecoder } from "./row_decoder.ts";
import type { DecodedWith } from "../decode/descriptors.ts";
import { type ChangeLogExtent, readChangeLogExtent } from "../store/changes.ts";

/** Counts for one kind. */
export interface KindSummary {
  /** The kind, e.g. `agent`. */
  kind: string;
  /** Live resources of this kind. */
  resources: number;
  /** Audit snapshots of live resources of this kind. */
  auditRecords: number;
  /** Audit snapshots of this kind whose resource no longer exists. */
  orphanAuditRecords: number;
  /** Bytes of the resources' messages. */
  bytes: number;
  /** Bytes of the audit snapshots' messages (orphans included). */
  auditBytes: number;
  /** The newest `updated_at` among the resources; `null` when none. */
  lastUpdated: Date | null;
}

/** What {@linkcode inspectDatabase} reports. */
export interface DatabaseOverview {
  /** The database file (on PostgreSQL: the connection string without its password). */
  path: string;
  /** `sqlite`, or `postgres` for a PostgreSQL store (its sizes are of the schema's
   * tables; the server's version is in `sqliteVersion`). */
  backend: "sqlite" | "postgres";
  /** Size of the database file in bytes (without its `-wal`). */
  size: number;
  /** Size of the `-wal` file in bytes, 0 when there is none. */
  walSize: number;
  /** SQLite page size in bytes. */
  pageSize: number;
  /** Pages in the database. */
  pageCount: number;
  /** Unused pages (reclaimable with VACUUM). */
  freePages: number;
  /** `wal`, `delete`, … */
  journalMode: string;
  /** The SQLite library version reading the file. */
  sqliteVersion: string;
  /** The highest applied schema version (0 when none). */
  schemaVersion: number;
  /** Rows of `schema_version`, oldest first. */
  appliedMigrations: AppliedMigration[];
  /** Migration files this code would apply. */
  pendingMigrations: { version: number; name: string }[];
  /** What the migration checks would refuse on; empty when fine. */
  problems: string[];
  /** Per-kind counts, ordered by kind. */
  kinds: KindSummary[];
  /** All live resources. */
  resources: number;
  /** All audit snapshots of live resources. */
  auditRecords: number;
  /** All audit snapshots whose resource no longer exists. */
  orphanAuditRecords: number;
  /** Message types recorded by the Store (`message_schemas`), by name. */
  messageTypes: string[];
  /** With `check`: `"ok"`, or the damage met while reading and the problems of
   * integrity_check and foreign_key_check; otherwise `null`. */
  integrity: "ok" | string[] | null;
  /** With `check` and problems found: what to do about them; otherwise `null`. */
  advice: string | null;
  /** The current revision and the change log's extent; `null` before revisions (0005). */
  revisions: ChangeLogExtent | null;
}

/** Options of {@linkcode inspectDatabase}. */
export interface InspectOptions {
  /** Also run `PRAGMA integrity_check` and `foreign_key_check`, and report damage met
   * while reading as findings instead of failing. */
  check?: boolean;
  /** Called now and then during the long scans with what is being read and how far. */
  onProgress?: (progress: InspectProgress) => void;
}

/** How far {@linkcode inspectDatabase} got, for a progress display. */
export interface InspectProgress {
  /** What is being read, e.g. `resources` or `integrity check`. */
  phase: string;
  /** Rows read so far in this phase (0 when the phase does not count rows). */
  rows: number;
  /** Bytes of stored messages read so far across phases. */
  bytes: number;
  /** How much of this phase is done, 0 to 1, when known. */
  fraction?: number;
}

/**
 * The overview of the database at `path`, read-only. With `check`, also runs
 * `PRAGMA integrity_check` and `PRAGMA foreign_key_check` (reads every page), and damage
 * met while reading becomes a finding in `integrity` (with `advice`) instead of an error.
 *
 * The file is not trusted: objects that are not the plain tables protostore keeps (a view
 * named `resources`, say) are not read, and are listed in `problems`; SQL stored in the
 * file never runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectDatabase, migrate } from "@protostore/store";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * migrate(path);
 * const overview = inspectDatabase(path, { check: true });
 * assert(overview.pendingMigrations.length === 0 && overview.integrity === "ok");
 * ```
 */
export function inspectDatabase(
  path: string,
  options: InspectOptions = {},
): DatabaseOverview {
  const db = openUntrusted(path);
  // The overview scans every row once: SQLite's default small cache and plain reads
  // scan ~25% faster than the Store's 64 MiB cache and memory map, which pay off for
  // repeated point lookups, not for one pass (measured on 1,000,000 resources).
  db.exec("PRAGMA mmap_size = 0; PRAGMA cache_size = -2000;");
  const check = options.check ?? false;
  // Damage met while reading is a finding of --check; without --check, an error.
  const damage: string[] = [];
  const reading = <T>(what: string, fallback: T, read: () => T): T => {
    try {
      return read();
    } catch (error) {
      if (!isCorruption(error)) throw error;
      if (!check) {
        throw new StoreError(
          `${path} is damaged: reading ${what} failed (${messageOf(error)}); ` +
            `run inspect --check to list the damage, then ${REPAIR_ADVICE}`,
          { cause: error, code: "corrupt" },
        );
      }
      damage.push(`reading ${what} failed: ${messageOf(error)}`);
      return fallback;
    }
  };
  try {
    const pragma = (name: string) =>
      reading(
        "the file header",
        0,
        () => Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0],
      );
    const problems: string[] = [];
    const plan = reading(
      "schema_version",
      EMPTY_PLAN,
      () => planMigrations(db),
    );
    problems.unshift(...plan.problems);
    const kinds = reading(
      "the resources and their history",
      [],
      () => kindSummaries(db, problems, options.onProgress),
    );
    const sum = (key: "resources" | "auditRecords" | "orphanAuditRecords") =>
      kinds.reduce((n, k) => n + k[key], 0);
    const overview: DatabaseOverview = {
      path,
      backend: "sqlite",
      size: Deno.statSync(path).size,
      walSize: fileSize(`${path}-wal`),
      pageSize: Number(pragma("page_size")),
      pageCount: Number(pragma("page_count")),
      freePages: Number(pragma("freelist_count")),
      journalMode: String(pragma("journal_mode")),
      sqliteVersion: String(
        (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v,
      ),
      schemaVersion: plan.schemaVersion,
      appliedMigrations: plan.applied,
      pendingMigrations: plan.pending.map(({ version, name }) => ({
        version,
        name,
      })),
      problems,
      kinds,
      resources: sum("resources"),
      auditRecords: sum("auditRecords"),
      orphanAuditRecords: sum("orphanAuditRecords"),
      messageTypes: reading("message_schemas", [], () => messageTypes(db)),
      integrity: null,
      advice: null,
      revisions: reading(
        "the change log",
        null,
        () => hasRevisions(db) ? readChangeLogExtent(db) : null,
      ),
    };
    if (check) {
      options.onProgress?.({ phase: "integrity check", rows: 0, bytes: 0 });
      const checked = reading(
        "every page (integrity check)",
        [],
        () => integrity(db),
      );
      const found = [...damage, ...checked];
      overview.integrity = found.length === 0 ? "ok" : found;
      if (found.length > 0) {
        overview.advice = damage.length > 0 ||
            found.some((p) => !p.startsWith(FOREIGN_KEY))
          ? `the file is damaged: ${REPAIR_ADVICE}`
          : "rows refer to parents that do not exist (written with foreign keys " +
            "off): delete those rows, or restore a backup";
      }
    }
    return overview;
  } catch (error) {
    throw refusedRead(db, error, path);
  } finally {
    db.close();
  }
}

/** What to do about a damaged file, for messages and `advice`. */
const REPAIR_ADVICE = "restore it from a backup, or recover what is readable " +
  "with `sqlite3 DAMAGED.sqlite .recover | sqlite3 RECOVERED.sqlite` and check " +
  "the copy with inspect --check";

const FOREIGN_KEY = "foreign key: ";

/** A plan for a file whose migration history cannot be read. */
const EMPTY_PLAN = {
  schemaVersion: 0,
  applied: [],
  pending: [],
  problems: [],
} as const satisfies Pick<
  MigrationPlan,
  "schemaVersion" | "applied" | "pending" | "problems"
>;

/** SQLITE_CORRUPT or SQLITE_NOTADB, raw or already classified. */
function isCorruption(error: unknown): boolean {
  return sqliteErrorCode(error) === "corrupt" ||
    (error instanceof StoreError && error.code === "corrupt");
}

/** One resource as {@linkcode inspectResource} shows it. */
export interface InspectedResource {
  /** The kind. */
  kind: string;
  /** The id. */
  id: string;
  /** When it was last saved. */
  updatedAt: Date | null;
  /** Size of the stored message in bytes. */
  size: number;
  /** The message type: recorded by the Store, or given by the user; `null` if unknown. */
  type: string | null;
  /** How the message was decoded (see `decodeBlob`). */
  decodedWith: DecodedWith;
  /** The message as protobuf JSON, a wire dump, or base64. */
  message: unknown;
  /** Why better ways of decoding failed, if they did. */
  reason?: string;
  /** The revision of its last change; absent before revisions (0005). */
  revision?: number;
  /** The revision that created it; absent before revisions. */
  createRevision?: number;
  /** The revisions at which the change log records a change of it, oldest first. */
  changeRevisions?: number[];
}

/**
 * Resource (kind, id) of the database at `path`, decoded to JSON: with the type the
 * Store recorded, else with `options` descriptors, else as a schema-less wire dump.
 * Throws {@linkcode NotFoundError} when it does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectResource, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { name: "r" }));
 * const shown = inspectResource(path, "agent", "a1");
 * assert(shown.type === "google.protobuf.Struct");
 * assert((shown.message as { name: string }).name === "r");
 * ```
 */
export function inspectResource(
  path: string,
  kind: string,
  id: string,
  options: DecodeOptions = {},
): InspectedResource {
  const db = openUntrusted(path);
  try {
    requireProtostore(db, path);
    const resource = readResource(db, new RowDecoder(db, options), kind, id);
    if (resource === undefined) {
      throw resourceNotFound(kind, id, path);
    }
    return resource;
  } catch (error) {
    throw refusedRead(db, error, path);
  } finally {
    db.close();
  }
}

/** Reads and decodes one resource on an open connection; `undefined` when absent. */
export function readResource(
  db: DatabaseSync,
  decoder: RowDecoder,
  kind: string,
  id: string,
): InspectedResource | undefined {
  const columns = requireTable(db, "resources");
  if (columns.length === 0) return undefined;
  const schemaId = columns.includes("schema_id") ? "schema_id" : "NULL";
  const revisions = hasRevisions(db);
  const row = db.prepare(
    `SELECT updated_at, data, ${schemaId} AS schema_id${
      revisions ? ", revision, create_revision" : ""
    } FROM resources WHERE kind = ? AND id = ?`,
  ).get(kind, id) as {
    updated_at: unknown;
    data: Uint8Array;
    schema_id: number | null;
    revision?: number;
    create_revision?: number;
  } | undefined;
  if (row === undefined) return undefined;
  return inspectedRow(
    decoder,
    kind,
    id,
    row,
    revisions
      // The log has no index by resource: a scan, fine for one admin read.
      ? (db.prepare(
        "SELECT revision FROM resource_changes WHERE kind = ? AND id = ? ORDER BY revision",
      ).all(kind, id) as { revision: number }[]).map((r) => r.revision)
      : undefined,
  );
}

/** The error for resource (kind, id) missing from the store at `where` (a path or label). */
export function resourceNotFound(
  kind: string,
  id: string,
  where: string,
): NotFoundError {
  return new NotFoundError(
    kind,
    id,
    `resource ${describeResource(kind, id)} does not exist in ${where}`,
  );
}

/** A resource row as the admin tools show it, decoded; read from either backend. */
export function inspectedRow(
  decoder: RowDecoder,
  kind: string,
  id: string,
  row: {
    updated_at: unknown;
    data: Uint8Array;
    schema_id: number | null;
    revision?: number;
    create_revision?: number;
  },
  changeRevisions: number[] | undefined,
): InspectedResource {
  const data = toBytes(row.data);
  const decoded = decoder.decode(kind, data, row.schema_id);
  return {
    kind,
    id,
    updatedAt: parseSqliteTime(row.updated_at),
    size: data.length,
    type: decoded.type ?? decoder.typeOf(row.schema_id) ?? null,
    decodedWith: decoded.decodedWith,
    message: decoded.message,
    ...(decoded.reason ? { reason: decoded.reason } : {}),
    ...(changeRevisions !== undefined
      ? {
        revision: row.revision,
        createRevision: row.create_revision,
        changeRevisions,
      }
      : {}),
  };
}

/** Whether the file has revisions (migration 0005): its tables and columns. */
function hasRevisions(db: DatabaseSync): boolean {
  // requireTable refuses a view or virtual table under these names: never read it.
  try {
    return requireTable(db, "resources").includes("revision") &&
      requireTable(db, "resource_changes").length > 0 &&
      requireTable(db, "change_log").length > 0;
  } catch (error) {
    if (error instanceof StoreError) return false;
    throw error;
  }
}

/** A `data` value as bytes: the Go store's rows may hold text where bytes belong. */
export function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value === null || value === undefined) return new Uint8Array();
  return new TextEncoder().encode(String(value));
}

/** Kinds read whole, even with a NUL in them (see `wholeText`). */
const KIND = wholeText("kind");

function kindSummaries(
  db: DatabaseSync,
  problems: string[],
  onProgress: InspectOptions["onProgress"],
): KindSummary[] {
  const byKind = new Map<string, KindSummary>();
  const entry = (kind: unknown) => {
    const name = readText(kind) ?? "";
    let summary = byKind.get(name);
    if (summary === undefined) {
      summary = {
        kind: name,
        resources: 0,
        auditRecords: 0,
        orphanAuditRecords: 0,
        bytes: 0,
        auditBytes: 0,
        lastUpdated: null,
      };
      byKind.set(name, summary);
    }
    return summary;
  };
  // Only plain tables are read: a view of the same name would run the file's own SQL.
  const checked = new Map<string, string[] | null>();
  const has = (table: string, ...needed: string[]) => {
    if (!checked.has(table)) {
      const found = plainTable(db, table);
      if (found.state === "refused") {
        problems.push(`${found.problem}: its rows were not read`);
      }
      checked.set(table, found.state === "table" ? found.columns : null);
    }
    const columns = checked.get(table);
    return columns != null && needed.every((c) => columns.includes(c));
  };
  let bytes = 0;
  const report = (phase: string, rows: number, fraction?: number) =>
    onProgress?.({ phase, rows, bytes, fraction });
  // Aggregates run in SQL: length() of a blob reads its size, not its bytes. Resources
  // are stored in (kind, id) order, so GROUP BY kind streams without a sort.
  if (has("resources", "kind", "data", "updated_at")) {
    let rows = 0;
    report("resources", rows);
    for (
      const row of db.prepare(
        `SELECT ${KIND} AS kind, count(*) AS n, sum(length(data)) AS bytes,
           max(updated_at) AS last
         FROM resources GROUP BY resources.kind`,
      ).iterate() as Iterable<
        { kind: unknown; n: number; bytes: number | null; last: unknown }
      >
    ) {
      const summary = entry(row.kind);
      summary.resources = row.n;
      summary.bytes = row.bytes ?? 0;
      summary.lastUpdated = parseSqliteTime(row.last);
      rows += row.n;
      bytes += summary.bytes;
      report("resources", rows);
    }
  }
  for (const table of ["resource_audit", "resource_audit_orphans"]) {
    if (!has(table, "kind", "resource_id", "data")) continue;
    // Before 0003 there is no foreign key: audit rows may have lost their resource.
    const orphansAll = table === "resource_audit_orphans";
    const checkParent = !orphansAll && has("resources", "kind", "id") &&
      (db.prepare(
          "SELECT count(*) AS n FROM pragma_foreign_key_list('resource_audit')",
        ).get() as { n: number }).n === 0;
    let rows = 0;
    report(table, rows, 0);
    scanAudit(db, table, checkParent, (row, fraction) => {
      const summary = entry(row.kind);
      if (row.n !== undefined) {
        const orphans = orphansAll ? row.n : row.orphans ?? 0;
        summary.auditRecords += row.n - orphans;
        summary.orphanAuditRecords += orphans;
      }
      if (row.bytes !== undefined) {
        summary.auditBytes += row.bytes ?? 0;
        bytes += row.bytes ?? 0;
        rows += row.rows ?? 0;
        report(table, rows, fraction);
      }
    });
  }
  return [...byKind.values()].sort((a, b) =>
    a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0
  );
}

/** A part of an audit table's summary for one kind. */
interface AuditPart {
  kind: unknown;
  /** Rows of the kind (from the first pass). */
  n?: number;
  /** Rows of the kind whose resource is missing (first pass). */
  orphans?: number;
  /** Bytes of the kind's messages in one chunk (second pass). */
  bytes?: number;
  /** Rows in that chunk. */
  rows?: number;
}

/** Rows per chunk of the byte count (more on huge rowid spans: at most ~256 chunks). */
const CHUNK_ROWS = 65536n;

/**
 * Counts and sizes of an audit table per kind, in two passes: counts (and orphans)
 * from the `(kind, resource_id, …)` index, which holds no message bytes; then the bytes
 * in one pass over the table in rowid order, in chunks so that progress is a fraction.
 * With several kinds, each chunk takes `length(data)` before it sorts by kind, so the
 * sort holds small rows. Measured on 1,600,000 snapshots: 1.4 s, against 3.7 s for one
 * `GROUP BY kind`, which walks the index and fetches each row from the table.
 */
function scanAudit(
  db: DatabaseSync,
  table: string,
  checkParent: boolean,
  add: (part: AuditPart, fraction: number) => void,
): void {
  const orphans = checkParent
    ? "sum(NOT EXISTS (SELECT 1 FROM resources AS r WHERE r.kind = a.kind AND r.id = a.resource_id))"
    : "0";
  const counts = db.prepare(
    `SELECT ${KIND} AS kind, count(*) AS n, ${orphans} AS orphans
     FROM ${table} AS a GROUP BY a.kind`,
  ).all() as unknown as AuditPart[];
  for (const part of counts) add(part, 0);
  if (counts.length === 0) return;
  const rowid = rowidName(db, table);
  const where = rowid === null
    ? ""
    : `WHERE a.${rowid} >= ?1 AND a.${rowid} <= ?2`;
  const bytes = db.prepare(
    counts.length === 1
      ? `SELECT count(*) AS rows, sum(length(a.data)) AS bytes
         FROM ${table} AS a NOT INDEXED ${where}`
      : `SELECT ${KIND} AS kind, count(*) AS rows, sum(len) AS bytes
         FROM (SELECT a.kind AS kind, length(a.data) AS len
               FROM ${table} AS a NOT INDEXED ${where} ORDER BY a.kind)
         GROUP BY kind`,
  );
  const each = (fraction: number, ...range: bigint[]) => {
    for (const part of bytes.all(...range) as unknown as AuditPart[]) {
      if (counts.length === 1) part.kind = counts[0].kind;
      if (part.rows) add(part, fraction);
    }
  };
  if (rowid === null) return each(1);
  const span = db.prepare(
    `SELECT min(${rowid}) AS lo, max(${rowid}) AS hi FROM ${table}`,
  );
  span.setReadBigInts(true);
  const { lo, hi } = span.get() as { lo: bigint; hi: bigint };
  const total = hi - lo + 1n;
  const step = total / 256n > CHUNK_ROWS ? total / 256n : CHUNK_ROWS;
  for (let from = lo; from <= hi; from += step) {
    const to = from + step - 1n < hi ? from + step - 1n : hi;
    each(Number(to - lo + 1n) / Number(total), from, to);
  }
}

/** A name that reads the table's rowid, `null` for a WITHOUT ROWID table or when
 * columns shadow every alias (a crafted file). */
function rowidName(db: DatabaseSync, table: string): string | null {
  const columns =
    (db.prepare("SELECT name FROM pragma_table_xinfo(?)").all(table) as {
      name: string;
    }[]).map((c) => c.name.toLowerCase());
  const name = ["rowid", "_rowid_", "oid"].find((n) => !columns.includes(n));
  if (name === undefined) return null;
  try {
    db.prepare(`SELECT ${name} FROM ${table} LIMIT 0`);
    return name;
  } catch {
    return null; // WITHOUT ROWID
  }
}

function messageTypes(db: DatabaseSync): string[] {
  const table = plainTable(db, "message_schemas");
  if (table.state !== "table" || !table.columns.includes("type_name")) {
    return [];
  }
  return (db.prepare(
    "SELECT DISTINCT type_name FROM message_schemas ORDER BY type_name",
  ).all() as {
    type_name: string;
  }[]).map((r) => r.type_name);
}

/** The problems integrity_check and foreign_key_check report; `[]` when none. */
function integrity(db: DatabaseSync): string[] {
  const problems = (db.prepare("PRAGMA integrity_check").all() as {
    integrity_check: string;
  }[])
    .map((r) => r.integrity_check)
    .filter((text) => text !== "ok");
  let orphans: { table: string; rowid: number | null; parent: string }[];
  try {
    orphans = db.prepare("PRAGMA foreign_key_check").all() as typeof orphans;
  } catch (error) {
    // A crafted file whose parent is a view or lacks the key: the check cannot run,
    // which is a finding about the file, not a failure of the tool.
    if (!/foreign key mismatch/i.test(String(error))) throw error;
    problems.push(`foreign key check: ${(error as Error).message}`);
    return problems;
  }
  for (const row of orphans) {
    problems.push(
      `foreign key: ${row.table} row ${
        row.rowid ?? "?"
      } has no matching row in ${row.parent}`,
    );
  }
  return problems;
}

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}
