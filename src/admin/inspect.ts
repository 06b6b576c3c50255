/**
 * Read-only inspection of a database file: the overview (file, schema, per-kind counts,
 * orphans, integrity) and one resource decoded. Opens the file read-only and never
 * migrates, so it works on read-only files, on the Go store's files and on files with
 * pending migrations, and leaves the bytes as they were.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import {
  openConnection,
  readText,
  tableColumns,
  wholeText,
} from "../sqlite/connection.ts";
import { describeResource, NotFoundError } from "../errors.ts";
import {
  type AppliedMigration,
  parseSqliteTime,
  planMigrations,
} from "../migrate/runner.ts";
import { type DecodeOptions, RowDecoder } from "./row_decoder.ts";
import type { DecodedWith } from "../decode/descriptors.ts";

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
  /** The database file. */
  path: string;
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
  /** With `check`: `"ok"` or the problems of integrity_check and foreign_key_check;
   * otherwise `null`. */
  integrity: "ok" | string[] | null;
}

/**
 * The overview of the database at `path`, read-only. With `check`, also runs
 * `PRAGMA integrity_check` and `PRAGMA foreign_key_check` (reads every page).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectDatabase, migrate } from "@protostore/store";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * migrate(path);
 * const overview = inspectDatabase(path, { check: true });
 * assert(overview.schemaVersion === 3 && overview.integrity === "ok");
 * ```
 */
export function inspectDatabase(
  path: string,
  options: { check?: boolean } = {},
): DatabaseOverview {
  const db = openConnection(path, { readOnly: true });
  // The overview scans every row once: SQLite's default small cache and plain reads
  // scan ~25% faster than the Store's 64 MiB cache and memory map, which pay off for
  // repeated point lookups, not for one pass (measured on 1,000,000 resources).
  db.exec("PRAGMA mmap_size = 0; PRAGMA cache_size = -2000;");
  try {
    const plan = planMigrations(db);
    const pragma = (name: string) =>
      Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0];
    const kinds = kindSummaries(db);
    const sum = (key: "resources" | "auditRecords" | "orphanAuditRecords") =>
      kinds.reduce((n, k) => n + k[key], 0);
    return {
      path,
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
      problems: plan.problems,
      kinds,
      resources: sum("resources"),
      auditRecords: sum("auditRecords"),
      orphanAuditRecords: sum("orphanAuditRecords"),
      messageTypes: messageTypes(db),
      integrity: options.check ? integrity(db) : null,
    };
  } finally {
    db.close();
  }
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
  const db = openConnection(path, { readOnly: true });
  try {
    const resource = readResource(db, new RowDecoder(db, options), kind, id);
    if (resource === undefined) {
      throw new NotFoundError(
        kind,
        id,
        `resource ${describeResource(kind, id)} does not exist in ${path}`,
      );
    }
    return resource;
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
  const columns = tableColumns(db, "resources");
  if (columns.length === 0) return undefined;
  const schemaId = columns.includes("schema_id") ? "schema_id" : "NULL";
  const row = db.prepare(
    `SELECT updated_at, data, ${schemaId} AS schema_id FROM resources WHERE kind = ? AND id = ?`,
  ).get(kind, id) as {
    updated_at: unknown;
    data: Uint8Array;
    schema_id: number | null;
  } | undefined;
  if (row === undefined) return undefined;
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
  };
}

/** A `data` value as bytes: the Go store's rows may hold text where bytes belong. */
export function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value === null || value === undefined) return new Uint8Array();
  return new TextEncoder().encode(String(value));
}

/** Kinds read whole, even with a NUL in them (see `wholeText`). */
const KIND = wholeText("kind");

function kindSummaries(db: DatabaseSync): KindSummary[] {
  const byKind = new Map<string, KindSummary>();
  const entry = (kind: string) => {
    let summary = byKind.get(kind);
    if (summary === undefined) {
      summary = {
        kind,
        resources: 0,
        auditRecords: 0,
        orphanAuditRecords: 0,
        bytes: 0,
        auditBytes: 0,
        lastUpdated: null,
      };
      byKind.set(kind, summary);
    }
    return summary;
  };
  const has = (table: string, ...needed: string[]) => {
    const columns = tableColumns(db, table);
    return needed.every((c) => columns.includes(c));
  };
  // Aggregates run in SQL: length() of a blob reads its size, not its bytes.
  if (has("resources", "kind", "data", "updated_at")) {
    for (
      const row of db.prepare(
        `SELECT ${KIND} AS kind, count(*) AS n, sum(length(data)) AS bytes,
           max(updated_at) AS last
         FROM resources GROUP BY resources.kind`,
      ).iterate() as Iterable<
        { kind: unknown; n: number; bytes: number | null; last: unknown }
      >
    ) {
      const summary = entry(readText(row.kind) ?? "");
      summary.resources = row.n;
      summary.bytes = row.bytes ?? 0;
      summary.lastUpdated = parseSqliteTime(row.last);
    }
  }
  if (has("resource_audit", "kind", "resource_id", "data")) {
    // Before 0003 there is no foreign key: audit rows may have lost their resource.
    const enforced = (db.prepare(
      "SELECT count(*) AS n FROM pragma_foreign_key_list('resource_audit')",
    )
      .get() as { n: number }).n > 0;
    const sql = enforced || !has("resources", "kind", "id")
      ? `SELECT ${KIND} AS kind, count(*) AS n, 0 AS orphans, sum(length(data)) AS bytes
         FROM resource_audit GROUP BY resource_audit.kind`
      : `SELECT ${wholeText("a.kind")} AS kind, count(*) AS n,
           sum(NOT EXISTS (SELECT 1 FROM resources AS r WHERE r.kind = a.kind AND r.id = a.resource_id)) AS orphans,
           sum(length(a.data)) AS bytes
         FROM resource_audit AS a GROUP BY a.kind`;
    for (
      const row of db.prepare(sql).iterate() as Iterable<
        { kind: unknown; n: number; orphans: number; bytes: number | null }
      >
    ) {
      const summary = entry(readText(row.kind) ?? "");
      summary.auditRecords += row.n - row.orphans;
      summary.orphanAuditRecords += row.orphans;
      summary.auditBytes += row.bytes ?? 0;
    }
  }
  if (has("resource_audit_orphans", "kind", "data")) {
    for (
      const row of db.prepare(
        `SELECT ${KIND} AS kind, count(*) AS n, sum(length(data)) AS bytes
         FROM resource_audit_orphans GROUP BY resource_audit_orphans.kind`,
      ).iterate() as Iterable<
        { kind: unknown; n: number; bytes: number | null }
      >
    ) {
      const summary = entry(readText(row.kind) ?? "");
      summary.orphanAuditRecords += row.n;
      summary.auditBytes += row.bytes ?? 0;
    }
  }
  return [...byKind.values()].sort((a, b) =>
    a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0
  );
}

function messageTypes(db: DatabaseSync): string[] {
  if (!tableColumns(db, "message_schemas").includes("type_name")) return [];
  return (db.prepare(
    "SELECT DISTINCT type_name FROM message_schemas ORDER BY type_name",
  ).all() as {
    type_name: string;
  }[]).map((r) => r.type_name);
}

function integrity(db: DatabaseSync): "ok" | string[] {
  const problems = (db.prepare("PRAGMA integrity_check").all() as {
    integrity_check: string;
  }[])
    .map((r) => r.integrity_check)
    .filter((text) => text !== "ok");
  for (
    const row of db.prepare("PRAGMA foreign_key_check").all() as {
      table: string;
      rowid: number | null;
      parent: string;
    }[]
  ) {
    problems.push(
      `foreign key: ${row.table} row ${
        row.rowid ?? "?"
      } has no matching row in ${row.parent}`,
    );
  }
  return problems.length === 0 ? "ok" : problems;
}

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}
