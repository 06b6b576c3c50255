/**
 * The SQL of the Store: every statement it runs on `resources`, `resource_audit` and
 * `resource_audit_orphans`, and the shapes of the rows they return.
 *
 * @module
 */
import type { StatementSync } from "node:sqlite";
import { wholeText } from "../sqlite/connection.ts";
import { CURRENT_REVISION } from "./revisions.ts";

/** The times protostore writes (`2026-01-25T10:00:00.000Z`), as a GLOB pattern. */
const ISO_GLOB =
  "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z";

/**
 * @internal Every statement the Store runs; the benchmarks prepare the same text as their
 * raw baseline.
 */
export const SQL = {
  // updated_at never goes back: a clock stepped back keeps the later time already stored.
  upsert:
    `INSERT INTO resources (kind, id, data, updated_at, schema_id, revision, create_revision)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
    ON CONFLICT (kind, id) DO UPDATE
    SET data = excluded.data, schema_id = excluded.schema_id, revision = excluded.revision,
      updated_at = iif(updated_at > excluded.updated_at AND updated_at GLOB '${ISO_GLOB}',
        updated_at, excluded.updated_at)
    RETURNING updated_at`,
  // Conditional writes are one statement each, so they cost what the upsert costs.
  create:
    `INSERT INTO resources (kind, id, data, updated_at, schema_id, revision, create_revision)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (kind, id) DO NOTHING
    RETURNING updated_at`,
  updateIf: `UPDATE resources
    SET data = ?3, schema_id = ?5, revision = ?6,
      updated_at = iif(updated_at > ?4 AND updated_at GLOB '${ISO_GLOB}', updated_at, ?4)
    WHERE kind = ?1 AND id = ?2 AND revision = ?7
    RETURNING updated_at`,
  revisionOf: "SELECT revision FROM resources WHERE kind = ? AND id = ?",
  deleteIf: "DELETE FROM resources WHERE kind = ? AND id = ? AND revision = ?",
  get: "SELECT data, schema_id FROM resources WHERE kind = ? AND id = ?",
  entry:
    `SELECT data, revision, create_revision, updated_at, schema_id FROM resources
    WHERE kind = ? AND id = ?`,
  // Keyset paging: the next page starts after the last id, an index seek.
  page:
    `SELECT id, data, revision, create_revision, updated_at, schema_id FROM resources
    WHERE kind = ? AND id > ? ORDER BY id LIMIT ?`,
  currentRevision: `SELECT ${CURRENT_REVISION} AS r`,
  list: "SELECT data, schema_id FROM resources WHERE kind = ? ORDER BY id",
  // A whole listing as one row (see concat.ts): the bytes back to back, their lengths,
  // the count, the distinct schema ids, and whether any value is not a blob. The
  // subquery feeds the aggregates in id order.
  listConcat:
    `SELECT CAST(group_concat(data, '') AS BLOB), group_concat(length(data)), count(*),
      group_concat(DISTINCT schema_id), total(typeof(data) <> 'blob')
    FROM (SELECT data, schema_id FROM resources WHERE kind = ? ORDER BY id)`,
  // The error path of a listing: the first row of `kind` recorded with another type.
  listTypeMismatch:
    "SELECT id FROM resources WHERE kind = ? AND schema_id = ? ORDER BY id LIMIT 1",
  delete: "DELETE FROM resources WHERE kind = ? AND id = ?",
  deleteKind: "DELETE FROM resources WHERE kind = ?",
  deleteIdRange: "DELETE FROM resources WHERE kind = ? AND id >= ? AND id < ?",
  deleteIdFrom: "DELETE FROM resources WHERE kind = ? AND id >= ?",
  // The foreign key checks that the resource exists. archived_at never decreases along
  // a history: a clock stepped back is clamped to the resource's latest archive time,
  // read inside this statement, so it holds across processes. Only protostore's own
  // time format counts as latest (a garbage value would otherwise stick forever).
  // The snapshot records the revision of its transaction (?8) or else the current one.
  insertAudit:
    `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag, schema_id,
      revision)
    VALUES (?1, ?2, ?3, coalesce((SELECT archived_at FROM resource_audit
        WHERE kind = ?1 AND resource_id = ?2 AND archived_at > ?4
          AND archived_at GLOB '${ISO_GLOB}'
        ORDER BY archived_at DESC LIMIT 1), ?4), ?5, ?6, ?7,
      iif(?8 > 0, ?8, ${CURRENT_REVISION}))
    RETURNING id, archived_at, revision`,
  auditByHash: `SELECT data, schema_id FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND version_hash = ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  auditByTag: `SELECT data, schema_id FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND tag = ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  // Labels holding a NUL are read whole, as bytes (see `wholeText`).
  history: `SELECT id, archived_at, ${wholeText("version_hash")}, ${
    wholeText("tag")
  }, data, revision, schema_id
    FROM resource_audit
    WHERE kind = ? AND resource_id = ?
    ORDER BY archived_at DESC, id DESC`,
  historyPage: `SELECT id, archived_at, ${wholeText("version_hash")}, ${
    wholeText("tag")
  }, data, revision, schema_id
    FROM resource_audit
    WHERE kind = ?1 AND resource_id = ?2 AND (archived_at, id) < (?3, ?4)
    ORDER BY archived_at DESC, id DESC LIMIT ?5`,
  historyFirst: `SELECT id, archived_at, ${wholeText("version_hash")}, ${
    wholeText("tag")
  }, data, revision, schema_id
    FROM resource_audit
    WHERE kind = ? AND resource_id = ?
    ORDER BY archived_at DESC, id DESC LIMIT ?`,
  deleteAudit: "DELETE FROM resource_audit WHERE kind = ? AND resource_id = ?",
  deleteOrphanAudit:
    "DELETE FROM resource_audit_orphans WHERE kind = ? AND resource_id = ?",
  orphanHistory: `SELECT id, archived_at, ${wholeText("version_hash")}, ${
    wholeText("tag")
  }, data, schema_id
    FROM resource_audit_orphans
    WHERE kind = ? AND resource_id = ?
    ORDER BY archived_at DESC, id DESC`,
} as const;

/**
 * @internal The statements whose rows are read as arrays: no object with column-name
 * keys per row.
 */
export const ARRAY_ROWS = [
  "upsert",
  "create",
  "updateIf",
  "get",
  "page",
  "list",
  "listConcat",
  "insertAudit",
  "auditByHash",
  "auditByTag",
  "history",
  "historyPage",
  "historyFirst",
  "orphanHistory",
] as const satisfies readonly (keyof typeof SQL)[];

/** @internal Every statement of {@linkcode SQL}, prepared. */
export type Statements = { [K in keyof typeof SQL]: StatementSync };

/** A row of `SQL.orphanHistory`. */
export type OrphanRow = [
  number,
  string,
  string | Uint8Array | null,
  string | Uint8Array | null,
  Uint8Array,
  number | null,
];

/**
 * A row of the history queries: id, archived_at, version_hash, tag, data, revision,
 * schema_id.
 */
export type HistoryRow = [
  number,
  string,
  string | Uint8Array | null,
  string | Uint8Array | null,
  Uint8Array,
  number,
  number | null,
];

/** A `get`, `list` or audit lookup row: the bytes and the recorded `schema_id`. */
export type DataRow = [Uint8Array, number | null];
