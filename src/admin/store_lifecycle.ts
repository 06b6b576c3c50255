/**
 * Prune and restore for a store at any location — a SQLite path or `file:` URL, or a
 * `postgres://` URL (with `schema`) — so `cli.ts prune` and `cli.ts restore` take
 * either with `--db`, with the same results on both backends.
 *
 * @module
 */
import { isPostgresUrl } from "../postgres/connection.ts";
import { connectPostgres, PostgresStore } from "../postgres/store.ts";
import { sqlitePath } from "../postgres/connection.ts";
import type { PruneResult } from "../store/retention.ts";
import type { SnapshotRef } from "../store/restore.ts";
import { openStore } from "../store/store.ts";
import type { SavedResource, WriteOptions } from "../store/types.ts";
import { pruneHistory, type PruneHistoryOptions } from "./prune.ts";
import {
  type RestorePreview,
  restorePreview,
  restoreSnapshot,
} from "./restore.ts";
import type { LocationOptions } from "./any_store.ts";
import { pgRestorePreview } from "./postgres.ts";
import type { DecodeOptions } from "./row_decoder.ts";

/**
 * {@linkcode pruneHistory} for the store at `location` (a path, `file:` URL or
 * `postgres://` URL): removes the snapshots `options` select and returns what went,
 * per kind; with `dryRun` it only counts (the store is opened read-only). On
 * PostgreSQL each batch of whole resources is one short transaction.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, pruneStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * {
 *   using store = openStore(path);
 *   store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
 *   for (let i = 0; i < 3; i++) store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { i }));
 * }
 * const plan = await pruneStore(path, { keepLast: 1, dryRun: true });
 * assert.deepEqual(plan.kinds, { agent: { audit: 2, orphans: 0 } });
 * assert.equal((await pruneStore(path, { keepLast: 1 })).removed, 2);
 * ```
 */
export async function pruneStore(
  location: string,
  options: LocationOptions & PruneHistoryOptions,
): Promise<PruneResult> {
  const { schema, dryRun, ...criteria } = options ?? {};
  if (isPostgresUrl(location)) {
    const store = await connectPostgres(location, {
      schema,
      readOnly: dryRun === true,
      migrate: dryRun !== true,
      poolSize: 2,
    });
    try {
      return await PostgresStore.prune(store, criteria, dryRun === true);
    } finally {
      await store.close();
    }
  }
  using store = openStore(sqlitePath(location), {
    readOnly: dryRun === true,
    migrate: dryRun !== true,
  });
  return pruneHistory(store, { ...criteria, dryRun });
}

/**
 * {@linkcode restorePreview} for the store at any location, read-only: the current
 * resource, the snapshot `ref` names (both decoded) and the field-level changes a
 * restore would make.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, storeRestorePreview } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "v1" });
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
 * const preview = await storeRestorePreview(path, "agent", "a1", { tag: "v1" });
 * assert.deepEqual(preview.changes.map((c) => c.path), ["v"]);
 * assert.equal(preview.currentRevision, 2);
 * ```
 */
export async function storeRestorePreview(
  location: string,
  kind: string,
  id: string,
  ref: SnapshotRef,
  options: LocationOptions & DecodeOptions = {},
): Promise<RestorePreview> {
  if (!isPostgresUrl(location)) {
    return restorePreview(sqlitePath(location), kind, id, ref, options);
  }
  return await pgRestorePreview(
    { url: location, schema: options.schema },
    kind,
    id,
    ref,
    options,
  );
}

/**
 * {@linkcode restoreSnapshot} for the store at any location: makes the snapshot `ref`
 * of (kind, id) the current resource again, byte for byte with its recorded type, as a
 * new change at a new revision; with `ifRevision` only if the resource is still at that
 * revision (else `ConflictError`, nothing written).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, restoreStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "v1" });
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
 * const saved = await restoreStore(path, "agent", "a1", { tag: "v1" }, { ifRevision: 2 });
 * assert.equal(saved.revision, 3);
 * assert.equal(store.getResource(StructSchema, "agent", "a1").fields.v.kind.value, 1);
 * ```
 */
export async function restoreStore(
  location: string,
  kind: string,
  id: string,
  ref: SnapshotRef,
  options: LocationOptions & WriteOptions = {},
): Promise<SavedResource> {
  const { schema, ...write } = options;
  if (isPostgresUrl(location)) {
    const store = await connectPostgres(location, { schema, poolSize: 1 });
    try {
      return await PostgresStore.restoreSnapshot(store, kind, id, ref, write);
    } finally {
      await store.close();
    }
  }
  using store = openStore(sqlitePath(location));
  return restoreSnapshot(store, kind, id, ref, write);
}
