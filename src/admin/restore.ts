/**
 * Restore for the admin tools: what a restore would change (the current resource and
 * the snapshot decoded, and the field-level diff between them), and the restore itself
 * without a generated schema (the snapshot's bytes and recorded type are kept).
 *
 * @module
 */
import { type Change, diffJson } from "../decode/diff.ts";
import { AuditNotFoundError } from "../errors.ts";
import { openUntrusted, requireProtostore } from "./read_only.ts";
import {
  RESTORE_SQL,
  snapshotLookup,
  type SnapshotRef,
  type SnapshotRow,
} from "../store/restore.ts";
import type { SavedResource, WriteOptions } from "../store/types.ts";
import { Store } from "../store/store.ts";
import {
  type InspectedResource,
  readResource,
  resourceNotFound,
} from "./inspect.ts";
import { type DecodeOptions, RowDecoder } from "./row_decoder.ts";
import type { DecodedWith } from "../decode/descriptors.ts";
import { readText } from "../sqlite/connection.ts";

/** What {@linkcode restorePreview} shows before a restore. */
export interface RestorePreview {
  /** The resource as it is now. */
  current: InspectedResource;
  /** The revision it is at now (pass as `ifRevision` to restore only that). */
  currentRevision: number;
  /** The snapshot that would become current. */
  snapshot: {
    auditId: number;
    archivedAt: string;
    versionHash: string | null;
    tag: string | null;
    revision: number;
    type: string | null;
    decodedWith: DecodedWith;
    message: unknown;
  };
  /** Field-level changes from the current resource to the snapshot. */
  changes: Change[];
}

/**
 * The resource (kind, id) of the database at `path` and the snapshot `ref` names, both
 * decoded (recorded type, else `options` descriptors, else a wire dump), and the changes
 * a restore would make. Read-only. {@linkcode NotFoundError} when the resource does not
 * exist, {@linkcode AuditNotFoundError} when the snapshot does not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, restorePreview } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "v1" });
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
 * const preview = restorePreview(path, "agent", "a1", { tag: "v1" });
 * assert.deepEqual(preview.changes.map((c) => c.path), ["v"]);
 * ```
 */
export function restorePreview(
  path: string,
  kind: string,
  id: string,
  ref: SnapshotRef,
  options: DecodeOptions = {},
): RestorePreview {
  const [lookup, value] = snapshotLookup(ref);
  const db = openUntrusted(path);
  try {
    db.exec("BEGIN");
    requireProtostore(db, path);
    const decoder = new RowDecoder(db, options);
    const current = readResource(db, decoder, kind, id);
    if (current === undefined) {
      throw resourceNotFound(kind, id, path);
    }
    const row = db.prepare(RESTORE_SQL[lookup]).get(kind, id, value) as
      | SnapshotRow
      | undefined;
    if (row === undefined) throw new AuditNotFoundError(kind, id, ref);
    const revision = (db.prepare(
      "SELECT revision FROM resources WHERE kind = ? AND id = ?",
    ).get(kind, id) as { revision: number }).revision;
    return previewOf(decoder, kind, current, revision, row);
  } finally {
    if (db.isTransaction) db.exec("COMMIT");
    db.close();
  }
}

/**
 * The preview of making snapshot `row` current over `current` (at `currentRevision`),
 * the snapshot decoded by `decoder`; read from either backend.
 */
export function previewOf(
  decoder: RowDecoder,
  kind: string,
  current: InspectedResource,
  currentRevision: number,
  row: SnapshotRow,
): RestorePreview {
  const decoded = decoder.decode(kind, row.data, row.schema_id);
  return {
    current,
    currentRevision,
    snapshot: {
      auditId: row.id,
      archivedAt: row.archived_at,
      versionHash: readText(row.version_hash),
      tag: readText(row.tag),
      revision: row.revision,
      type: decoded.type ?? decoder.typeOf(row.schema_id) ?? null,
      decodedWith: decoded.decodedWith,
      message: decoded.message,
    },
    changes: diffJson(current.message, decoded.message),
  };
}

/**
 * Makes the snapshot `ref` of (kind, id) the current resource, as
 * {@linkcode Store.restoreResource} does but without a generated schema: the snapshot's
 * bytes and recorded type are kept as they are. Returns the new `{ revision, updatedAt }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, restoreSnapshot } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * const { id } = store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
 * const { revision } = restoreSnapshot(store, "agent", "a1", { auditId: id });
 * assert.equal(revision, 3);
 * assert.equal(store.getResource(StructSchema, "agent", "a1").fields.v.kind.value, 1);
 * ```
 */
export function restoreSnapshot(
  store: Store,
  kind: string,
  id: string,
  ref: SnapshotRef,
  options?: WriteOptions,
): SavedResource {
  return Store.restoreSnapshot(store, kind, id, ref, options);
}
