/**
 * Read-only audit history of one resource for the admin tools: snapshots newest first,
 * streamed from SQL (a `limit` is applied in the query), decoded, and optionally diffed
 * field by field against the snapshot before.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { readText, wholeText } from "../sqlite/connection.ts";
import { refusedRead } from "../sqlite/untrusted.ts";
import { openUntrusted, requireProtostore, requireTable } from "./read_only.ts";
import { type Change, diffJson } from "../decode/diff.ts";
import { AuditNotFoundError, describeResource, StoreError } from "../errors.ts";
import {
  type InspectedResource,
  readResource,
  resourceNotFound,
  toBytes,
} from "./inspect.ts";
import { parseSqliteTime } from "../sqlite/time.ts";
import { type DecodeOptions, RowDecoder } from "./row_decoder.ts";
import type { DecodedWith } from "../decode/descriptors.ts";

/** One snapshot as the admin tools show it. */
export interface HistoryEntry {
  /** The snapshot id. */
  id: number;
  /** When it was archived. */
  archivedAt: Date | null;
  /** Its version hash, `null` when none. */
  versionHash: string | null;
  /** Its tag, `null` when none. */
  tag: string | null;
  /** Size of the stored message in bytes. */
  size: number;
  /** The message type, recorded or given; `null` when unknown. */
  type: string | null;
  /** How the message was decoded. */
  decodedWith: DecodedWith;
  /** The decoded message. */
  message: unknown;
  /** Why better ways of decoding failed, if they did. */
  reason?: string;
  /** With `diff`: changes from the snapshot before this one; `null` for the oldest. */
  changes?: Change[] | null;
}

/** Options of {@linkcode auditHistory}. */
export interface HistoryOptions extends DecodeOptions {
  /** At most this many snapshots (newest first), applied in SQL. */
  limit?: number;
  /** Compute `changes` for each snapshot, and the live resource's `liveChanges`. */
  diff?: boolean;
}

/**
 * An open, read-only view of one resource's history. Entries are read lazily by
 * {@linkcode AuditHistory.entries}; close it (or `using`) when done.
 */
export interface AuditHistory extends Disposable {
  /** The resource's kind. */
  readonly kind: string;
  /** The resource's id. */
  readonly id: string;
  /** The live resource; `null` when it was deleted and only orphaned snapshots remain. */
  readonly resource: InspectedResource | null;
  /** How many snapshots it has (ignoring `limit`). */
  readonly total: number;
  /** The snapshots are orphans: their resource no longer exists. */
  readonly orphaned: boolean;
  /** With `diff`: the live resource against the newest snapshot; `null` without one. */
  readonly liveChanges: Change[] | null;
  /** The snapshots, newest first, decoded one at a time. */
  entries(): Generator<HistoryEntry>;
  /** Closes the read-only connection. */
  close(): void;
}

/**
 * Opens the audit history of resource (kind, id) in the database at `path`, read-only.
 * Throws {@linkcode NotFoundError} when the resource does not exist and has no orphaned
 * snapshots either.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { auditHistory, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "v1" });
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
 * using history = auditHistory(path, "agent", "a1", { diff: true });
 * const [newest] = [...history.entries()];
 * assert(newest.tag === "v1" && history.liveChanges?.[0].path === "v");
 * ```
 */
export function auditHistory(
  path: string,
  kind: string,
  id: string,
  options: HistoryOptions = {},
): AuditHistory {
  const limit = options.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new StoreError(`limit must be a whole number >= 0, got ${limit}`);
  }
  const db = openUntrusted(path);
  try {
    return openHistory(db, path, kind, id, options);
  } catch (error) {
    db.close();
    throw refusedRead(db, error, path);
  }
}

/**
 * One snapshot of resource (kind, id) by its id, decoded in full. Throws
 * {@linkcode AuditNotFoundError} when that id is not in the resource's history.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { auditSnapshot, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * const { id } = store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * assert(auditSnapshot(path, "agent", "a1", id).id === id);
 * ```
 */
export function auditSnapshot(
  path: string,
  kind: string,
  id: string,
  auditId: number,
  options: DecodeOptions = {},
): HistoryEntry {
  const db = openUntrusted(path);
  try {
    const decoder = new RowDecoder(db, options);
    for (const table of auditTables(db)) {
      const row = table.byId.get(kind, id, auditId) as AuditRow | undefined;
      if (row) return toEntry(decoder, kind, row);
    }
    throw snapshotNotFound(kind, id, auditId);
  } catch (error) {
    throw refusedRead(db, error, path);
  } finally {
    db.close();
  }
}

/** A snapshot row as read from either backend. */
export interface AuditRow {
  id: number;
  archived_at: unknown;
  version_hash: string | Uint8Array | null;
  tag: string | Uint8Array | null;
  data: Uint8Array;
  schema_id: number | null;
}

interface AuditTable {
  name: string;
  count: StatementSync;
  list: StatementSync;
  byId: StatementSync;
}

/** The tables that hold snapshots, live first, with their statements. */
function auditTables(db: DatabaseSync): AuditTable[] {
  const tables: AuditTable[] = [];
  for (const name of ["resource_audit", "resource_audit_orphans"]) {
    const columns = requireTable(db, name);
    if (
      !["id", "kind", "resource_id", "data", "archived_at"].every((c) =>
        columns.includes(c)
      )
    ) {
      continue;
    }
    const optional = (c: string) => columns.includes(c) ? c : `NULL AS ${c}`;
    const label = (c: string) =>
      columns.includes(c) ? `${wholeText(c)} AS ${c}` : `NULL AS ${c}`;
    const select = `SELECT id, archived_at, ${label("version_hash")}, ${
      label("tag")
    }, data,
      ${optional("schema_id")} FROM ${name}`;
    tables.push({
      name,
      count: db.prepare(
        `SELECT count(*) AS n FROM ${name} WHERE kind = ? AND resource_id = ?`,
      ),
      list: db.prepare(
        `${select} WHERE kind = ? AND resource_id = ? ORDER BY archived_at DESC, id DESC LIMIT ?`,
      ),
      byId: db.prepare(
        `${select} WHERE kind = ? AND resource_id = ? AND id = ?`,
      ),
    });
  }
  return tables;
}

function openHistory(
  db: DatabaseSync,
  path: string,
  kind: string,
  id: string,
  options: HistoryOptions,
): AuditHistory {
  requireProtostore(db, path);
  const decoder = new RowDecoder(db, options);
  const resource = readResource(db, decoder, kind, id) ?? null;
  const tables = auditTables(db);
  // A live resource's history is in resource_audit; a deleted one's may survive as orphans
  // (or, before migration 0003, in resource_audit without a resource).
  const counted = tables.map((t) => ({
    table: t,
    n: (t.count.get(kind, id) as { n: number }).n,
  }));
  const source = resource
    ? counted.find((c) => c.table.name === "resource_audit")
    : counted.find((c) => c.n > 0);
  if (!resource && !source) {
    throw resourceNotFound(kind, id, path);
  }
  const total = source?.n ?? 0;
  const limit = options.limit ?? -1;
  const diff = options.diff ?? false;
  let liveChanges: Change[] | null = null;
  if (diff && resource && source && total > 0) {
    const newest = source.table.list.get(kind, id, 1) as unknown as AuditRow;
    liveChanges = diffJson(
      toEntry(decoder, kind, newest).message,
      resource.message,
    );
  }
  let open = true;
  return {
    kind,
    id,
    resource,
    total,
    orphaned: resource === null,
    liveChanges,
    *entries() {
      if (!source || limit === 0) return;
      // With diff, read one row past the limit: the last shown snapshot needs its predecessor.
      const rows = source.table.list.iterate(
        kind,
        id,
        diff && limit > 0 ? limit + 1 : limit,
      ) as Iterable<AuditRow>;
      let previous: HistoryEntry | undefined;
      let shown = 0;
      for (const row of rows) {
        const entry = toEntry(decoder, kind, row);
        if (previous) {
          if (diff) {
            previous.changes = diffJson(entry.message, previous.message);
          }
          yield previous;
          if (++shown === limit) return;
        }
        previous = entry;
      }
      if (previous) {
        if (diff) previous.changes = null;
        yield previous;
      }
    },
    close() {
      if (open) db.close();
      open = false;
    },
    [Symbol.dispose]() {
      this.close();
    },
  };
}

/** The error for snapshot `auditId` missing from the history of (kind, id). */
export function snapshotNotFound(
  kind: string,
  id: string,
  auditId: number,
): AuditNotFoundError {
  return new AuditNotFoundError(
    kind,
    id,
    { auditId },
    `snapshot ${auditId} is not in the history of ${
      describeResource(kind, id)
    }`,
  );
}

/** A snapshot row as the admin tools show it, decoded. */
export function toEntry(
  decoder: RowDecoder,
  kind: string,
  row: AuditRow,
): HistoryEntry {
  const data = toBytes(row.data);
  const decoded = decoder.decode(kind, data, row.schema_id);
  return {
    id: row.id,
    archivedAt: parseSqliteTime(row.archived_at),
    versionHash: readText(row.version_hash) || null,
    tag: readText(row.tag) || null,
    size: data.length,
    type: decoded.type ?? decoder.typeOf(row.schema_id) ?? null,
    decodedWith: decoded.decodedWith,
    message: decoded.message,
    ...(decoded.reason ? { reason: decoded.reason } : {}),
  };
}
