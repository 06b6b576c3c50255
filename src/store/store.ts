/**
 * The Store: protobuf resources keyed by (kind, id) and their immutable audit history,
 * on one SQLite connection: its transactions, revisions and type checks. The statements
 * it runs on `resources`, `resource_audit` and `resource_audit_orphans` are in
 * `sql.ts`.
 *
 * @module
 */
import type {
  DescMessage as ProtobufDescMessage,
  MessageShape as ProtobufMessageShape,
} from "@bufbuild/protobuf";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openConnection, returnArrays } from "../sqlite/connection.ts";
import { failureHint, sqliteErrorCode } from "../sqlite/errors.ts";
import {
  AuditNotFoundError,
  ConflictError,
  describeResource,
  messageOf,
  NotFoundError,
  StoreClosedError,
  StoreError,
  TypeMismatchError,
} from "../errors.ts";
import { prepareDatabase } from "../migrate/runner.ts";
import { timeCheckFailure } from "../migrate/time_checks.ts";
import { SchemaIds } from "./schemas.ts";
import {
  type PruneOptions,
  type PruneResult,
  pruneSnapshots,
  pruneSteps,
} from "./retention.ts";
import {
  pointInTime,
  RESTORE_SQL,
  snapshotLookup,
  type SnapshotRef,
  type SnapshotRow,
} from "./restore.ts";
import { RevisionCounter } from "./revisions.ts";
import {
  ChangeLog,
  type ChangesOptions,
  COMPACT_EVERY,
  DEFAULT_CHANGE_RETENTION,
  requireRevision,
  type ResourceChange,
} from "./changes.ts";
import {
  decodePageToken,
  encodePageToken,
  pageLimit,
  type PageOptions,
} from "./paging.ts";
import { CommitWaker, watchChanges, type WatchOptions } from "./watch.ts";
import { parseLengths } from "./concat.ts";
import {
  ARRAY_ROWS,
  type DataRow,
  type HistoryRow,
  type OrphanRow,
  SQL,
  type Statements,
} from "./sql.ts";
import type {
  AuditEntry,
  AuditEntryInfo,
  AuditMeta,
  OpenOptions,
  Page,
  ReadOptions,
  ResourceEntry,
  SavedResource,
  WriteOptions,
} from "./types.ts";
import {
  acceptedTypes,
  optionalLabel,
  prefixUpperBound,
  readLabel,
  requireKey,
  requireWellFormed,
} from "./arguments.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";

/**
 * @internal protobuf-es `DescMessage`: a message schema such as a generated `SkillSchema`.
 * Local aliases keep `deno doc --lint` from flagging npm types as private
 * (denoland/deno#27364); they are the very same types.
 */
type DescMessage = ProtobufDescMessage;
/** @internal protobuf-es `MessageShape`: the message type a schema describes. */
type MessageShape<D extends DescMessage> = ProtobufMessageShape<D>;

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
    return new Store(path, db, readOnly, options.changeRetention);
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
  /** Whether listings may come as one blob: a blob read as text is its bytes in UTF-8. */
  #concat: boolean;
  #depth = 0;
  #counter: RevisionCounter;
  #changes: ChangeLog;
  #retention: number;
  #dataVersion: StatementSync;
  /** Commits of this connection, which `PRAGMA data_version` does not count. */
  #commits = 0;
  #waker: CommitWaker | null = null;
  #restoreSql: Record<keyof typeof RESTORE_SQL, StatementSync> | undefined;

  /** Wraps an open, migrated connection; use {@linkcode openStore} instead. */
  constructor(
    path: string,
    db: DatabaseSync,
    readOnly: boolean,
    changeRetention: number = DEFAULT_CHANGE_RETENTION,
  ) {
    if (
      changeRetention !== Infinity &&
      (!Number.isSafeInteger(changeRetention) || changeRetention < 1)
    ) {
      throw new StoreError(
        `changeRetention must be a whole number of revisions >= 1 or Infinity, got ${
          String(changeRetention)
        }`,
      );
    }
    this.path = path;
    this.#db = db;
    this.#readOnly = readOnly;
    const statements = {} as Record<string, StatementSync>;
    for (const [name, sql] of Object.entries(SQL)) {
      statements[name] = db.prepare(sql);
    }
    this.#s = statements as Statements;
    for (const name of ARRAY_ROWS) returnArrays(this.#s[name]);
    this.#schemaIds = new SchemaIds(db);
    this.#counter = new RevisionCounter(db);
    this.#changes = new ChangeLog(db);
    this.#retention = changeRetention;
    this.#dataVersion = returnArrays(db.prepare("PRAGMA data_version"));
    this.#concat = (db.prepare("PRAGMA encoding").get() as {
      encoding: string;
    }).encoding === "UTF-8";
  }

  /**
   * Saves `message` as resource (kind, id): inserts it, or updates it in place (its
   * audit history is untouched). Records the message type with the row. Returns the
   * revision of the write and its time.
   *
   * With `ifRevision`, saves only if the resource is at that revision (`0`: only if it
   * does not exist), else throws {@linkcode ConflictError} (`expected`, `actual`) and
   * changes nothing: read, change, save with the revision read, retry on conflict.
   *
   * @example Create once, then update only what was read
   * ```ts
   * import assert from "node:assert/strict";
   * import { ConflictError, openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * const first = store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), {
   *   ifRevision: 0,
   * });
   * assert.equal(first.revision, 1);
   * const second = store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }), {
   *   ifRevision: first.revision,
   * });
   * assert.equal(second.revision, 2);
   * assert.throws(
   *   () => store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 3 }), {
   *     ifRevision: first.revision,
   *   }),
   *   (error) => error instanceof ConflictError && error.expected === 1 && error.actual === 2,
   * );
   * ```
   */
  saveResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    message: MessageShape<D>,
    options?: WriteOptions,
  ): SavedResource {
    requireKey("kind", kind);
    requireKey("id", id);
    const ifRevision = options?.ifRevision === undefined
      ? -1
      : requireRevision("ifRevision", options.ifRevision);
    const data = encodeMessage(schema, message, kind, id);
    const ms = Date.now();
    const updatedAt = isoTime(ms);
    return this.#write("saveResource", kind, id, () => {
      // A first write of a type records it: check first, so a conflict writes nothing.
      if (ifRevision >= 0 && !this.#schemaIds.has(schema)) {
        const actual = this.#revisionOf(kind, id);
        if (actual !== ifRevision) {
          throw new ConflictError(kind, id, ifRevision, actual);
        }
      }
      const schemaId = this.#schemaIds.idOf(schema);
      const revision = this.#counter.next();
      const s = this.#s;
      // all(), not get(): each statement steps to its end (see saveAudit). The row is
      // the stored updated_at, clamped when the clock is behind it; none is a conflict.
      const [row] = (ifRevision < 0
        ? s.upsert.all(kind, id, data, updatedAt, schemaId, revision)
        : ifRevision === 0
        ? s.create.all(kind, id, data, updatedAt, schemaId, revision)
        : s.updateIf.all(
          kind,
          id,
          data,
          updatedAt,
          schemaId,
          revision,
          ifRevision,
        )) as unknown as [string][];
      if (row === undefined) {
        throw new ConflictError(
          kind,
          id,
          ifRevision,
          this.#revisionOf(kind, id),
        );
      }
      this.#changes.record(revision, kind, id, false);
      const stored = row[0];
      return {
        revision,
        updatedAt: stored === updatedAt ? new Date(ms) : new Date(stored),
      };
    });
  }

  /**
   * The resource (kind, id) with its revisions: `{ kind, id, message, revision,
   * createRevision, updatedAt }`. Throws {@linkcode NotFoundError} when absent.
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
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
   * const entry = store.getResourceEntry(StructSchema, "agent", "a1");
   * assert.equal(entry.revision, 2);
   * assert.equal(entry.createRevision, 1);
   * assert.equal(entry.message.fields.v.kind.value, 2);
   * ```
   */
  getResourceEntry<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    options?: ReadOptions,
  ): ResourceEntry<MessageShape<D>> {
    requireKey("kind", kind);
    requireKey("id", id);
    const accept = acceptedTypes(options);
    const row = this.#read(
      "getResourceEntry",
      kind,
      id,
      () => this.#s.entry.get(kind, id),
    ) as
      | {
        data: Uint8Array;
        revision: number;
        create_revision: number;
        updated_at: string;
        schema_id: number | null;
      }
      | undefined;
    if (row === undefined) throw new NotFoundError(kind, id);
    this.#requireType(schema, row.schema_id, accept, kind, id);
    return {
      kind,
      id,
      message: decodeMessage(schema, row.data, kind, id),
      revision: row.revision,
      createRevision: row.create_revision,
      updatedAt: new Date(row.updated_at),
    };
  }

  /**
   * One page of the resources of `kind`, ordered by id: `{ entries, nextPageToken?,
   * revision }`. Pass `nextPageToken` back as `pageToken` for the next page; it is
   * absent on the last. Pages are keyset-paged (a seek to the id after the last one),
   * so page 10,000 costs what page 1 costs, and a resource saved or deleted between
   * pages is seen, or not, without shifting the others.
   *
   * @example List a kind page by page, then watch from the first page's revision
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * for (const id of ["a", "b", "c"]) {
   *   store.saveResource(StructSchema, "agent", id, fromJson(StructSchema, {}));
   * }
   * const first = store.listResourceEntries(StructSchema, "agent", { limit: 2 });
   * assert.deepEqual(first.entries.map((e) => e.id), ["a", "b"]);
   * const second = store.listResourceEntries(StructSchema, "agent", {
   *   limit: 2,
   *   pageToken: first.nextPageToken,
   * });
   * assert.deepEqual(second.entries.map((e) => e.id), ["c"]);
   * assert.equal(second.nextPageToken, undefined);
   * assert.equal(first.revision, 3);
   * ```
   */
  listResourceEntries<D extends DescMessage>(
    schema: D,
    kind: string,
    options?: PageOptions & ReadOptions,
  ): Page<ResourceEntry<MessageShape<D>>> {
    requireKey("kind", kind);
    const accept = acceptedTypes(options);
    const limit = pageLimit(options);
    const scope = ["resources", kind];
    const after = options?.pageToken === undefined
      ? ""
      : String(decodePageToken(options.pageToken, scope)[0]);
    const { rows, revision } = this.#readAt(
      "listResourceEntries",
      kind,
      undefined,
      () => this.#s.page.all(kind, after, limit + 1),
    );
    const page = rows as unknown as [
      string,
      Uint8Array,
      number,
      number,
      string,
      number | null,
    ][];
    const count = Math.min(page.length, limit);
    const entries: ResourceEntry<MessageShape<D>>[] = new Array(count);
    // Rows of a kind mostly share one schema id: check each id once per page.
    let checked: number | null = null;
    for (let i = 0; i < count; i++) {
      const [id, data, rev, createRevision, updatedAt, schemaId] = page[i];
      if (schemaId !== checked && schemaId !== null) {
        this.#requireType(schema, schemaId, accept, kind, id);
        checked = schemaId;
      }
      entries[i] = {
        kind,
        id,
        message: decodeMessage(schema, data, kind, id),
        revision: rev,
        createRevision,
        updatedAt: new Date(updatedAt),
      };
    }
    const result: Page<ResourceEntry<MessageShape<D>>> = { entries, revision };
    if (page.length > limit) {
      result.nextPageToken = encodePageToken(scope, [entries[count - 1].id]);
    }
    return result;
  }

  /**
   * The resource (kind, id) decoded with `schema`. Throws {@linkcode NotFoundError} when
   * absent, {@linkcode TypeMismatchError} when it was saved as another message type
   * (unless `options.acceptTypes` names it), and {@linkcode StoreError} when its bytes
   * do not decode with `schema`.
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
    options?: ReadOptions,
  ): MessageShape<D> {
    requireKey("kind", kind);
    requireKey("id", id);
    const accept = acceptedTypes(options);
    const row = this.#read(
      "getResource",
      kind,
      id,
      () => this.#s.get.get(kind, id),
    ) as unknown as DataRow | undefined;
    if (row === undefined) {
      throw new NotFoundError(kind, id);
    }
    this.#requireType(schema, row[1], accept, kind, id);
    return decodeMessage(schema, row[0], kind, id);
  }

  /**
   * Every resource of `kind`, decoded with `schema`, ordered by id; `[]` when none.
   * Throws {@linkcode TypeMismatchError}, naming the first such resource, when one was
   * saved as another message type (unless `options.acceptTypes` names it).
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
    options?: ReadOptions,
  ): MessageShape<D>[] {
    requireKey("kind", kind);
    const accept = acceptedTypes(options);
    if (this.#concat) {
      const messages = this.#listConcat(schema, kind, accept);
      if (messages !== null) return messages;
    }
    // Row by row: a non-UTF-8 file, a value that is not a blob, or over SQLite's size limit.
    const rows = this.#read(
      "listResources",
      kind,
      undefined,
      () => this.#s.list.all(kind),
    ) as unknown as DataRow[];
    const messages: MessageShape<D>[] = new Array(rows.length);
    // Rows of a kind mostly share one schema id: check each id once per listing.
    let checked: number | null = null;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      const schemaId = row[1];
      if (schemaId !== checked && schemaId !== null) {
        const recorded = this.#schemaIds.mismatch(schema, schemaId, accept);
        if (recorded !== undefined) {
          throw this.#listMismatch(kind, schemaId, recorded, schema.typeName);
        }
        checked = schemaId;
      }
      messages[i] = decodeMessage(schema, row[0], kind, undefined);
    }
    return messages;
  }

  /**
   * Deletes resource (kind, id) and, in the same transaction, its audit history.
   * Returns false when it did not exist. With `ifRevision`, deletes only if the
   * resource is at that revision, else throws {@linkcode ConflictError} and changes
   * nothing (`ifRevision: 0` passes only when there is nothing to delete).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ConflictError, openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * assert(store.deleteResource("agent", "missing") === false);
   * const { revision } = store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
   * assert.throws(() => store.deleteResource("agent", "a1", { ifRevision: revision + 1 }), ConflictError);
   * assert(store.deleteResource("agent", "a1", { ifRevision: revision }));
   * ```
   */
  deleteResource(kind: string, id: string, options?: WriteOptions): boolean {
    requireKey("kind", kind);
    requireKey("id", id);
    const ifRevision = options?.ifRevision === undefined
      ? -1
      : requireRevision("ifRevision", options.ifRevision);
    return this.#write("deleteResource", kind, id, () => {
      const revision = this.#counter.next();
      let deleted: number | bigint;
      if (ifRevision < 0) {
        deleted = this.#s.delete.run(kind, id).changes;
      } else if (ifRevision === 0) {
        const actual = this.#revisionOf(kind, id);
        if (actual !== 0) throw new ConflictError(kind, id, 0, actual);
        deleted = 0;
      } else {
        deleted = this.#s.deleteIf.run(kind, id, ifRevision).changes;
        if (deleted === 0) {
          throw new ConflictError(
            kind,
            id,
            ifRevision,
            this.#revisionOf(kind, id),
          );
        }
      }
      // The cascade to the history ran inside the DELETE.
      if (deleted === 0) return false;
      this.#changes.record(revision, kind, id, true);
      return true;
    });
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
    return this.#write("deleteResourcesByKind", kind, undefined, () => {
      this.#changes.recordDeletes(this.#counter.next(), kind);
      return Number(this.#s.deleteKind.run(kind).changes);
    });
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
    return this.#write("deleteResourcesByIdPrefix", kind, undefined, () => {
      this.#changes.recordDeletes(
        this.#counter.next(),
        kind,
        idPrefix,
        upper,
      );
      return Number(
        upper === null
          ? this.#s.deleteIdFrom.run(kind, idPrefix).changes
          : this.#s.deleteIdRange.run(kind, idPrefix, upper).changes,
      );
    });
  }

  /**
   * Archives `message` as a snapshot in the audit history of resource (kind,
   * resourceId), which must exist ({@linkcode NotFoundError} otherwise). Empty
   * `versionHash` or `tag` are stored as absent. `archivedAt` is the clock's time, but
   * never earlier than the resource's latest snapshot: when the clock stepped back, the
   * snapshot gets that latest time, so the last saved is always the newest.
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
   * assert.equal(entry.revision, 1); // the store's revision when it was archived
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
    const data = encodeMessage(schema, message, kind, resourceId);
    const ms = Date.now();
    const archivedAt = isoTime(ms);
    return this.#write("saveAudit", kind, resourceId, () => {
      let row: [number, string, number] | undefined;
      try {
        // all(), not get(): get() resets the statement before it reports SQLITE_DONE, and
        // SQLite then skips the WAL auto-checkpoint of that commit, so a run of audit
        // saves would grow the -wal file without bound (measured: 70 MB for 3,000).
        [row] = this.#s.insertAudit.all(
          kind,
          resourceId,
          data,
          archivedAt,
          versionHash,
          tag,
          this.#schemaIds.idOf(schema),
          this.#counter.pending(),
        ) as unknown as [number, string, number][];
      } catch (error) {
        // The foreign key refused the parent; the only other key (schema_id) was just
        // looked up or inserted, but check the parent rather than assume.
        if (
          (error as { errcode?: number })?.errcode ===
            SQLITE_CONSTRAINT_FOREIGNKEY &&
          this.#s.get.get(kind, resourceId) === undefined
        ) {
          throw new NotFoundError(
            kind,
            resourceId,
            `cannot archive a snapshot of resource ${
              describeResource(kind, resourceId)
            }: ` +
              "it does not exist (save the resource first)",
            { cause: error },
          );
        }
        throw error;
      }
      // The foreign key refuses a missing parent, so there is always a row.
      const [id, stored, revision] = row!;
      // Clamped by the statement when the clock is behind the latest snapshot.
      return {
        id,
        archivedAt: stored === archivedAt ? new Date(ms) : new Date(stored),
        revision,
      };
    }, this.#schemaIds.has(schema));
  }

  /**
   * The newest (last saved) snapshot of (kind, resourceId) with `versionHash`, decoded
   * with `schema`; {@linkcode AuditNotFoundError} when there is none,
   * {@linkcode TypeMismatchError} when it was saved as another type.
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
    options?: ReadOptions,
  ): MessageShape<D> {
    return this.#auditBy(
      schema,
      this.#s.auditByHash,
      "version hash",
      kind,
      resourceId,
      versionHash,
      options,
    );
  }

  /**
   * The newest (last saved) snapshot of (kind, resourceId) with `tag`, decoded with
   * `schema`; {@linkcode AuditNotFoundError} when there is none,
   * {@linkcode TypeMismatchError} when it was saved as another type.
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
    options?: ReadOptions,
  ): MessageShape<D> {
    return this.#auditBy(
      schema,
      this.#s.auditByTag,
      "tag",
      kind,
      resourceId,
      tag,
      options,
    );
  }

  /**
   * The audit history of (kind, resourceId), newest first: by archive time, which never
   * decreases along a history written by the Store, then by save order; imported
   * snapshots keep their recorded times. `[]` when none. Each entry carries the
   * revision it was archived at. Throws {@linkcode TypeMismatchError} when a snapshot
   * was saved as another type (unless `options.acceptTypes` names it). With a `limit`
   * or `pageToken` key it returns one page instead: `{ entries, nextPageToken?,
   * revision }` (keyset-paged, as {@linkcode Store.listResourceEntries}); options with
   * neither (`{ acceptTypes }`) still return the whole array.
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
   * const page = store.listAuditHistory(StructSchema, "agent", "a1", { limit: 1 });
   * assert.equal(page.entries[0].id, history[0].id);
   * const next = store.listAuditHistory(StructSchema, "agent", "a1", {
   *   limit: 1,
   *   pageToken: page.nextPageToken,
   * });
   * assert.equal(next.entries[0].tag, "old");
   * assert.equal(next.nextPageToken, undefined);
   * ```
   */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options:
      & ReadOptions
      & (
        | { limit: number | undefined; pageToken?: string }
        | { pageToken: string | undefined; limit?: number }
      ),
  ): Page<AuditEntry<MessageShape<D>>>;
  /**
   * The whole audit history of (kind, resourceId), newest first; `options.acceptTypes`
   * as for {@linkcode Store.getResource}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
   * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
   * const history = store.listAuditHistory(StructSchema, "agent", "a1", {
   *   acceptTypes: ["example.v1.OldAgent"],
   * });
   * assert.equal(history.length, 1);
   * ```
   */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions,
  ): AuditEntry<MessageShape<D>>[];
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions & PageOptions,
  ): AuditEntry<MessageShape<D>>[] | Page<AuditEntry<MessageShape<D>>> {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    const accept = acceptedTypes(options);
    // A `limit` or `pageToken` key asks for a page, even when undefined (the first
    // turn of a `pageToken: token` loop); `{ acceptTypes }` alone is a plain call.
    if (
      options === undefined ||
      !("limit" in options || "pageToken" in options)
    ) {
      const rows = this.#read(
        "listAuditHistory",
        kind,
        resourceId,
        () => this.#s.history.all(kind, resourceId),
      ) as unknown as HistoryRow[];
      return this.#historyEntries(
        schema,
        rows,
        rows.length,
        accept,
        kind,
        resourceId,
      );
    }
    const limit = pageLimit(options);
    const scope = ["history", kind, resourceId];
    const after = options.pageToken === undefined
      ? undefined
      : decodePageToken(options.pageToken, scope);
    const { rows, revision } = this.#readAt(
      "listAuditHistory",
      kind,
      resourceId,
      () =>
        after === undefined
          ? this.#s.historyFirst.all(kind, resourceId, limit + 1)
          : this.#s.historyPage.all(
            kind,
            resourceId,
            String(after[0]),
            Number(after[1]),
            limit + 1,
          ),
    );
    const page = rows as unknown as HistoryRow[];
    const count = Math.min(page.length, limit);
    const entries = this.#historyEntries(
      schema,
      page,
      count,
      accept,
      kind,
      resourceId,
    );
    const result: Page<AuditEntry<MessageShape<D>>> = { entries, revision };
    if (page.length > limit) {
      const [id, archivedAt] = page[count - 1];
      result.nextPageToken = encodePageToken(scope, [archivedAt, id]);
    }
    return result;
  }

  /** The first `count` history rows as entries, each recorded type checked once. */
  #historyEntries<D extends DescMessage>(
    schema: D,
    rows: HistoryRow[],
    count: number,
    accept: ReadonlySet<string> | undefined,
    kind: string,
    resourceId: string,
  ): AuditEntry<MessageShape<D>>[] {
    const entries: AuditEntry<MessageShape<D>>[] = new Array(count);
    let checked: number | null = null;
    for (let i = 0; i < count; i++) {
      const [id, archivedAt, versionHash, tag, data, revision, schemaId] =
        rows[i];
      if (schemaId !== checked && schemaId !== null) {
        this.#requireType(schema, schemaId, accept, kind, resourceId);
        checked = schemaId;
      }
      const entry: AuditEntry<MessageShape<D>> = {
        id,
        archivedAt: new Date(archivedAt),
        revision,
        message: decodeMessage(schema, data, kind, resourceId),
      };
      // Absent labels are absent keys, so entries deep-equal `{ id, archivedAt, ... }`.
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
    options?: ReadOptions,
  ): AuditEntry<MessageShape<D>>[] {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    const accept = acceptedTypes(options);
    const rows = this.#read(
      "listOrphanedAudit",
      kind,
      resourceId,
      () => this.#s.orphanHistory.all(kind, resourceId),
    ) as unknown as OrphanRow[];
    let checked: number | null = null;
    return rows.map(([id, archivedAt, versionHash, tag, data, schemaId]) => {
      if (schemaId !== checked && schemaId !== null) {
        this.#requireType(schema, schemaId, accept, kind, resourceId);
        checked = schemaId;
      }
      const entry: AuditEntry<MessageShape<D>> = {
        id,
        archivedAt: new Date(archivedAt),
        // Orphans were set apart by 0003, before revisions: they carry none.
        revision: 0,
        message: decodeMessage(schema, data, kind, resourceId),
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
   * Makes a snapshot of (kind, id) its current state again (`kubectl rollout undo`): the
   * snapshot named by `{ auditId }`, `{ versionHash }` or `{ tag }` (the newest with that
   * hash or tag) is written as the resource, byte for byte, in one transaction, as a new
   * change: a new revision, in the change feed, with the history untouched. Returns the
   * new `{ revision, updatedAt }`. With `ifRevision` it restores only if the resource is
   * at that revision, else throws {@linkcode ConflictError} and changes nothing.
   * {@linkcode AuditNotFoundError} when the resource has no such snapshot;
   * {@linkcode TypeMismatchError} when the snapshot was saved as another type than
   * `schema`'s (a snapshot without a recorded type must decode with `schema`, which is
   * then recorded).
   *
   * @example Roll back to the snapshot tagged "stable"
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * const v = (n: number) => fromJson(StructSchema, { v: n });
   * store.saveResource(StructSchema, "agent", "a1", v(1));
   * store.saveAudit(StructSchema, "agent", "a1", v(1), { tag: "stable" });
   * const broken = store.saveResource(StructSchema, "agent", "a1", v(2));
   * const { revision } = store.restoreResource(StructSchema, "agent", "a1", { tag: "stable" }, {
   *   ifRevision: broken.revision,
   * });
   * assert.equal(revision, broken.revision + 1);
   * assert.equal(store.getResource(StructSchema, "agent", "a1").fields.v.kind.value, 1);
   * ```
   */
  restoreResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    snapshot: SnapshotRef,
    options?: WriteOptions,
  ): SavedResource {
    return this.#restore(kind, id, snapshot, options, schema);
  }

  /**
   * The resource (kind, id) as it was at `at`, a Date or a revision: the newest snapshot
   * archived at or before it (SQL:2011 `AS OF` over the audit history), as
   * {@linkcode Store.listAuditHistory} returns a snapshot. Throws
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
   * const v = (n: number) => fromJson(StructSchema, { v: n });
   * const first = store.saveResource(StructSchema, "agent", "a1", v(1));
   * store.saveAudit(StructSchema, "agent", "a1", v(1));
   * store.saveResource(StructSchema, "agent", "a1", v(2));
   * store.saveAudit(StructSchema, "agent", "a1", v(2));
   * const then = store.getResourceAt(StructSchema, "agent", "a1", first.revision);
   * assert.equal(then.message.fields.v.kind.value, 1);
   * assert.equal(store.getResourceAt(StructSchema, "agent", "a1", new Date()).message.fields.v.kind.value, 2);
   * ```
   */
  getResourceAt<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    at: Date | number,
    options?: ReadOptions,
  ): AuditEntry<MessageShape<D>> {
    requireKey("kind", kind);
    requireKey("id", id);
    const accept = acceptedTypes(options);
    const [lookup, value] = pointInTime(at);
    const row = this.#read(
      "getResourceAt",
      kind,
      id,
      () => this.#restoreStatements()[lookup].get(kind, id, value),
    ) as SnapshotRow | undefined;
    if (row === undefined) throw new AuditNotFoundError(kind, id, { at });
    this.#requireType(schema, row.schema_id, accept, kind, id);
    const entry: AuditEntry<MessageShape<D>> = {
      id: row.id,
      archivedAt: new Date(row.archived_at),
      revision: row.revision,
      message: decodeMessage(schema, row.data, kind, id),
    };
    const hash = readLabel(row.version_hash);
    const tag = readLabel(row.tag);
    if (hash !== undefined) entry.versionHash = hash;
    if (tag !== undefined) entry.tag = tag;
    return entry;
  }

  /** @internal A restore without a schema, for the admin tools: the recorded type stays. */
  static restoreSnapshot(
    store: Store,
    kind: string,
    id: string,
    snapshot: SnapshotRef,
    options?: WriteOptions,
  ): SavedResource {
    return store.#restore(kind, id, snapshot, options, undefined);
  }

  #restore(
    kind: string,
    id: string,
    snapshot: SnapshotRef,
    options: WriteOptions | undefined,
    schema: DescMessage | undefined,
  ): SavedResource {
    requireKey("kind", kind);
    requireKey("id", id);
    const [lookup, value] = snapshotLookup(snapshot);
    const ifRevision = options?.ifRevision === undefined
      ? -1
      : requireRevision("ifRevision", options.ifRevision);
    const ms = Date.now();
    const updatedAt = isoTime(ms);
    return this.#write("restoreResource", kind, id, () => {
      const statements = this.#restoreStatements();
      const row = statements[lookup].get(kind, id, value) as
        | SnapshotRow
        | undefined;
      if (row === undefined) {
        throw new AuditNotFoundError(kind, id, snapshot);
      }
      if (ifRevision >= 0) {
        const actual = this.#revisionOf(kind, id);
        if (actual !== ifRevision) {
          throw new ConflictError(kind, id, ifRevision, actual);
        }
      }
      let schemaId = row.schema_id;
      if (schema !== undefined) {
        const recorded = schemaId === null ? undefined : (statements.typeOf.get(
          schemaId,
        ) as { type_name: string } | undefined)?.type_name;
        if (recorded === undefined) {
          decodeMessage(schema, row.data, kind, id);
          schemaId = this.#schemaIds.idOf(schema);
        } else if (recorded !== schema.typeName) {
          throw new TypeMismatchError(kind, id, recorded, schema.typeName);
        }
      }
      const revision = this.#counter.next();
      // all(): steps to its end (see saveAudit); the row is the stored, clamped time.
      const [[stored]] = this.#s.upsert.all(
        kind,
        id,
        row.data,
        updatedAt,
        schemaId,
        revision,
      ) as unknown as [string][];
      this.#changes.record(revision, kind, id, false);
      return {
        revision,
        updatedAt: stored === updatedAt ? new Date(ms) : new Date(stored),
      };
    });
  }

  #restoreStatements(): Record<keyof typeof RESTORE_SQL, StatementSync> {
    if (this.#restoreSql === undefined) {
      const db = this.#live();
      const statements = {} as Record<keyof typeof RESTORE_SQL, StatementSync>;
      for (const [name, sql] of Object.entries(RESTORE_SQL)) {
        statements[name as keyof typeof RESTORE_SQL] = db.prepare(sql);
      }
      this.#restoreSql = statements;
    }
    return this.#restoreSql;
  }

  /**
   * The current revision of the database: the revision of the newest committed change
   * (by any process), 0 for a new database. Inside a transaction that changed
   * resources: that transaction's revision.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * assert.equal(store.currentRevision(), 0);
   * store.transaction(() => {
   *   store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
   *   store.saveResource(StructSchema, "agent", "a2", fromJson(StructSchema, {}));
   * });
   * assert.equal(store.currentRevision(), 1); // one transaction, one revision
   * ```
   */
  currentRevision(): number {
    return this.#read(
      "currentRevision",
      undefined,
      undefined,
      () => this.#counter.current(),
    );
  }

  /**
   * The changes after `revision`, oldest first: `{ revision, kind, id, type }`, one per
   * resource changed at each revision (a `deleteResourcesByKind` of 1,000 resources is
   * 1,000 deletes at one revision). `limit` cuts only between revisions, so reading on
   * from the last change's revision misses nothing. Throws {@linkcode CompactedError}
   * when the change log no longer reaches back to `revision`: list again.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
   * store.saveResource(StructSchema, "skill", "s1", fromJson(StructSchema, {}));
   * store.deleteResource("agent", "a1");
   * assert.deepEqual(store.changesSince(1, { kind: "agent" }), [
   *   { revision: 3, kind: "agent", id: "a1", type: "delete" },
   * ]);
   * ```
   */
  changesSince(revision: number, options?: ChangesOptions): ResourceChange[] {
    return this.#since(revision, options).changes;
  }

  /**
   * The change feed as an async iterator: the changes after `afterRevision` (default:
   * the revision when `watch` is called), then every change committed later by this or
   * any other process, in revision order, each once, until `signal` aborts or the store
   * closes. A waiting watcher polls `PRAGMA data_version` every 10 ms (no busy loop).
   * List with {@linkcode Store.listResourceEntries}, then watch from the list's
   * revision, and nothing is missed. Throws {@linkcode CompactedError} when the
   * change log no longer reaches back to where the watcher is.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * const controller = new AbortController();
   * const seen: string[] = [];
   * const watching = (async () => {
   *   for await (const change of store.watch({ signal: controller.signal })) {
   *     seen.push(`${change.revision} ${change.type} ${change.id}`);
   *     if (seen.length === 2) controller.abort();
   *   }
   * })();
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
   * store.deleteResource("agent", "a1");
   * await watching;
   * assert.deepEqual(seen, ["1 put a1", "2 delete a1"]);
   * ```
   */
  watch(options: WatchOptions = {}): AsyncGenerator<ResourceChange, void> {
    const kind = options.kind;
    if (kind !== undefined) requireKey("kind", kind);
    const after = options.afterRevision === undefined
      ? this.currentRevision()
      : requireRevision("afterRevision", options.afterRevision);
    const waker = this.#waker ??= new CommitWaker(this.path);
    return this.#watching(waker, after, kind, options.signal);
  }

  async *#watching(
    waker: CommitWaker,
    after: number,
    kind: string | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<ResourceChange, void> {
    const release = waker.hold();
    try {
      yield* watchChanges(
        {
          since: (from, opts) => this.#since(from, opts),
          commitStamp: () => {
            if (this.#db === null) return null;
            const [version] = this.#dataVersion.get() as unknown as [number];
            return `${version}:${this.#commits}`;
          },
          wait: (s) =>
            this.#db === null ? Promise.resolve(false) : waker.wait(s),
        },
        after,
        kind,
        signal,
      );
    } finally {
      release();
    }
  }

  /**
   * Drops the changes at or below `throughRevision` from the change log; returns how
   * many were dropped. `changesSince`/`watch` from before it then throw
   * {@linkcode CompactedError}. The store also compacts by itself, keeping the last
   * `changeRetention` revisions (an {@linkcode OpenOptions} field).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { CompactedError, openStore } from "@protostore/store";
   * import { fromJson } from "@bufbuild/protobuf";
   * import { StructSchema } from "@bufbuild/protobuf/wkt";
   *
   * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
   * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
   * store.saveResource(StructSchema, "agent", "a2", fromJson(StructSchema, {}));
   * assert.equal(store.compactChanges(1), 1);
   * assert.throws(
   *   () => store.changesSince(0),
   *   (error) => error instanceof CompactedError && error.oldestRevision === 1,
   * );
   * assert.equal(store.changesSince(1).length, 1);
   * ```
   */
  compactChanges(throughRevision: number): number {
    requireRevision("throughRevision", throughRevision);
    return this.#write("compactChanges", undefined, undefined, () => {
      const current = this.#counter.current();
      if (throughRevision > current) {
        throw new StoreError(
          `cannot compact through revision ${throughRevision}: the current revision is ${current}`,
        );
      }
      return this.#changes.compact(throughRevision);
    });
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
    this.#commitOrRelease(db, depth);
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
    this.#waker?.close();
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

  /**
   * @internal `pruneAudit` one write transaction at a time (see `pruneSteps` in
   * retention.ts), for the async wrapper, which awaits the pauses between batches.
   */
  static pruneSteps(
    store: Store,
    options: PruneOptions,
  ): Generator<number, PruneResult, void> {
    const db = store.#live();
    const scope = typeof options?.kind === "string" ? options.kind : "*";
    return pruneSteps(
      db,
      options,
      (fn) => store.#write("pruneAudit", scope, undefined, fn),
    );
  }

  /**
   * @internal Opens a transaction (depth 0) or savepoint that may span awaits, for the
   * async wrapper, which keeps other callers out meanwhile. Pair with {@linkcode Store.leave}.
   */
  static enter(store: Store): void {
    store.#enter();
  }

  /** @internal Commits (or rolls back) what {@linkcode Store.enter} opened last. */
  static leave(store: Store, commit: boolean): void {
    store.#leave(commit);
  }

  #enter(): void {
    const db = this.#live();
    const depth = this.#depth;
    try {
      if (depth === 0) db.exec(this.#readOnly ? "BEGIN" : "BEGIN IMMEDIATE");
      else db.exec(`SAVEPOINT protostore_${depth}`);
    } catch (error) {
      throw failure("transaction", undefined, undefined, error, this.#readOnly);
    }
    this.#depth = depth + 1;
  }

  #leave(commit: boolean): void {
    const depth = this.#depth - 1;
    this.#depth = depth;
    const db = this.#db;
    if (!commit) {
      this.#undo(depth);
      return;
    }
    if (db === null) {
      throw new StoreClosedError(`the store for ${this.path} is closed`);
    }
    if (!db.isTransaction) {
      this.#undo(depth);
      throw new StoreError(
        "transaction commit failed: SQLite already rolled back the transaction after an " +
          "earlier error; run it again",
      );
    }
    this.#commitOrRelease(db, depth);
  }

  /** Commits the outermost transaction (compacting first when due) or releases a savepoint. */
  #commitOrRelease(db: DatabaseSync, depth: number): void {
    try {
      if (depth === 0) {
        this.#compactIfDue();
        db.exec("COMMIT");
        this.#committed();
      } else db.exec(`RELEASE protostore_${depth}`);
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
    options: ReadOptions | undefined,
  ): MessageShape<D> {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    if (typeof value !== "string") {
      throw new StoreError(`${label} must be a string, got ${typeof value}`);
    }
    requireWellFormed(label, value);
    const accept = acceptedTypes(options);
    const row = this.#read(
      `audit lookup by ${label}`,
      kind,
      resourceId,
      () => statement.get(kind, resourceId, value),
    ) as unknown as DataRow | undefined;
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
    this.#requireType(schema, row[1], accept, kind, resourceId);
    return decodeMessage(schema, row[0], kind, resourceId);
  }

  /** Throws {@linkcode TypeMismatchError} when a row recorded as `schemaId` is not `schema`'s. */
  #requireType(
    schema: DescMessage,
    schemaId: number | null,
    accept: ReadonlySet<string> | undefined,
    kind: string,
    id: string,
  ): void {
    const recorded = this.#schemaIds.mismatch(schema, schemaId, accept);
    if (recorded !== undefined) {
      throw new TypeMismatchError(kind, id, recorded, schema.typeName);
    }
  }

  /**
   * A listing from one `listConcat` row; `null` when it must be read row by row. Each
   * message is decoded from a view of a copy of at most {@linkcode CHUNK_ROWS} rows, so
   * a message kept alone (whose bytes fields are views) keeps few rows' bytes alive.
   */
  #listConcat<D extends DescMessage>(
    schema: D,
    kind: string,
    accept: ReadonlySet<string> | undefined,
  ): MessageShape<D>[] | null {
    this.#live();
    let row: [unknown, unknown, number, unknown, number];
    try {
      row = this.#s.listConcat.get(kind) as unknown as typeof row;
    } catch (error) {
      if ((error as { errcode?: number })?.errcode === SQLITE_TOOBIG) {
        return null;
      }
      throw failure("listResources", kind, undefined, error, this.#readOnly);
    }
    const [bytes, lengthText, count, schemaIds, notBlobs] = row;
    if (count === 0) return [];
    if (
      notBlobs !== 0 || !(bytes instanceof Uint8Array) ||
      typeof lengthText !== "string"
    ) {
      return null;
    }
    const lengths = parseLengths(lengthText, count);
    if (lengths === null) return null;
    if (schemaIds !== null) {
      for (const text of String(schemaIds).split(",")) {
        const schemaId = Number(text);
        const recorded = this.#schemaIds.mismatch(schema, schemaId, accept);
        if (recorded !== undefined) {
          throw this.#listMismatch(kind, schemaId, recorded, schema.typeName);
        }
      }
    }
    let total = 0;
    for (let i = 0; i < count; i++) total += lengths[i];
    if (total !== bytes.length) return null;
    const messages: MessageShape<D>[] = new Array(count);
    let at = 0;
    for (let first = 0; first < count; first += CHUNK_ROWS) {
      const last = Math.min(first + CHUNK_ROWS, count);
      let size = 0;
      for (let i = first; i < last; i++) size += lengths[i];
      const chunk = bytes.slice(at, at + size);
      let offset = 0;
      for (let i = first; i < last; i++) {
        const end = offset + lengths[i];
        messages[i] = decodeMessage(
          schema,
          chunk.subarray(offset, end),
          kind,
          undefined,
        );
        offset = end;
      }
      at += size;
    }
    return messages;
  }

  /** The error of a listing that met a row of another type: names the first such row. */
  #listMismatch(
    kind: string,
    schemaId: number,
    recorded: string,
    requested: string,
  ): TypeMismatchError {
    const row = this.#read(
      "listResources",
      kind,
      undefined,
      () => this.#s.listTypeMismatch.get(kind, schemaId),
    ) as { id: string } | undefined;
    return new TypeMismatchError(kind, row?.id ?? "", recorded, requested);
  }

  #read<T>(
    op: string,
    kind: string | undefined,
    id: string | undefined,
    fn: () => T,
  ): T {
    this.#live();
    try {
      return fn();
    } catch (error) {
      throw failure(op, kind, id, error, this.#readOnly);
    }
  }

  /** Runs `fn` and reads the current revision in one read transaction. */
  #readAt<T>(
    op: string,
    kind: string | undefined,
    id: string | undefined,
    fn: () => T,
  ): { rows: T; revision: number } {
    const db = this.#live();
    const own = !db.isTransaction;
    try {
      if (own) db.exec("BEGIN");
      const revision = this.#counter.current();
      const rows = fn();
      if (own) db.exec("COMMIT");
      return { rows, revision };
    } catch (error) {
      if (own && db.isTransaction) db.exec("ROLLBACK");
      throw failure(op, kind, id, error, this.#readOnly);
    }
  }

  #since(
    revision: number,
    options: ChangesOptions | undefined,
  ): { changes: ResourceChange[]; revision: number } {
    requireRevision("revision", revision);
    const kind = options?.kind;
    if (kind !== undefined) requireKey("kind", kind);
    const limit = options?.limit ?? Infinity;
    if (limit !== Infinity && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw new StoreError(
        `limit must be a whole number >= 1, got ${String(limit)}`,
      );
    }
    return this.#readAt(
      "changesSince",
      kind,
      undefined,
      () => this.#changes.since(revision, kind, limit),
    ).rows;
  }

  /** The revision of resource (kind, id), 0 when absent. */
  #revisionOf(kind: string, id: string): number {
    const row = this.#s.revisionOf.get(kind, id) as
      | { revision: number }
      | undefined;
    return row?.revision ?? 0;
  }

  /**
   * Before the commit of a transaction that took revision N with N a multiple of
   * {@linkcode COMPACT_EVERY}: drop the changes older than the retention. Any process
   * may commit that revision, so the log stays bounded whoever writes.
   */
  #compactIfDue(): void {
    const revision = this.#counter.pending();
    if (
      revision > 0 && revision % COMPACT_EVERY === 0 &&
      revision > this.#retention
    ) {
      this.#changes.compact(revision - this.#retention);
    }
  }

  /** A top-level transaction committed: watchers of this connection look again. */
  #committed(): void {
    if (this.#counter.pending() > 0) this.#commits++;
    this.#counter.end();
  }

  /**
   * Runs one write atomically: its own IMMEDIATE transaction, or inside the caller's.
   * `single`: `fn` runs exactly one statement. SQLite makes a lone statement atomic, and
   * outside a transaction it takes the write lock (waiting out the busy timeout) before
   * it reads, as BEGIN IMMEDIATE would; skipping BEGIN/COMMIT saves ~1 µs per write.
   */
  #write<T>(
    op: string,
    kind: string | undefined,
    id: string | undefined,
    fn: () => T,
    single = false,
  ): T {
    const db = this.#live();
    if (this.#readOnly) {
      throw new StoreError(
        `${op}${
          kind === undefined ? "" : ` of ${describeResource(kind, id)}`
        }: the store for ${this.path} was opened read-only`,
        { code: "read_only" },
      );
    }
    if (this.#depth > 0 && !db.isTransaction) {
      throw new StoreError(
        `${op}${
          kind === undefined ? "" : ` of ${describeResource(kind, id)}`
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
      this.#compactIfDue();
      db.exec("COMMIT");
      this.#committed();
      return result;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      this.#schemaIds.forget();
      this.#counter.end();
      throw failure(op, kind, id, error, false);
    }
  }

  #undo(depth: number): void {
    this.#schemaIds.forget();
    if (depth === 0) this.#counter.end();
    const db = this.#db;
    if (db === null || !db.isTransaction) return;
    const undo = depth === 0
      ? "ROLLBACK"
      : `ROLLBACK TO protostore_${depth}; RELEASE protostore_${depth}`;
    db.exec(undo);
  }
}

/** SQLite's result code for a string or blob over its size limit. */
const SQLITE_TOOBIG = 18;

/** Rows per copied chunk of a concatenated listing (see `#listConcat`). */
const CHUNK_ROWS = 256;

/** SQLite's extended result code for a refused foreign key. */
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;

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
