/**
 * The Store: protobuf resources keyed by (kind, id) and their immutable audit history,
 * on one SQLite connection. This module owns the `resources`, `resource_audit` and
 * `resource_audit_orphans` queries.
 *
 * @module
 */
import {
  type DescMessage as ProtobufDescMessage,
  fromBinary,
  type MessageShape as ProtobufMessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  openConnection,
  readText,
  returnArrays,
  wholeText,
} from "../sqlite/connection.ts";
import { failureHint, sqliteErrorCode } from "../sqlite/errors.ts";
import {
  AuditNotFoundError,
  describeResource,
  messageOf,
  NotFoundError,
  StoreClosedError,
  StoreError,
} from "../errors.ts";
import { prepareDatabase } from "../migrate/runner.ts";
import { timeCheckFailure } from "../migrate/time_checks.ts";
import { SchemaIds } from "./schemas.ts";
import { type PruneOptions, pruneSnapshots } from "./retention.ts";

/**
 * @internal protobuf-es `DescMessage`: a message schema such as a generated `SkillSchema`.
 * Local aliases keep `deno doc --lint` from flagging npm types as private
 * (denoland/deno#27364); they are the very same types.
 */
type DescMessage = ProtobufDescMessage;
/** @internal protobuf-es `MessageShape`: the message type a schema describes. */
type MessageShape<D extends DescMessage> = ProtobufMessageShape<D>;

/** Options of {@linkcode openStore}. */
export interface OpenOptions {
  /** Apply pending migrations on open (default true). When false, pending migrations
   * make the open fail with a `MigrationError` that says to run `migrate`. */
  migrate?: boolean;
  /** Never create, migrate or change the file; every write throws `StoreError`. */
  readOnly?: boolean;
  /** How long to wait for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number;
}

/** Where a saved audit snapshot landed. */
export interface AuditEntryInfo {
  /** The snapshot's id (`resource_audit.id`), increasing with every save. */
  id: number;
  /** When it was archived, to the millisecond. */
  archivedAt: Date;
}

/** One audit snapshot, as {@linkcode Store.listAuditHistory} returns it. */
export interface AuditEntry<M> extends AuditEntryInfo {
  /** The version hash given when it was saved; `undefined` when absent or empty. */
  versionHash?: string;
  /** The tag given when it was saved; `undefined` when absent or empty. */
  tag?: string;
  /** The decoded message. */
  message: M;
}

/** Optional labels of an audit snapshot; empty strings are stored as absent. */
export interface AuditMeta {
  /** A content hash of this version, to find it again with `getAuditByHash`. */
  versionHash?: string;
  /** A release label such as `v2`, to find the newest with `getAuditByTag`. */
  tag?: string;
}

/**
 * @internal Every statement the Store runs; the benchmarks prepare the same text as their
 * raw baseline.
 */
export const SQL = {
  upsert:
    `INSERT INTO resources (kind, id, data, updated_at, schema_id) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (kind, id) DO UPDATE
    SET data = excluded.data, updated_at = excluded.updated_at, schema_id = excluded.schema_id`,
  get: "SELECT data FROM resources WHERE kind = ? AND id = ?",
  list: "SELECT data FROM resources WHERE kind = ? ORDER BY id",
  delete: "DELETE FROM resources WHERE kind = ? AND id = ?",
  deleteKind: "DELETE FROM resources WHERE kind = ?",
  deleteIdRange: "DELETE FROM resources WHERE kind = ? AND id >= ? AND id < ?",
  deleteIdFrom: "DELETE FROM resources WHERE kind = ? AND id >= ?",
  // One statement checks the parent and inserts, so it is atomic without a transaction.
  insertAudit:
    `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag, schema_id)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
    WHERE EXISTS (SELECT 1 FROM resources WHERE kind = ?1 AND id = ?2)`,
  auditByHash: `SELECT data FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND version_hash = ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  auditByTag: `SELECT data FROM resource_audit
    WHERE kind = ? AND resource_id = ? AND tag = ?
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  // Labels holding a NUL are read whole, as bytes (see `wholeText`).
  history: `SELECT id, archived_at, ${wholeText("version_hash")}, ${
    wholeText("tag")
  }, data
    FROM resource_audit
    WHERE kind = ? AND resource_id = ?
    ORDER BY archived_at DESC, id DESC`,
  deleteAudit: "DELETE FROM resource_audit WHERE kind = ? AND resource_id = ?",
  deleteOrphanAudit:
    "DELETE FROM resource_audit_orphans WHERE kind = ? AND resource_id = ?",
  orphanHistory: `SELECT id, archived_at, ${wholeText("version_hash")}, ${
    wholeText("tag")
  }, data
    FROM resource_audit_orphans
    WHERE kind = ? AND resource_id = ?
    ORDER BY archived_at DESC, id DESC`,
} as const;

type Statements = { [K in keyof typeof SQL]: StatementSync };

/**
 * Opens (and by default creates and migrates) the protostore database at `path`.
 * The parent directory is created if missing; a new file and directory are readable by
 * the owner only. The store holds one SQLite connection: close it, or open it with
 * `using` so it closes itself.
 *
 * @example Save, read back and keep history
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/agents.sqlite`);
 * const agent = fromJson(StructSchema, { name: "reviewer", model: "m-1" });
 * store.saveResource(StructSchema, "agent", "a1", agent);
 * store.saveAudit(StructSchema, "agent", "a1", agent, { tag: "v1" });
 * assert(store.getResource(StructSchema, "agent", "a1").fields.name.kind.value === "reviewer");
 * ```
 */
export function openStore(path: string, options: OpenOptions = {}): Store {
  const readOnly = options.readOnly ?? false;
  const db = openConnection(path, {
    readOnly,
    busyTimeoutMs: options.busyTimeoutMs,
  });
  try {
    prepareDatabase(db, { migrate: options.migrate ?? true, readOnly });
    return new Store(path, db, readOnly);
  } catch (error) {
    db.close();
    throw error;
  }
}

let lastMs = -1;
let lastIso = "";
/** ISO-8601 text of a millisecond time; cached because saves come many per ms. */
function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/**
 * Resources and their audit history in one SQLite file. Get one from
 * {@linkcode openStore}. Methods are synchronous (node:sqlite is); every write is
 * atomic, and {@linkcode Store.transaction} groups several.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * store.saveResource(StructSchema, "skill", "s1", fromJson(StructSchema, { name: "lint" }));
 * assert(store.listResources(StructSchema, "skill").length === 1);
 * ```
 */
export class Store implements Disposable {
  /** The database file this store was opened on. */
  readonly path: string;
  #db: DatabaseSync | null;
  #readOnly: boolean;
  #s: Statements;
  #schemaIds: SchemaIds;
  #depth = 0;

  /** Wraps an open, migrated connection; use {@linkcode openStore} instead. */
  constructor(path: string, db: DatabaseSync, readOnly: boolean) {
    this.path = path;
    this.#db = db;
    this.#readOnly = readOnly;
    const statements = {} as Record<string, StatementSync>;
    for (const [name, sql] of Object.entries(SQL)) {
      statements[name] = db.prepare(sql);
    }
    this.#s = statements as Statements;
    returnArrays(this.#s.list);
    returnArrays(this.#s.history);
    returnArrays(this.#s.orphanHistory);
    this.#schemaIds = new SchemaIds(db);
  }

  /**
   * Saves `message` as resource (kind, id): inserts it, or updates it in place (its
   * audit history is untouched). Records the message type with the row.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson, toJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
   * const saved = store.getResource(StructSchema, "agent", "a1");
   * assert.deepEqual(toJson(StructSchema, saved), { v: 2 });
   * ```
   */
  saveResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    message: MessageShape<D>,
  ): void {
    requireKey("kind", kind);
    requireKey("id", id);
    const data = encode(schema, message, kind, id);
    const updatedAt = isoTime(Date.now());
    // Once the type is recorded, the upsert is the only statement.
    this.#write("saveResource", kind, id, () => {
      this.#s.upsert.run(
        kind,
        id,
        data,
        updatedAt,
        this.#schemaIds.idOf(schema),
      );
    }, this.#schemaIds.has(schema));
  }

  /**
   * The resource (kind, id) decoded with `schema`. Throws {@linkcode NotFoundError} when
   * absent and {@linkcode StoreError} when its bytes do not decode with `schema`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
   * const agent = store.getResource(StructSchema, "agent", "a1");
   * assert(agent.fields.v.kind.value === 1);
   * ```
   */
  getResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
  ): MessageShape<D> {
    requireKey("kind", kind);
    requireKey("id", id);
    const row = this.#read(
      "getResource",
      kind,
      id,
      () => this.#s.get.get(kind, id),
    ) as
      | { data: Uint8Array }
      | undefined;
    if (row === undefined) {
      throw new NotFoundError(kind, id);
    }
    return decode(schema, row.data, kind, id);
  }

  /**
   * Every resource of `kind`, decoded with `schema`, ordered by id; `[]` when none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * assert(store.listResources(StructSchema, "agent").length === 0);
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
   * assert(store.listResources(StructSchema, "agent").length === 1);
   * ```
   */
  listResources<D extends DescMessage>(
    schema: D,
    kind: string,
  ): MessageShape<D>[] {
    requireKey("kind", kind);
    const rows = this.#read(
      "listResources",
      kind,
      undefined,
      () => this.#s.list.all(kind),
    ) as unknown as [Uint8Array][];
    const messages: MessageShape<D>[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      messages[i] = decode(schema, rows[i][0], kind, undefined);
    }
    return messages;
  }

  /**
   * Deletes resource (kind, id) and, in the same transaction, its audit history.
   * Returns false when it did not exist.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * assert(store.deleteResource("agent", "missing") === false);
   * ```
   */
  deleteResource(kind: string, id: string): boolean {
    requireKey("kind", kind);
    requireKey("id", id);
    return this.#write(
      "deleteResource",
      kind,
      id,
      () => this.#s.delete.run(kind, id).changes,
      true, // the cascade runs inside the one DELETE
    ) >
      0;
  }

  /**
   * Deletes every resource of `kind` with their audit histories; returns how many
   * resources were deleted.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * assert(store.deleteResourcesByKind("agent") === 0);
   * ```
   */
  deleteResourcesByKind(kind: string): number {
    requireKey("kind", kind);
    return Number(
      this.#write(
        "deleteResourcesByKind",
        kind,
        undefined,
        () => this.#s.deleteKind.run(kind).changes,
        true,
      ),
    );
  }

  /**
   * Deletes the resources of `kind` whose id starts with `idPrefix` (literal text: `%`,
   * `_`, `*`, `?` and `[` match themselves), with their audit histories. An empty prefix
   * deletes the whole kind. Returns how many resources were deleted.
   *
   * @deprecated BadgerDB-era prefix delete. Use {@linkcode Store.deleteResource} or
   * {@linkcode Store.deleteResourcesByKind}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.saveResource(StructSchema, "skill", "team-a/1", fromJson(StructSchema, {}));
   * store.saveResource(StructSchema, "skill", "team-b/1", fromJson(StructSchema, {}));
   * assert(store.deleteResourcesByIdPrefix("skill", "team-a/") === 1);
   * ```
   */
  deleteResourcesByIdPrefix(kind: string, idPrefix: string): number {
    requireKey("kind", kind);
    if (typeof idPrefix !== "string") {
      throw new StoreError(`idPrefix must be a string, got ${typeof idPrefix}`);
    }
    if (idPrefix === "") return this.deleteResourcesByKind(kind);
    requireWellFormed("idPrefix", idPrefix);
    // A range on the primary key instead of LIKE/GLOB: exact for any characters, indexed.
    const upper = prefixUpperBound(idPrefix);
    return Number(
      this.#write(
        "deleteResourcesByIdPrefix",
        kind,
        undefined,
        () =>
          upper === null
            ? this.#s.deleteIdFrom.run(kind, idPrefix).changes
            : this.#s.deleteIdRange.run(kind, idPrefix, upper).changes,
        true,
      ),
    );
  }

  /**
   * Archives `message` as a snapshot in the audit history of resource (kind,
   * resourceId), which must exist ({@linkcode NotFoundError} otherwise). Empty
   * `versionHash` or `tag` are stored as absent.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * const v1 = fromJson(StructSchema, { v: 1 });
   * store.saveResource(StructSchema, "agent", "a1", v1);
   * const entry = store.saveAudit(StructSchema, "agent", "a1", v1, { versionHash: "h1", tag: "v1" });
   * assert(entry.id > 0 && entry.archivedAt instanceof Date);
   * ```
   */
  saveAudit<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    message: MessageShape<D>,
    meta: AuditMeta = {},
  ): AuditEntryInfo {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    const versionHash = optionalLabel("versionHash", meta?.versionHash);
    const tag = optionalLabel("tag", meta?.tag);
    const data = encode(schema, message, kind, resourceId);
    const ms = Date.now();
    const archivedAt = isoTime(ms);
    return this.#write("saveAudit", kind, resourceId, () => {
      const result = this.#s.insertAudit.run(
        kind,
        resourceId,
        data,
        archivedAt,
        versionHash,
        tag,
        this.#schemaIds.idOf(schema),
      );
      if (result.changes === 0) {
        throw new NotFoundError(
          kind,
          resourceId,
          `cannot archive a snapshot of resource ${
            describeResource(kind, resourceId)
          }: ` +
            "it does not exist (save the resource first)",
        );
      }
      return { id: Number(result.lastInsertRowid), archivedAt: new Date(ms) };
    }, this.#schemaIds.has(schema));
  }

  /**
   * The newest snapshot of (kind, resourceId) with `versionHash`, decoded with `schema`;
   * {@linkcode AuditNotFoundError} when there is none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * const v1 = fromJson(StructSchema, { v: 1 });
   * store.saveResource(StructSchema, "agent", "a1", v1);
   * store.saveAudit(StructSchema, "agent", "a1", v1, { versionHash: "h1" });
   * assert(store.getAuditByHash(StructSchema, "agent", "a1", "h1").fields.v.kind.value === 1);
   * ```
   */
  getAuditByHash<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    versionHash: string,
  ): MessageShape<D> {
    return this.#auditBy(
      schema,
      this.#s.auditByHash,
      "version hash",
      kind,
      resourceId,
      versionHash,
    );
  }

  /**
   * The newest snapshot of (kind, resourceId) with `tag`, decoded with `schema`;
   * {@linkcode AuditNotFoundError} when there is none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
   * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "stable" });
   * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }), { tag: "stable" });
   * assert(store.getAuditByTag(StructSchema, "agent", "a1", "stable").fields.v.kind.value === 2);
   * ```
   */
  getAuditByTag<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    tag: string,
  ): MessageShape<D> {
    return this.#auditBy(
      schema,
      this.#s.auditByTag,
      "tag",
      kind,
      resourceId,
      tag,
    );
  }

  /**
   * The audit history of (kind, resourceId), newest first (by archive time, then by
   * save order); `[]` when none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
   * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "old" });
   * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
   * const history = store.listAuditHistory(StructSchema, "agent", "a1");
   * assert(history.length === 2 && history[1].tag === "old" && history[0].tag === undefined);
   * ```
   */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
  ): AuditEntry<MessageShape<D>>[] {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    const rows = this.#read(
      "listAuditHistory",
      kind,
      resourceId,
      () => this.#s.history.all(kind, resourceId),
    ) as unknown as [
      number,
      string,
      string | Uint8Array | null,
      string | Uint8Array | null,
      Uint8Array,
    ][];
    const entries: AuditEntry<MessageShape<D>>[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [id, archivedAt, versionHash, tag, data] = rows[i];
      const entry: AuditEntry<MessageShape<D>> = {
        id,
        archivedAt: new Date(archivedAt),
        message: decode(schema, data, kind, resourceId),
      };
      // Absent labels are absent keys, so entries deep-equal `{ id, archivedAt, message }`.
      const hash = readLabel(versionHash);
      const label = readLabel(tag);
      if (hash !== undefined) entry.versionHash = hash;
      if (label !== undefined) entry.tag = label;
      entries[i] = entry;
    }
    return entries;
  }

  /**
   * The orphaned snapshots of (kind, resourceId): those kept when their resource was
   * gone (audit rows of a deleted resource in a migrated Go file, Badger-era snapshots
   * without their resource), as {@linkcode Store.listAuditHistory} returns a history,
   * newest first; `[]` when none. They stay until `deleteAuditByResourceId` or
   * `pruneAudit({ orphans: true, ... })` removes them.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * assert.deepEqual(store.listOrphanedAudit(StructSchema, "agent", "gone"), []);
   * ```
   */
  listOrphanedAudit<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
  ): AuditEntry<MessageShape<D>>[] {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    const rows = this.#read(
      "listOrphanedAudit",
      kind,
      resourceId,
      () => this.#s.orphanHistory.all(kind, resourceId),
    ) as unknown as OrphanRow[];
    return rows.map(([id, archivedAt, versionHash, tag, data]) => {
      const entry: AuditEntry<MessageShape<D>> = {
        id,
        archivedAt: new Date(archivedAt),
        message: decode(schema, data, kind, resourceId),
      };
      const hash = readLabel(versionHash);
      const label = readLabel(tag);
      if (hash !== undefined) entry.versionHash = hash;
      if (label !== undefined) entry.tag = label;
      return entry;
    });
  }

  /**
   * Deletes the audit history of (kind, resourceId), including snapshots kept as
   * orphans after their resource was deleted; the resource itself stays. Returns how
   * many snapshots were deleted.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * assert(store.deleteAuditByResourceId("agent", "a1") === 0);
   * ```
   */
  deleteAuditByResourceId(kind: string, resourceId: string): number {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    return this.#write(
      "deleteAuditByResourceId",
      kind,
      resourceId,
      () =>
        Number(this.#s.deleteAudit.run(kind, resourceId).changes) +
        Number(this.#s.deleteOrphanAudit.run(kind, resourceId).changes),
    );
  }

  /**
   * Removes old audit snapshots and returns how many: `keepLast` keeps the newest N of
   * each resource, `olderThan` removes only snapshots archived before it; with both, a
   * snapshot goes only if it is outside the newest N *and* older. Tagged snapshots stay
   * unless `keepTagged: false`; orphaned ones are pruned only with `orphans: true`;
   * `kind` and `id` narrow it. With neither `keepLast` nor `olderThan` it refuses
   * ({@linkcode StoreError}) instead of removing everything.
   *
   * It works in write transactions of whole resources, chosen afresh under the write
   * lock, each about 200 ms and followed by a 100 ms pause with the lock free: other
   * processes' writes wait for one batch, not for the whole prune (one transaction over
   * 1,000,000 snapshots held the lock past the busy timeout; BENCHMARKS.md), and an interrupted prune leaves every resource either pruned or
   * untouched (run it again to finish). Inside {@linkcode Store.transaction} it is part
   * of the caller's transaction. The file does not shrink: freed pages are reused; see
   * the README (`backup --vacuum`, `prune --vacuum`).
   *
   * @example Keep the last two snapshots, and every tagged one
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * const v = (n: number) => fromJson(StructSchema, { v: n });
   * store.saveResource(StructSchema, "agent", "a1", v(5));
   * store.saveAudit(StructSchema, "agent", "a1", v(1), { tag: "stable" });
   * for (let n = 2; n <= 5; n++) store.saveAudit(StructSchema, "agent", "a1", v(n));
   * assert.equal(store.pruneAudit({ keepLast: 2 }), 2);
   * const left = store.listAuditHistory(StructSchema, "agent", "a1");
   * assert.deepEqual(left.map((e) => e.message.fields.v.kind.value), [5, 4, 1]);
   * assert.throws(() => store.pruneAudit({ kind: "agent" }), /keepLast or olderThan/);
   * ```
   */
  pruneAudit(options: PruneOptions): number {
    const db = this.#live();
    const scope = typeof options?.kind === "string" ? options.kind : "*";
    return pruneSnapshots(
      db,
      options,
      (fn) => this.#write("pruneAudit", scope, undefined, fn),
    ).removed;
  }

  /**
   * Runs `fn` atomically: everything it writes commits together, or nothing does when
   * it throws (the error is rethrown). Nested calls are savepoints: an inner throw
   * rolls back only the inner part if the outer callback catches it. `fn` must be
   * synchronous; a callback that returns a promise is rolled back with a
   * {@linkcode StoreError}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.transaction(() => {
   *   for (let i = 0; i < 100; i++) {
   *     store.saveResource(StructSchema, "agent", `a${i}`, fromJson(StructSchema, { i }));
   *   }
   * });
   * assert(store.listResources(StructSchema, "agent").length === 100);
   * ```
   */
  transaction<T>(fn: () => T): T {
    const db = this.#live();
    if (typeof fn !== "function") {
      throw new StoreError(`transaction() takes a function, got ${typeof fn}`);
    }
    const depth = this.#depth;
    try {
      if (depth === 0) db.exec(this.#readOnly ? "BEGIN" : "BEGIN IMMEDIATE");
      else db.exec(`SAVEPOINT protostore_${depth}`);
    } catch (error) {
      throw failure("transaction", undefined, undefined, error, this.#readOnly);
    }
    this.#depth = depth + 1;
    let result: T;
    try {
      result = fn();
      if (isPromiseLike(result)) {
        // Swallow the late rejection; the caller gets this error instead.
        Promise.resolve(result).catch(() => {});
        throw new StoreError(
          "transaction() callbacks must be synchronous (a SQLite transaction cannot span an " +
            "await): the callback returned a promise, and its writes so far were rolled back",
        );
      }
    } catch (error) {
      this.#depth = depth;
      this.#undo(depth);
      throw error;
    }
    this.#depth = depth;
    try {
      if (depth === 0) db.exec("COMMIT");
      else db.exec(`RELEASE protostore_${depth}`);
    } catch (error) {
      this.#undo(depth);
      throw failure(
        "transaction commit",
        undefined,
        undefined,
        error,
        this.#readOnly,
      );
    }
    return result;
  }

  /**
   * Closes the connection; idempotent. An open transaction is rolled back. Afterwards
   * every method throws {@linkcode StoreClosedError}.
   */
  close(): void {
    const db = this.#db;
    if (db === null) return;
    this.#db = null;
    try {
      if (db.isTransaction) db.exec("ROLLBACK");
    } finally {
      db.close();
    }
  }

  /** Closes the store at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal The connection, for library functions that work on the same file. */
  static connectionOf(store: Store): DatabaseSync {
    return store.#live();
  }

  #live(): DatabaseSync {
    if (this.#db === null) {
      throw new StoreClosedError(`the store for ${this.path} is closed`);
    }
    return this.#db;
  }

  #auditBy<D extends DescMessage>(
    schema: D,
    statement: StatementSync,
    label: string,
    kind: string,
    resourceId: string,
    value: string,
  ): MessageShape<D> {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    if (typeof value !== "string") {
      throw new StoreError(`${label} must be a string, got ${typeof value}`);
    }
    requireWellFormed(label, value);
    const row = this.#read(
      `audit lookup by ${label}`,
      kind,
      resourceId,
      () => statement.get(kind, resourceId, value),
    ) as { data: Uint8Array } | undefined;
    if (row === undefined) {
      throw new AuditNotFoundError(
        kind,
        resourceId,
        label === "tag" ? { tag: value } : { versionHash: value },
        `no snapshot of resource ${
          describeResource(kind, resourceId)
        } has ${label} ${JSON.stringify(value)}`,
      );
    }
    return decode(schema, row.data, kind, resourceId);
  }

  #read<T>(op: string, kind: string, id: string | undefined, fn: () => T): T {
    this.#live();
    try {
      return fn();
    } catch (error) {
      throw failure(op, kind, id, error, this.#readOnly);
    }
  }

  /**
   * Runs one write atomically: its own IMMEDIATE transaction, or inside the caller's.
   * `single`: `fn` runs exactly one statement. SQLite makes a lone statement atomic, and
   * outside a transaction it takes the write lock (waiting out the busy timeout) before
   * it reads, as BEGIN IMMEDIATE would; skipping BEGIN/COMMIT saves ~1 µs per write.
   */
  #write<T>(
    op: string,
    kind: string,
    id: string | undefined,
    fn: () => T,
    single = false,
  ): T {
    const db = this.#live();
    if (this.#readOnly) {
      throw new StoreError(
        `${op} of ${
          describeResource(kind, id)
        }: the store for ${this.path} was opened read-only`,
        { code: "read_only" },
      );
    }
    if (this.#depth > 0 && !db.isTransaction) {
      throw new StoreError(
        `${op} of ${
          describeResource(kind, id)
        }: SQLite already rolled back the enclosing ` +
          "transaction after an earlier error; let transaction() end and retry",
      );
    }
    // Inside the caller's transaction, or one statement that is atomic on its own.
    if (this.#depth > 0 || single) {
      try {
        return fn();
      } catch (error) {
        throw failure(op, kind, id, error, false);
      }
    }
    // IMMEDIATE takes the write lock up front, so a busy database waits (busy timeout)
    // instead of failing later when a read lock would have to be upgraded.
    try {
      db.exec("BEGIN IMMEDIATE");
      const result = fn();
      db.exec("COMMIT");
      return result;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      this.#schemaIds.forget();
      throw failure(op, kind, id, error, false);
    }
  }

  #undo(depth: number): void {
    this.#schemaIds.forget();
    const db = this.#db;
    if (db === null || !db.isTransaction) return;
    const undo = depth === 0
      ? "ROLLBACK"
      : `ROLLBACK TO protostore_${depth}; RELEASE protostore_${depth}`;
    db.exec(undo);
  }
}

/** A row of `SQL.orphanHistory`. */
type OrphanRow = [
  number,
  string,
  string | Uint8Array | null,
  string | Uint8Array | null,
  Uint8Array,
];

function requireKey(name: string, value: unknown): void {
  if (typeof value !== "string" || value.length === 0) {
    throw new StoreError(
      `${name} must be a non-empty string, got ${
        typeof value === "string" ? '""' : String(value)
      }`,
    );
  }
  requireWellFormed(name, value);
}

function optionalLabel(name: string, value: unknown): string | null {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value !== "string") {
    throw new StoreError(`${name} must be a string, got ${typeof value}`);
  }
  requireWellFormed(name, value);
  return value;
}

/**
 * A lone surrogate has no UTF-8 form: SQLite would store U+FFFD instead, so two
 * different strings would name the same row, and a read would not give back the text.
 */
function requireWellFormed(name: string, value: string): void {
  if (value.isWellFormed()) return;
  const shown = JSON.stringify(
    value.length > 80 ? `${value.slice(0, 80)}…` : value,
  );
  throw new StoreError(
    `${name} ${shown} is not well-formed Unicode: it has a lone surrogate (\\uD800-\\uDFFF), ` +
      "which cannot be stored as UTF-8; pass well-formed text",
  );
}

/** A hash or tag as read by the history query; empty reads back as absent. */
function readLabel(value: string | Uint8Array | null): string | undefined {
  return readText(value) || undefined;
}

function encode<D extends DescMessage>(
  schema: D,
  message: MessageShape<D>,
  kind: string,
  id: string,
): Uint8Array {
  try {
    return toBinary(schema, message);
  } catch (error) {
    throw new StoreError(
      `cannot encode ${describeResource(kind, id)} as ${schema?.typeName}: ${
        messageOf(error)
      }`,
      { cause: error },
    );
  }
}

function decode<D extends DescMessage>(
  schema: D,
  data: Uint8Array,
  kind: string,
  id: string | undefined,
): MessageShape<D> {
  // The column is not STRICT: a row written with raw SQL can hold text or a number.
  if (!(data instanceof Uint8Array)) {
    throw new StoreError(
      `the stored value of ${describeResource(kind, id)} is ${
        typeof data === "string" ? "text" : data === null ? "NULL" : "a number"
      }, not bytes: the row was not written by protostore (see \`deno run -A cli.ts inspect KIND ID\`)`,
    );
  }
  try {
    return fromBinary(schema, data);
  } catch (error) {
    throw new StoreError(
      `stored bytes of ${
        describeResource(kind, id)
      } do not decode as ${schema.typeName}: ` +
        `${
          messageOf(error)
        } (wrong schema, or a corrupt row: see \`deno run -A cli.ts inspect KIND ID\`)`,
      { cause: error },
    );
  }
}

function failure(
  op: string,
  kind: string | undefined,
  id: string | undefined,
  error: unknown,
  readOnly: boolean,
): StoreError {
  if (error instanceof StoreError) return error;
  const target = kind === undefined ? "" : ` of ${describeResource(kind, id)}`;
  // The check's name speaks to the Go daemon; protostore's caller gets its own words.
  const timeCheck = timeCheckFailure(messageOf(error));
  if (timeCheck !== undefined) {
    return new StoreError(`${op}${target} failed: ${timeCheck}`, {
      cause: error,
      code: "constraint",
    });
  }
  const code = sqliteErrorCode(error);
  const hint = code === "read_only" && readOnly
    ? ": the store was opened read-only"
    : failureHint(code);
  return new StoreError(`${op}${target} failed: ${messageOf(error)}${hint}`, {
    cause: error,
    code,
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}

/**
 * The smallest string greater than every string that starts with `prefix`, in SQLite's
 * BINARY order (UTF-8 bytes, which is code point order); `null` when there is none.
 */
function prefixUpperBound(prefix: string): string | null {
  const codePoints = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last < 0x10ffff) {
      // Surrogates are not characters; the next code point after U+D7FF is U+E000.
      codePoints.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return null;
}
