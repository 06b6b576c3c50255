/**
 * Restore and point-in-time reads over the audit history (`kubectl rollout undo`,
 * SQL:2011 `AS OF`): which snapshot a lookup names, and the newest snapshot archived at
 * or before a time or a revision. This module owns those queries on `resource_audit`;
 * the Store runs them in its transactions.
 *
 * @module
 */
import { wholeText } from "../sqlite/connection.ts";
import { StoreError } from "../errors.ts";

/** Which snapshot {@linkcode Store.restoreResource} makes current. */
export type SnapshotRef =
  | { auditId: number }
  | { versionHash: string }
  | { tag: string };

/** The snapshot columns the lookups return. */
const COLUMNS = `id, archived_at, ${
  wholeText("version_hash")
} AS version_hash, ${wholeText("tag")} AS tag, data, schema_id, revision`;

/** A snapshot row as the lookups return it. */
export interface SnapshotRow {
  id: number;
  archived_at: string;
  version_hash: string | Uint8Array | null;
  tag: string | Uint8Array | null;
  data: Uint8Array;
  schema_id: number | null;
  revision: number;
}

/** The lookups, one statement each; newest first where several match. */
export const RESTORE_SQL = {
  byAuditId: `SELECT ${COLUMNS} FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND id = ?`,
  byHash: `SELECT ${COLUMNS} FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND version_hash = ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  byTag: `SELECT ${COLUMNS} FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND tag = ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  atTime: `SELECT ${COLUMNS} FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND archived_at <= ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  // Revisions grow along a history; ties (one transaction) go to the later save.
  atRevision: `SELECT ${COLUMNS} FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND revision <= ?
    ORDER BY revision DESC, archived_at DESC, id DESC LIMIT 1`,
  typeOf: "SELECT type_name FROM message_schemas WHERE id = ?",
} as const;

/**
 * Checks a {@linkcode SnapshotRef} and returns the statement name and value to look it
 * up with; throws {@linkcode StoreError} for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { snapshotLookup } from "./restore.ts";
 *
 * assert.deepEqual(snapshotLookup({ tag: "v1" }), ["byTag", "v1"]);
 * ```
 */
export function snapshotLookup(
  ref: SnapshotRef,
): ["byAuditId" | "byHash" | "byTag", number | string] {
  const keys = typeof ref === "object" && ref !== null ? Object.keys(ref) : [];
  if (keys.length !== 1) {
    throw new StoreError(
      "name the snapshot with exactly one of { auditId }, { versionHash } or { tag }",
    );
  }
  if ("auditId" in ref) {
    if (!Number.isSafeInteger(ref.auditId) || ref.auditId < 1) {
      throw new StoreError(
        `auditId must be a whole number >= 1, got ${String(ref.auditId)}`,
      );
    }
    return ["byAuditId", ref.auditId];
  }
  if (
    "versionHash" in ref && typeof ref.versionHash === "string" &&
    ref.versionHash !== ""
  ) {
    return ["byHash", ref.versionHash];
  }
  if ("tag" in ref && typeof ref.tag === "string" && ref.tag !== "") {
    return ["byTag", ref.tag];
  }
  throw new StoreError(
    `name the snapshot with { auditId }, { versionHash } or { tag } (a non-empty string), got ${
      JSON.stringify(ref)
    }`,
  );
}

/**
 * Checks a point-in-time `at` (a valid Date, or a revision: a whole number >= 0) and
 * returns the statement name and value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pointInTime } from "./restore.ts";
 *
 * assert.deepEqual(pointInTime(7), ["atRevision", 7]);
 * assert.deepEqual(pointInTime(new Date(0)), ["atTime", "1970-01-01T00:00:00.000Z"]);
 * ```
 */
export function pointInTime(
  at: Date | number,
): ["atTime" | "atRevision", string | number] {
  if (at instanceof Date && !Number.isNaN(at.getTime())) {
    return ["atTime", at.toISOString()];
  }
  if (typeof at === "number" && Number.isSafeInteger(at) && at >= 0) {
    return ["atRevision", at];
  }
  throw new StoreError(
    `at must be a valid Date or a revision (a whole number >= 0), got ${
      String(at)
    }`,
  );
}
