/**
 * The store on PostgreSQL: the `AsyncStore` contract on the tables of
 * `migrations/postgres/`, with this module owning their queries.
 *
 * Revisions: every write transaction that changes resources first updates the one row
 * of `revision_state` (`revision = revision + 1`) and holds its lock until commit.
 * Writers of resources therefore take revisions one after another in commit order, so
 * revision order is visibility order: a reader that sees revision N sees every change
 * up to N, and a watcher reading "changes after R" can never miss one that commits late
 * with a smaller number (a sequence cannot promise that). The cost: such writes are
 * serialized across all clients (see BENCHMARKS.md). The counter update and the write
 * are sent together (pipelined), so an autocommit save is three round trips: BEGIN,
 * counter + write, COMMIT. Snapshots (`saveAudit`) take no revision and no counter lock.
 *
 * @module
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  AuditNotFoundError,
  CompactedError,
  ConflictError,
  describeResource,
  NotFoundError,
  StoreClosedError,
  StoreError,
  TypeMismatchError,
} from "../errors.ts";
import type {
  AuditEntry,
  AuditEntryInfo,
  AuditMeta,
  Page,
  ReadOptions,
  ResourceEntry,
  SavedResource,
  WriteOptions,
} from "../store/types.ts";
import { decodeMessage, encodeMessage } from "../store/codec.ts";
import {
  acceptedTypes,
  optionalLabel,
  prefixUpperBound,
  requireKey,
  requireWellFormed,
} from "../store/arguments.ts";
import {
  type ChangesOptions,
  COMPACT_EVERY,
  DEFAULT_CHANGE_RETENTION,
  requireRevision,
  type ResourceChange,
} from "../store/changes.ts";
import {
  decodePageToken,
  encodePageToken,
  pageLimit,
  type PageOptions,
} from "../store/paging.ts";
import type { WatchOptions } from "../store/watch.ts";
import { descriptorSetOf } from "../store/schemas.ts";
import type { AsyncStore, PageRequest } from "../store/async_store.ts";
import { hasNul, refuseNul, refuseNulInRestore } from "../store/nul_refusal.ts";
import { refuseLongKeys } from "../store/key_size.ts";
import {
  pruneCriteria,
  type PruneOptions,
  type PrunePacing,
  type PruneResult,
} from "../store/retention.ts";
import {
  pointInTime,
  snapshotLookup,
  type SnapshotRef,
} from "../store/restore.ts";
import {
  isConnectionLost,
  isRetryable,
  openPool,
  pgFailure,
  redactUrl,
  requireSchemaName,
  type Sql,
  type TransactionSql,
} from "./connection.ts";
import { preparePostgres } from "./migrate.ts";
import { ChangeListener, watchPostgres } from "./watch.ts";

/** Options of {@linkcode connectPostgres}. */
export interface PostgresOptions {
  /** The schema holding the store's tables (default `public`); several stores can share
   * one database under different schemas. */
  schema?: string;
  /** Apply pending migrations on connect (default true). */
  migrate?: boolean;
  /** Never migrate or write; every write throws `StoreError`. */
  readOnly?: boolean;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** Revisions of changes kept in the change log (default 100,000), as on SQLite. */
  changeRetention?: number;
}

/**
 * The `NOTIFY` channel of the store in `schema`: every commit that takes a revision
 * notifies it, and watchers `LISTEN` on it.
 */
export function changeChannel(schema: string): string {
  return `protostore_${schema}`;
}

/** Statements are prepared once per connection (unprepared ones cost 3x a point read). */
const PREPARED = { prepare: true } as const;

const CURRENT = "(SELECT revision FROM revision_state WHERE id = 1)";

/** The columns of a snapshot as restore and point-in-time reads return it. */
const SNAPSHOT =
  "id, archived_at, version_hash, tag, data, schema_id, revision";

/** Every statement the store runs; the benchmarks run the same text on the raw driver. */
export const PG_SQL = {
  bump:
    "UPDATE revision_state SET revision = revision + 1 WHERE id = 1 RETURNING revision, pg_notify($1, revision::text)",
  unbump: "UPDATE revision_state SET revision = revision - 1 WHERE id = 1",
  upsert: `WITH w AS (
      INSERT INTO resources (kind, id, data, updated_at, schema_id, revision, create_revision)
      VALUES ($1, $2, $3, $4, $5, ${CURRENT}, ${CURRENT})
      ON CONFLICT (kind, id) DO UPDATE
      SET data = excluded.data, schema_id = excluded.schema_id, revision = excluded.revision,
        updated_at = greatest(resources.updated_at, excluded.updated_at)
      RETURNING kind, id, revision, updated_at),
    c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT revision, kind, id, false FROM w
      ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = false)
    SELECT revision, updated_at FROM w`,
  create: `WITH w AS (
      INSERT INTO resources (kind, id, data, updated_at, schema_id, revision, create_revision)
      VALUES ($1, $2, $3, $4, $5, ${CURRENT}, ${CURRENT})
      ON CONFLICT (kind, id) DO NOTHING
      RETURNING kind, id, revision, updated_at),
    c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT revision, kind, id, false FROM w
      ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = false)
    SELECT revision, updated_at FROM w`,
  updateIf: `WITH w AS (
      UPDATE resources SET data = $3, schema_id = $5, revision = ${CURRENT},
        updated_at = greatest(updated_at, $4)
      WHERE kind = $1 AND id = $2 AND revision = $6
      RETURNING kind, id, revision, updated_at),
    c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT revision, kind, id, false FROM w
      ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = false)
    SELECT revision, updated_at FROM w`,
  revisionOf: "SELECT revision FROM resources WHERE kind = $1 AND id = $2",
  delete:
    `WITH d AS (DELETE FROM resources WHERE kind = $1 AND id = $2 RETURNING kind, id),
    c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT ${CURRENT}, kind, id, true FROM d
      ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = true)
    SELECT count(*) AS n FROM d`,
  deleteIf:
    `WITH d AS (DELETE FROM resources WHERE kind = $1 AND id = $2 AND revision = $3
      RETURNING kind, id),
    c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT ${CURRENT}, kind, id, true FROM d
      ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = true)
    SELECT count(*) AS n FROM d`,
  deleteKind:
    `WITH d AS (DELETE FROM resources WHERE kind = $1 RETURNING kind, id),
    c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT ${CURRENT}, kind, id, true FROM d
      ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = true)
    SELECT count(*) AS n FROM d`,
  deleteIdRange:
    `WITH d AS (DELETE FROM resources WHERE kind = $1 AND id >= $2 AND id < $3
      RETURNING kind, id),
    c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT ${CURRENT}, kind, id, true FROM d
      ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = true)
    SELECT count(*) AS n FROM d`,
  deleteIdFrom: `WITH d AS (DELETE FROM resources WHERE kind = $1 AND id >= $2
      RETURNING kind, id),
    c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT ${CURRENT}, kind, id, true FROM d
      ON CONFLICT (revision, kind, id) DO UPDATE SET deleted = true)
    SELECT count(*) AS n FROM d`,
  get: "SELECT data, schema_id FROM resources WHERE kind = $1 AND id = $2",
  entry:
    "SELECT data, schema_id, revision, create_revision, updated_at FROM resources WHERE kind = $1 AND id = $2",
  list: "SELECT data, schema_id, id FROM resources WHERE kind = $1 ORDER BY id",
  // The page and the revision it was read at, in one statement (one snapshot).
  page:
    `SELECT s.revision AS at, r.id, r.data, r.schema_id, r.revision, r.create_revision,
      r.updated_at
    FROM revision_state s LEFT JOIN LATERAL (
      SELECT id, data, schema_id, revision, create_revision, updated_at FROM resources
      WHERE kind = $1 AND id > $2 ORDER BY id LIMIT $3) r ON true
    WHERE s.id = 1`,
  // The resource must exist (checked in the same statement, so a missing one inserts
  // nothing and a caller's transaction stays usable); archived_at never decreases along
  // a history: a clock stepped back is clamped to the latest archive time.
  insertAudit:
    `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash,
      tag, schema_id, revision)
    SELECT $1, $2, $3, greatest($4::text, (SELECT max(archived_at) FROM resource_audit
        WHERE kind = $1 AND resource_id = $2)), $5, $6, $7, ${CURRENT}
    WHERE EXISTS (SELECT 1 FROM resources WHERE kind = $1 AND id = $2)
    RETURNING id, archived_at, revision`,
  auditByHash: `SELECT data, schema_id FROM resource_audit
    WHERE kind = $1 AND resource_id = $2 AND version_hash = $3
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  auditByTag: `SELECT data, schema_id FROM resource_audit
    WHERE kind = $1 AND resource_id = $2 AND tag = $3
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  history: `SELECT id, archived_at, version_hash, tag, data, schema_id, revision
    FROM resource_audit WHERE kind = $1 AND resource_id = $2
    ORDER BY archived_at DESC, id DESC`,
  historyPage:
    `SELECT s.revision AS at, a.id, a.archived_at, a.version_hash, a.tag, a.data,
      a.schema_id, a.revision
    FROM revision_state s LEFT JOIN LATERAL (
      SELECT id, archived_at, version_hash, tag, data, schema_id, revision FROM resource_audit
      WHERE kind = $1 AND resource_id = $2 AND (archived_at, id) < ($3, $4)
      ORDER BY archived_at DESC, id DESC LIMIT $5) a ON true
    WHERE s.id = 1`,
  orphanHistory:
    `SELECT id, archived_at, version_hash, tag, data, schema_id FROM resource_audit_orphans
    WHERE kind = $1 AND resource_id = $2 ORDER BY archived_at DESC, id DESC`,
  // The snapshot lookups of restore and point-in-time reads (src/store/restore.ts).
  byAuditId: `SELECT ${SNAPSHOT} FROM resource_audit
    WHERE kind = $1 AND resource_id = $2 AND id = $3`,
  byHash: `SELECT ${SNAPSHOT} FROM resource_audit
    WHERE kind = $1 AND resource_id = $2 AND version_hash = $3
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  byTag: `SELECT ${SNAPSHOT} FROM resource_audit
    WHERE kind = $1 AND resource_id = $2 AND tag = $3
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  atTime: `SELECT ${SNAPSHOT} FROM resource_audit
    WHERE kind = $1 AND resource_id = $2 AND archived_at <= $3
    ORDER BY archived_at DESC, id DESC LIMIT 1`,
  // Revisions grow along a history; ties (one transaction) go to the later save.
  atRevision: `SELECT ${SNAPSHOT} FROM resource_audit
    WHERE kind = $1 AND resource_id = $2 AND revision <= $3
    ORDER BY revision DESC, archived_at DESC, id DESC LIMIT 1`,
  deleteAudit:
    `WITH a AS (DELETE FROM resource_audit WHERE kind = $1 AND resource_id = $2
      RETURNING 1),
    o AS (DELETE FROM resource_audit_orphans WHERE kind = $1 AND resource_id = $2 RETURNING 1)
    SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM o) AS n`,
  current:
    "SELECT revision, compacted_through FROM revision_state WHERE id = 1",
  // The changes after $1 (of kind $2 when not null), at most $3 rows but never cutting a
  // revision in two, with the log's extent, in one statement.
  since:
    `WITH s AS (SELECT revision, compacted_through FROM revision_state WHERE id = 1),
    cut AS (SELECT max(revision) AS r FROM (
      SELECT revision FROM resource_changes
      WHERE revision > $1 AND ($2::text IS NULL OR kind = $2)
      ORDER BY revision, kind, id LIMIT $3) x)
    SELECT s.revision AS at, s.compacted_through, c.revision, c.kind, c.id, c.deleted
    FROM s LEFT JOIN LATERAL (
      SELECT revision, kind, id, deleted FROM resource_changes
      WHERE revision > $1 AND revision <= (SELECT r FROM cut)
        AND ($2::text IS NULL OR kind = $2)
      ORDER BY revision, kind, id) c ON true`,
  compact: "DELETE FROM resource_changes WHERE revision <= $1",
  markCompacted:
    "UPDATE revision_state SET compacted_through = greatest(compacted_through, $1) WHERE id = 1",
  insertSchema:
    `INSERT INTO message_schemas (type_name, digest, descriptor_set, created_at)
    VALUES ($1, $2, $3, $4) ON CONFLICT (type_name, digest) DO NOTHING`,
  selectSchema:
    "SELECT id FROM message_schemas WHERE type_name = $1 AND digest = $2",
  typeNames:
    "SELECT id, type_name FROM message_schemas WHERE id = ANY($1::int8[])",
} as const;

/** What one store and the stores of its transactions share. */
interface Shared {
  pool: Sql;
  target: string;
  schema: string;
  channel: string;
  readOnly: boolean;
  retention: number;
  closed: boolean;
  /** Committed schema rows: schema object -> id. */
  schemaIds: Map<DescMessage, number>;
  /** schema id -> type name (rows are immutable). */
  typeNames: Map<number, string>;
  listener: ChangeListener | null;
  /**
   * Reads of the current revision by `watch()` calls without `afterRevision`, still
   * running: this store's writes wait for them, so a write made after `watch()` was
   * called is after the watch's start and is delivered (as on SQLite, where the read
   * is synchronous).
   */
  watchStarts: Set<Promise<unknown>>;
}

/** The state of one top-level transaction, shared by its savepoints. */
interface TxState {
  /** The counter update of this transaction, once sent. */
  bump: Promise<number> | null;
  /** Schema ids inserted in this transaction (cached only once it commits). */
  schemaIds: Map<DescMessage, number>;
  /** False once the callback settled. */
  open: boolean;
  /** Writes started in this transaction, and those still running (see `#unbump`). */
  writes: number;
  active: number;
}

interface Row {
  [column: string]: unknown;
}

/** A sentinel that rolls back an autocommit write that changed nothing. */
class NothingWritten<T> {
  constructor(readonly value: T) {}
}

/**
 * Connects to PostgreSQL at `url` and returns the store on `options.schema`, migrated
 * unless told otherwise. Prefer `connectStore`, which also opens SQLite files.
 */
export async function connectPostgres(
  url: string,
  options: PostgresOptions = {},
): Promise<PostgresStore> {
  const schema = requireSchemaName(options.schema ?? "public");
  const retention = options.changeRetention ?? DEFAULT_CHANGE_RETENTION;
  if (
    retention !== Infinity &&
    (!Number.isSafeInteger(retention) || retention < 1)
  ) {
    throw new StoreError(
      `changeRetention must be a whole number of revisions >= 1 or Infinity, got ${
        String(retention)
      }`,
    );
  }
  const readOnly = options.readOnly ?? false;
  const target = redactUrl(url);
  const pool = openPool(url, { schema, max: options.poolSize, readOnly });
  try {
    await preparePostgres(pool, schema, {
      migrate: options.migrate ?? true,
      readOnly,
    });
  } catch (error) {
    await pool.end({ timeout: 1 });
    throw pgFailure("connect", target, error);
  }
  return new PostgresStore(
    {
      pool,
      target,
      schema,
      channel: changeChannel(schema),
      readOnly,
      retention,
      closed: false,
      schemaIds: new Map(),
      typeNames: new Map(),
      listener: null,
      watchStarts: new Set(),
    },
    pool,
    null,
  );
}

/**
 * The store on PostgreSQL, an {@linkcode AsyncStore}. Get one from `connectStore`.
 */
export class PostgresStore implements AsyncStore {
  /** Always `"postgres"`. */
  readonly backend = "postgres" as const;
  #shared: Shared;
  #sql: Sql | TransactionSql;
  #tx: TxState | null;
  /** This store's own (save)point: closed when its callback settled. */
  #scope: { open: boolean } | null;

  /** @internal Use `connectStore`. */
  constructor(
    shared: Shared,
    sql: Sql | TransactionSql,
    tx: TxState | null,
    scope: { open: boolean } | null = tx,
  ) {
    this.#shared = shared;
    this.#sql = sql;
    this.#tx = tx;
    this.#scope = scope;
  }

  /** The connection string without its password. */
  get target(): string {
    return this.#shared.target;
  }

  /** The schema holding the store's tables. */
  get schema(): string {
    return this.#shared.schema;
  }

  /** See `Store.saveResource`. */
  async saveResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    message: MessageShape<D>,
    options?: WriteOptions,
  ): Promise<SavedResource> {
    requireKey("kind", kind);
    requireKey("id", id);
    if (hasNul(kind, id)) refuseNul({ kind, id });
    refuseLongKeys(kind, id);
    const ifRevision = options?.ifRevision === undefined
      ? -1
      : requireRevision("ifRevision", options.ifRevision);
    const data = encodeMessage(schema, message, kind, id);
    const updatedAt = new Date(Date.now()).toISOString();
    return await this.#write("saveResource", kind, id, async (sql, tx) => {
      const schemaId = await this.#schemaId(sql, tx, schema);
      const put = { kind, id, data, updatedAt, schemaId };
      return await this.#put(sql, tx, put, ifRevision);
    });
  }

  /** See `Store.getResource`. */
  async getResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>> {
    const [row, accept] = await this.#current("get", kind, id, options);
    return this.#decode(schema, row, kind, id, accept);
  }

  /** See `Store.getResourceEntry`. */
  async getResourceEntry<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    options?: ReadOptions,
  ): Promise<ResourceEntry<MessageShape<D>>> {
    const [row, accept] = await this.#current("entry", kind, id, options);
    return this.#entry(schema, row, kind, id, accept);
  }

  /** See `Store.listResources`. */
  async listResources<D extends DescMessage>(
    schema: D,
    kind: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>[]> {
    requireKey("kind", kind);
    const accept = acceptedTypes(options);
    if (hasNul(kind)) refuseNul({ kind });
    const rows = await this.#read(
      "listResources",
      kind,
      undefined,
      (sql) => sql.unsafe(PG_SQL.list, [kind], PREPARED),
    );
    const loading = this.#loadTypeNames(rows);
    if (loading !== undefined) await loading;
    const messages: MessageShape<D>[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      messages[i] = this.#decode(
        schema,
        rows[i],
        kind,
        rows[i].id as string,
        accept,
      );
    }
    return messages;
  }

  /** See `Store.listResourceEntries`. */
  async listResourceEntries<D extends DescMessage>(
    schema: D,
    kind: string,
    options?: PageOptions & ReadOptions,
  ): Promise<Page<ResourceEntry<MessageShape<D>>>> {
    requireKey("kind", kind);
    const accept = acceptedTypes(options);
    if (hasNul(kind)) refuseNul({ kind });
    const limit = pageLimit(options);
    const scope = ["resources", kind];
    const after = options?.pageToken === undefined
      ? ""
      : String(decodePageToken(options.pageToken, scope)[0]);
    const rows = await this.#read(
      "listResourceEntries",
      kind,
      undefined,
      (sql) => sql.unsafe(PG_SQL.page, [kind, after, limit + 1], PREPARED),
    );
    const revision = rows[0].at as number;
    const found = rows[0].id === null ? [] : rows;
    const loading = this.#loadTypeNames(found);
    if (loading !== undefined) await loading;
    const count = Math.min(found.length, limit);
    const entries: ResourceEntry<MessageShape<D>>[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const row = found[i];
      const id = row.id as string;
      entries[i] = this.#entry(schema, row, kind, id, accept);
    }
    const result: Page<ResourceEntry<MessageShape<D>>> = { entries, revision };
    if (found.length > limit) {
      result.nextPageToken = encodePageToken(scope, [entries[count - 1].id]);
    }
    return result;
  }

  /** See `Store.deleteResource`. */
  async deleteResource(
    kind: string,
    id: string,
    options?: WriteOptions,
  ): Promise<boolean> {
    requireKey("kind", kind);
    requireKey("id", id);
    if (hasNul(kind, id)) refuseNul({ kind, id });
    const ifRevision = options?.ifRevision === undefined
      ? -1
      : requireRevision("ifRevision", options.ifRevision);
    if (ifRevision === 0) {
      // "Only if it does not exist": nothing to delete either way.
      this.#writable("deleteResource", kind, id);
      const actual = await this.#read(
        "deleteResource",
        kind,
        id,
        (sql) => this.#revisionOf(sql, kind, id),
      );
      if (actual !== 0) throw new ConflictError(kind, id, 0, actual);
      return false;
    }
    return await this.#write("deleteResource", kind, id, async (sql, tx) => {
      const bump = this.#bump(sql, tx);
      const write = ifRevision < 0
        ? sql.unsafe(PG_SQL.delete, [kind, id], PREPARED)
        : sql.unsafe(PG_SQL.deleteIf, [kind, id, ifRevision], PREPARED);
      const [, rows] = await Promise.all([bump, write]);
      const deleted = rows[0].n as number;
      if (deleted === 0 && ifRevision > 0) {
        throw new ConflictError(
          kind,
          id,
          ifRevision,
          await this.#revisionOf(sql, kind, id),
        );
      }
      return deleted === 0 ? new NothingWritten(false) : true;
    });
  }

  /** See `Store.deleteResourcesByKind`. */
  async deleteResourcesByKind(kind: string): Promise<number> {
    requireKey("kind", kind);
    if (hasNul(kind)) refuseNul({ kind });
    return await this.#write(
      "deleteResourcesByKind",
      kind,
      undefined,
      async (sql, tx) => {
        const [, rows] = await Promise.all([
          this.#bump(sql, tx),
          sql.unsafe(PG_SQL.deleteKind, [kind], PREPARED),
        ]);
        const n = rows[0].n as number;
        return n === 0 ? new NothingWritten(0) : n;
      },
    );
  }

  /**
   * See `Store.deleteResourcesByIdPrefix`: a literal prefix (a range on the key, no
   * wildcards).
   *
   * @deprecated BadgerDB-era prefix delete.
   */
  async deleteResourcesByIdPrefix(
    kind: string,
    idPrefix: string,
  ): Promise<number> {
    requireKey("kind", kind);
    if (typeof idPrefix !== "string") {
      throw new StoreError(`idPrefix must be a string, got ${typeof idPrefix}`);
    }
    if (idPrefix === "") return await this.deleteResourcesByKind(kind);
    requireWellFormed("idPrefix", idPrefix);
    if (hasNul(kind, idPrefix)) refuseNul({ kind, idPrefix });
    const upper = prefixUpperBound(idPrefix);
    return await this.#write(
      "deleteResourcesByIdPrefix",
      kind,
      undefined,
      async (sql, tx) => {
        const [, rows] = await Promise.all([
          this.#bump(sql, tx),
          upper === null
            ? sql.unsafe(PG_SQL.deleteIdFrom, [kind, idPrefix], PREPARED)
            : sql.unsafe(
              PG_SQL.deleteIdRange,
              [kind, idPrefix, upper],
              PREPARED,
            ),
        ]);
        const n = rows[0].n as number;
        return n === 0 ? new NothingWritten(0) : n;
      },
    );
  }

  /** See `Store.saveAudit`. */
  async saveAudit<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    message: MessageShape<D>,
    meta: AuditMeta = {},
  ): Promise<AuditEntryInfo> {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    const versionHash = optionalLabel("versionHash", meta?.versionHash);
    const tag = optionalLabel("tag", meta?.tag);
    if (hasNul(kind, resourceId, versionHash, tag)) {
      refuseNul({ kind, resourceId, versionHash, tag });
    }
    refuseLongKeys(kind, resourceId, versionHash, tag);
    const data = encodeMessage(schema, message, kind, resourceId);
    const archivedAt = new Date(Date.now()).toISOString();
    return await this.#write("saveAudit", kind, resourceId, async (sql, tx) => {
      const schemaId = await this.#schemaId(sql, tx, schema);
      const rows = await sql.unsafe(PG_SQL.insertAudit, [
        kind,
        resourceId,
        data,
        archivedAt,
        versionHash,
        tag,
        schemaId,
      ], PREPARED);
      if (rows.length === 0) {
        throw new NotFoundError(
          kind,
          resourceId,
          `cannot archive a snapshot of resource ${
            describeResource(kind, resourceId)
          }: it does not exist (save the resource first)`,
        );
      }
      return {
        id: rows[0].id as number,
        archivedAt: new Date(rows[0].archived_at as string),
        revision: rows[0].revision as number,
      };
    }, this.#shared.schemaIds.has(schema));
  }

  /** See `Store.getAuditByHash`. */
  getAuditByHash<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    versionHash: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>> {
    return this.#auditBy(
      schema,
      PG_SQL.auditByHash,
      "version hash",
      kind,
      resourceId,
      versionHash,
      options,
    );
  }

  /** See `Store.getAuditByTag`. */
  getAuditByTag<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    tag: string,
    options?: ReadOptions,
  ): Promise<MessageShape<D>> {
    return this.#auditBy(
      schema,
      PG_SQL.auditByTag,
      "tag",
      kind,
      resourceId,
      tag,
      options,
    );
  }

  /** See `Store.listAuditHistory` (one page). */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options: PageRequest & ReadOptions,
  ): Promise<Page<AuditEntry<MessageShape<D>>>>;
  /** See `Store.listAuditHistory`. */
  listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>[]>;
  async listAuditHistory<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: PageOptions & ReadOptions,
  ): Promise<
    AuditEntry<MessageShape<D>>[] | Page<AuditEntry<MessageShape<D>>>
  > {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    const accept = acceptedTypes(options);
    if (hasNul(kind, resourceId)) refuseNul({ kind, resourceId });
    // A `limit` or `pageToken` key asks for a page, as on the Store; `{ acceptTypes }`
    // alone asks for the whole history.
    if (
      options === undefined || options === null ||
      !("limit" in options || "pageToken" in options)
    ) {
      return await this.#wholeHistory(
        "listAuditHistory",
        PG_SQL.history,
        schema,
        kind,
        resourceId,
        accept,
      );
    }
    const limit = pageLimit(options);
    const scope = ["history", kind, resourceId];
    const after = options.pageToken === undefined
      // Past every real (archived_at, id): "~" sorts after the digits of ISO times.
      ? ["~", 0]
      : decodePageToken(options.pageToken, scope);
    const rows = await this.#read(
      "listAuditHistory",
      kind,
      resourceId,
      (sql) =>
        sql.unsafe(PG_SQL.historyPage, [
          kind,
          resourceId,
          String(after[0]),
          Number(after[1]),
          limit + 1,
        ], PREPARED),
    );
    const revision = rows[0].at as number;
    const found = rows[0].id === null ? [] : rows;
    const count = Math.min(found.length, limit);
    const entries = await this.#historyEntries(
      schema,
      found,
      count,
      kind,
      resourceId,
      accept,
    );
    const result: Page<AuditEntry<MessageShape<D>>> = { entries, revision };
    if (found.length > limit) {
      const last = found[count - 1];
      result.nextPageToken = encodePageToken(scope, [
        last.archived_at as string,
        last.id as number,
      ]);
    }
    return result;
  }

  /** See `Store.listOrphanedAudit`. */
  async listOrphanedAudit<D extends DescMessage>(
    schema: D,
    kind: string,
    resourceId: string,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>[]> {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    const accept = acceptedTypes(options);
    if (hasNul(kind, resourceId)) refuseNul({ kind, resourceId });
    return await this.#wholeHistory(
      "listOrphanedAudit",
      PG_SQL.orphanHistory,
      schema,
      kind,
      resourceId,
      accept,
    );
  }

  /** See `Store.deleteAuditByResourceId`. */
  async deleteAuditByResourceId(
    kind: string,
    resourceId: string,
  ): Promise<number> {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    if (hasNul(kind, resourceId)) refuseNul({ kind, resourceId });
    return await this.#write(
      "deleteAuditByResourceId",
      kind,
      resourceId,
      async (sql) => {
        const rows = await sql.unsafe(
          PG_SQL.deleteAudit,
          [kind, resourceId],
          PREPARED,
        );
        return rows[0].n as number;
      },
      true,
    );
  }

  /**
   * See `Store.pruneAudit`. Outside a transaction each batch of whole resources is one
   * short transaction (retried on a serialization failure), so no row stays locked for
   * the whole prune; PostgreSQL needs no pause between batches (writers of other rows
   * never wait for a prune). Inside `transaction()` it is part of the caller's.
   */
  async pruneAudit(options: PruneOptions): Promise<number> {
    return (await this.#prune(options, false, PG_PRUNE_PACING)).removed;
  }

  /**
   * @internal A prune with its per-kind counts, or with `dryRun` only the counts (one
   * statement, so one snapshot); for the admin tools (`pruneStore`).
   */
  static prune(
    store: PostgresStore,
    options: PruneOptions,
    dryRun: boolean,
    pacing: PrunePacing = PG_PRUNE_PACING,
  ): Promise<PruneResult> {
    return store.#prune(options, dryRun, pacing);
  }

  async #prune(
    options: PruneOptions,
    dryRun: boolean,
    pacing: PrunePacing,
  ): Promise<PruneResult> {
    const criteria = pruneCriteria(options);
    if (hasNul(criteria.kind, criteria.id)) {
      refuseNul({ kind: criteria.kind, id: criteria.id });
    }
    const label = criteria.kind ?? "*";
    const result: PruneResult = { removed: 0, kinds: {}, dryRun };
    const tables: PruneTable[] = criteria.orphans
      ? ["resource_audit", "resource_audit_orphans"]
      : ["resource_audit"];
    const scope: PruneScope = criteria.id !== null
      ? "id"
      : criteria.kind !== null
      ? "kind"
      : "range";
    const base = [
      criteria.keepLast,
      criteria.olderThan,
      criteria.keepTagged,
    ] as const;
    if (dryRun) {
      // One statement over both tables: the counts are of one moment.
      const rows = await this.#read(
        "pruneAudit",
        label,
        undefined,
        (sql) =>
          sql.unsafe(
            pruneCountSql(tables, scope),
            [...base, ...wideBounds(criteria, scope)],
            PREPARED,
          ),
      );
      for (const row of rows) {
        addPruned(
          result,
          row.t as PruneTable,
          row.kind as string,
          row.n as number,
        );
      }
      return sortKinds(result);
    }
    this.#writable("pruneAudit", label, undefined);
    const batch = (
      table: PruneTable,
      bounded: boolean,
      bounds: (string | null)[],
    ) =>
      this.#write("pruneAudit", label, undefined, async (sql) => {
        const rows = await sql.unsafe(
          pruneDeleteSql(table, scope, bounded),
          [...base, ...bounds],
          PREPARED,
        );
        return rows.map((row) =>
          [row.kind as string, row.n as number] as const
        );
      });
    for (const table of tables) {
      if (scope === "id" || this.#tx !== null) {
        // One resource, or inside the caller's transaction: one statement.
        for (
          const [kind, n] of await batch(
            table,
            false,
            wideBounds(criteria, scope),
          )
        ) addPruned(result, table, kind, n);
        continue;
      }
      let batchRows = pacing.batchRows;
      let loKind = criteria.kind ?? "";
      let loId = "";
      for (let first = true;; first = false) {
        if (!first && pacing.pauseMs > 0) {
          await new Promise((r) => setTimeout(r, pacing.pauseMs));
        }
        // Outside the batch's transaction: the bound only sizes the batch; the batch
        // reads its resources afresh in its own statement.
        const [next] = await this.#read(
          "pruneAudit",
          label,
          undefined,
          (sql) =>
            sql.unsafe(
              pruneBoundarySql(table, scope),
              [loKind, loId, batchRows - 1],
              PREPARED,
            ),
        );
        const started = performance.now();
        const bounds = next === undefined
          ? [loKind, loId]
          : scope === "kind"
          ? [loKind, loId, next.resource_id as string]
          : [loKind, loId, next.kind as string, next.resource_id as string];
        for (
          const [kind, n] of await batch(table, next !== undefined, bounds)
        ) {
          addPruned(result, table, kind, n);
        }
        if (next === undefined) break;
        if (pacing.targetMs !== undefined) {
          const ms = Math.max(performance.now() - started, 1);
          batchRows = Math.round(
            Math.min(Math.max(batchRows * pacing.targetMs / ms, 100), 100_000),
          );
        }
        loKind = next.kind as string;
        loId = next.resource_id as string;
      }
    }
    return sortKinds(result);
  }

  /** See `Store.restoreResource`. */
  restoreResource<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    snapshot: SnapshotRef,
    options?: WriteOptions,
  ): Promise<SavedResource> {
    return this.#restore(kind, id, snapshot, options, schema);
  }

  /**
   * @internal A restore without a schema, for the admin tools: the snapshot's bytes
   * and recorded type stay as they are (`Store.restoreSnapshot` on SQLite).
   */
  static restoreSnapshot(
    store: PostgresStore,
    kind: string,
    id: string,
    snapshot: SnapshotRef,
    options?: WriteOptions,
  ): Promise<SavedResource> {
    return store.#restore(kind, id, snapshot, options, undefined);
  }

  async #restore(
    kind: string,
    id: string,
    snapshot: SnapshotRef,
    options: WriteOptions | undefined,
    schema: DescMessage | undefined,
  ): Promise<SavedResource> {
    requireKey("kind", kind);
    requireKey("id", id);
    const [lookup, value] = snapshotLookup(snapshot);
    refuseNulInRestore(kind, id, snapshot);
    const ifRevision = options?.ifRevision === undefined
      ? -1
      : requireRevision("ifRevision", options.ifRevision);
    const updatedAt = new Date(Date.now()).toISOString();
    return await this.#write("restoreResource", kind, id, async (sql, tx) => {
      // The checks come before the counter update, so a refused restore inside the
      // caller's transaction uses up no revision (as on SQLite).
      const [rows, actual] = await Promise.all([
        sql.unsafe(PG_SQL[lookup], [kind, id, value], PREPARED),
        ifRevision < 0 ? Promise.resolve(-1) : this.#revisionOf(sql, kind, id),
      ]);
      if (rows.length === 0) throw new AuditNotFoundError(kind, id, snapshot);
      if (ifRevision >= 0 && actual !== ifRevision) {
        throw new ConflictError(kind, id, ifRevision, actual);
      }
      const row = rows[0];
      const data = row.data as Uint8Array;
      let schemaId = row.schema_id as number | null;
      if (schema !== undefined) {
        const loading = this.#loadTypeNames(rows);
        if (loading !== undefined) await loading;
        const recorded = schemaId === null
          ? undefined
          : this.#shared.typeNames.get(schemaId);
        if (recorded === undefined) {
          // No recorded type: the bytes must decode with `schema`, which is recorded.
          decodeMessage(schema, data, kind, id);
          schemaId = await this.#schemaId(sql, tx, schema);
        } else if (recorded !== schema.typeName) {
          throw new TypeMismatchError(kind, id, recorded, schema.typeName);
        }
      }
      // After the counter update every writer of resources waits for this one, so the
      // conditional write sees the revision checked above or a conflict.
      const put = { kind, id, data, updatedAt, schemaId };
      return await this.#put(sql, tx, put, ifRevision);
    });
  }

  /** See `Store.getResourceAt`. */
  async getResourceAt<D extends DescMessage>(
    schema: D,
    kind: string,
    id: string,
    at: Date | number,
    options?: ReadOptions,
  ): Promise<AuditEntry<MessageShape<D>>> {
    requireKey("kind", kind);
    requireKey("id", id);
    const accept = acceptedTypes(options);
    const [lookup, value] = pointInTime(at);
    if (hasNul(kind, id)) refuseNul({ kind, id });
    const rows = await this.#read(
      "getResourceAt",
      kind,
      id,
      (sql) => sql.unsafe(PG_SQL[lookup], [kind, id, value], PREPARED),
    );
    if (rows.length === 0) throw new AuditNotFoundError(kind, id, { at });
    const [entry] = await this.#historyEntries(
      schema,
      rows,
      1,
      kind,
      id,
      accept,
    );
    return entry;
  }

  /** See `Store.currentRevision`. */
  async currentRevision(): Promise<number> {
    const rows = await this.#read(
      "currentRevision",
      undefined,
      undefined,
      (sql) => sql.unsafe(PG_SQL.current, [], PREPARED),
    );
    return rows[0].revision as number;
  }

  /** See `Store.changesSince`. */
  async changesSince(
    revision: number,
    options?: ChangesOptions,
  ): Promise<ResourceChange[]> {
    return (await this.#since(revision, options)).changes;
  }

  /** @internal The changes after `revision` and the revision they were read at. */
  async #since(
    revision: number,
    options: ChangesOptions | undefined,
  ): Promise<{ changes: ResourceChange[]; revision: number }> {
    requireRevision("revision", revision);
    const kind = options?.kind;
    if (kind !== undefined) {
      requireKey("kind", kind);
      if (hasNul(kind)) refuseNul({ kind });
    }
    const limit = options?.limit ?? Infinity;
    if (limit !== Infinity && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw new StoreError(
        `limit must be a whole number >= 1, got ${String(limit)}`,
      );
    }
    const rows = await this.#read(
      "changesSince",
      kind,
      undefined,
      (sql) =>
        sql.unsafe(PG_SQL.since, [
          revision,
          kind ?? null,
          Number.isFinite(limit) ? limit : null,
        ], PREPARED),
    );
    const compacted = rows[0].compacted_through as number;
    if (revision < compacted) throw new CompactedError(revision, compacted);
    const at = rows[0].at as number;
    if (rows[0].revision === null) return { changes: [], revision: at };
    const changes: ResourceChange[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      changes[i] = {
        revision: row.revision as number,
        kind: row.kind as string,
        id: row.id as string,
        type: row.deleted ? "delete" : "put",
      };
    }
    return { changes, revision: at };
  }

  /**
   * See `Store.watch`. Woken by `LISTEN/NOTIFY` (each revision's commit notifies the
   * schema's channel); after a dropped connection it re-reads from the last revision it
   * delivered, so nothing is missed; a safety poll every second covers a lost wake-up.
   */
  watch(options: WatchOptions = {}): AsyncGenerator<ResourceChange, void> {
    const kind = options.kind;
    if (kind !== undefined) {
      requireKey("kind", kind);
      if (hasNul(kind)) refuseNul({ kind });
    }
    const after = options.afterRevision === undefined
      ? undefined
      : requireRevision("afterRevision", options.afterRevision);
    const shared = this.#shared;
    if (shared.closed) {
      throw new StoreClosedError(`the store on ${shared.target} is closed`);
    }
    const listener = shared.listener ??= new ChangeListener(
      shared.pool,
      shared.channel,
    );
    let start: number | Promise<number> | undefined = after;
    if (start === undefined) {
      // The start is the revision when watch() is called, not when iteration begins.
      const reading = this.currentRevision();
      const settled = reading.then(() => {}, () => {});
      shared.watchStarts.add(settled);
      settled.then(() => shared.watchStarts.delete(settled));
      start = reading;
    }
    return watchPostgres(
      {
        listener,
        since: (from, opts) => this.#since(from, opts),
        current: () => this.currentRevision(),
        closed: () => shared.closed,
      },
      start,
      kind,
      options.signal,
    );
  }

  /** See `Store.compactChanges`. */
  async compactChanges(throughRevision: number): Promise<number> {
    requireRevision("throughRevision", throughRevision);
    return await this.#write(
      "compactChanges",
      undefined,
      undefined,
      async (sql) => {
        const [state] = await sql.unsafe(
          PG_SQL.current + " FOR UPDATE",
          [],
          PREPARED,
        );
        const current = state.revision as number;
        if (throughRevision > current) {
          throw new StoreError(
            `cannot compact through revision ${throughRevision}: the current revision is ${current}`,
          );
        }
        return await compact(sql, throughRevision);
      },
    );
  }

  /** See {@linkcode AsyncStore.transaction}: one connection; nested calls are savepoints. */
  async transaction<T>(fn: (tx: AsyncStore) => Promise<T>): Promise<T> {
    if (typeof fn !== "function") {
      throw new StoreError(`transaction() takes a function, got ${typeof fn}`);
    }
    this.#live();
    // The callback's own rejection is rethrown as it is (as on SQLite); only the
    // driver's failures (BEGIN, COMMIT, a lost connection) become StoreErrors.
    let thrown: { error: unknown } | undefined;
    const outer = this.#tx;
    if (outer !== null) {
      const sql = this.#sql as TransactionSql;
      const bumpBefore = outer.bump;
      const idsBefore = new Map(outer.schemaIds);
      const scope = { open: true };
      try {
        return await sql.savepoint(async (sp) => {
          try {
            return await fn(
              new PostgresStore(
                this.#shared,
                sp as TransactionSql,
                outer,
                scope,
              ),
            );
          } catch (error) {
            thrown = { error };
            return abandonIfLost(error);
          } finally {
            scope.open = false;
          }
        }) as T;
      } catch (error) {
        // The savepoint rolled back: so did a counter update or schema row made inside.
        outer.bump = bumpBefore;
        outer.schemaIds = idsBefore;
        if (thrown !== undefined && error === thrown.error) throw error;
        throw pgFailure("transaction", this.#shared.target, error);
      }
    }
    const state: TxState = {
      bump: null,
      schemaIds: new Map(),
      open: true,
      writes: 0,
      active: 0,
    };
    try {
      const result = await this.#shared.pool.begin(
        this.#shared.readOnly ? "read only" : "",
        async (sql) => {
          try {
            const value = await fn(new PostgresStore(this.#shared, sql, state));
            await this.#compactIfDue(sql, state);
            return value;
          } catch (error) {
            thrown = { error };
            return abandonIfLost(error);
          } finally {
            state.open = false;
          }
        },
      ) as T;
      for (const [schema, id] of state.schemaIds) {
        this.#shared.schemaIds.set(schema, id);
      }
      return result;
    } catch (error) {
      if (thrown !== undefined && error === thrown.error) throw error;
      throw pgFailure("transaction", this.#shared.target, error);
    }
  }

  /** Ends the pool (and the watchers' listener); idempotent. */
  async close(): Promise<void> {
    if (this.#tx !== null) {
      throw new StoreError(
        "close() the outer store, not the one a transaction handed out",
      );
    }
    const shared = this.#shared;
    if (shared.closed) return;
    shared.closed = true;
    await shared.listener?.close();
    await shared.pool.end({ timeout: 5 });
  }

  /** Closes the store at the end of an `await using` block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #live(): void {
    if (this.#shared.closed) {
      throw new StoreClosedError(
        `the store on ${this.#shared.target} is closed`,
      );
    }
    if (this.#scope !== null && !this.#scope.open) throw ended();
  }

  #writable(op: string, kind: string | undefined, id: string | undefined) {
    this.#live();
    if (this.#shared.readOnly) {
      throw new StoreError(
        `${op}${
          kind === undefined ? "" : ` of ${describeResource(kind, id)}`
        }: the store on ${this.#shared.target} was opened read-only`,
        { code: "read_only" },
      );
    }
  }

  async #read<T>(
    op: string,
    kind: string | undefined,
    id: string | undefined,
    fn: (sql: Sql | TransactionSql) => Promise<T>,
  ): Promise<T> {
    this.#live();
    try {
      return await fn(this.#sql);
    } catch (error) {
      throw pgFailure(op + target(kind, id), this.#shared.target, error);
    }
  }

  /**
   * Runs one write atomically: inside the caller's transaction, or in its own, retried
   * (up to 5 times) on a serialization failure or deadlock, which change nothing.
   */
  async #write<T>(
    op: string,
    kind: string | undefined,
    id: string | undefined,
    fn: (
      sql: Sql | TransactionSql,
      tx: TxState,
    ) => Promise<T | NothingWritten<T>>,
    single = false,
  ): Promise<T> {
    this.#writable(op, kind, id);
    if (this.#shared.watchStarts.size > 0) {
      await Promise.all(this.#shared.watchStarts);
    }
    if (this.#tx === null && single) {
      // One statement that takes no revision is atomic on its own: no BEGIN/COMMIT.
      const state: TxState = {
        bump: null,
        schemaIds: new Map(),
        open: true,
        writes: 0,
        active: 0,
      };
      try {
        const result = await fn(this.#shared.pool, state);
        return result instanceof NothingWritten ? result.value : result;
      } catch (error) {
        throw pgFailure(op + target(kind, id), this.#shared.target, error);
      }
    }
    if (this.#tx !== null) {
      const tx = this.#tx;
      // The revision is ours alone to give back when we took it and no other write of
      // the transaction ran meanwhile (`Promise.all` of writes on `tx`).
      const bumped = tx.bump !== null;
      const nth = ++tx.writes;
      tx.active++;
      const alone = () => !bumped && tx.active === 1 && tx.writes === nth;
      try {
        const result = await fn(this.#sql, tx);
        if (!(result instanceof NothingWritten)) return result;
        if (alone()) await this.#unbump(tx);
        return result.value;
      } catch (error) {
        if (alone() && error instanceof ConflictError) await this.#unbump(tx);
        throw pgFailure(op + target(kind, id), this.#shared.target, error);
      } finally {
        tx.active--;
      }
    }
    for (let attempt = 0;; attempt++) {
      const state: TxState = {
        bump: null,
        schemaIds: new Map(),
        open: true,
        writes: 0,
        active: 0,
      };
      try {
        const result = await this.#shared.pool.begin(async (sql) => {
          try {
            const value = await fn(sql, state);
            // Changed nothing: roll back, so no revision is used up.
            if (value instanceof NothingWritten) throw value;
            await this.#compactIfDue(sql, state);
            return value;
          } catch (error) {
            return abandonIfLost(error);
          }
        }) as T;
        for (const [schema, schemaId] of state.schemaIds) {
          this.#shared.schemaIds.set(schema, schemaId);
        }
        return result;
      } catch (error) {
        if (error instanceof NothingWritten) return error.value as T;
        if (isRetryable(error) && attempt < 5) continue;
        throw pgFailure(op + target(kind, id), this.#shared.target, error);
      } finally {
        state.open = false;
      }
    }
  }

  /** Sends this transaction's counter update (once; later calls share it). */
  #bump(sql: Sql | TransactionSql, tx: TxState): Promise<number> {
    if (tx.bump === null) {
      tx.bump = sql.unsafe(PG_SQL.bump, [this.#shared.channel], PREPARED).then((
        rows,
      ) => rows[0].revision as number);
    }
    return tx.bump;
  }

  /**
   * Gives back the revision a write of the caller's transaction took first and then
   * wrote nothing with (refused, or nothing to delete), as SQLite never takes one; the
   * transaction still holds the counter row, so no one else has seen it.
   */
  async #unbump(tx: TxState): Promise<void> {
    if (tx.bump === null) return;
    tx.bump = null;
    await this.#sql.unsafe(PG_SQL.unbump, [], PREPARED);
  }

  /** Before commit: every 1,024th revision drops changes older than the retention. */
  async #compactIfDue(sql: Sql | TransactionSql, tx: TxState): Promise<void> {
    if (tx.bump === null) return;
    const revision = await tx.bump;
    const retention = this.#shared.retention;
    if (revision % COMPACT_EVERY === 0 && revision > retention) {
      await compact(sql, revision - retention);
    }
  }

  /**
   * Writes the resource row at this transaction's revision: unconditionally when
   * `ifRevision` is negative, as a new row only when it is 0, else only over that
   * revision; a {@linkcode ConflictError} with the revision found when refused.
   */
  async #put(
    sql: Sql | TransactionSql,
    tx: TxState,
    put: {
      kind: string;
      id: string;
      data: Uint8Array;
      updatedAt: string;
      schemaId: number | null;
    },
    ifRevision: number,
  ): Promise<SavedResource> {
    const { kind, id } = put;
    const bump = this.#bump(sql, tx);
    const row = [kind, id, put.data, put.updatedAt, put.schemaId];
    const write = ifRevision < 0
      ? sql.unsafe(PG_SQL.upsert, row, PREPARED)
      : ifRevision === 0
      ? sql.unsafe(PG_SQL.create, row, PREPARED)
      : sql.unsafe(PG_SQL.updateIf, [...row, ifRevision], PREPARED);
    const [, rows] = await Promise.all([bump, write]);
    if (rows.length === 0) {
      throw new ConflictError(
        kind,
        id,
        ifRevision,
        await this.#revisionOf(sql, kind, id),
      );
    }
    return {
      revision: rows[0].revision as number,
      updatedAt: new Date(rows[0].updated_at as string),
    };
  }

  async #revisionOf(
    sql: Sql | TransactionSql,
    kind: string,
    id: string,
  ): Promise<number> {
    const rows = await sql.unsafe(PG_SQL.revisionOf, [kind, id], PREPARED);
    return rows.length === 0 ? 0 : rows[0].revision as number;
  }

  /** The `message_schemas` id of `schema`, inserting its row in this transaction if new. */
  async #schemaId(
    sql: Sql | TransactionSql,
    tx: TxState,
    schema: DescMessage,
  ): Promise<number> {
    const known = this.#shared.schemaIds.get(schema) ??
      tx.schemaIds.get(schema);
    if (known !== undefined) return known;
    const info = descriptorSetOf(schema);
    await sql.unsafe(PG_SQL.insertSchema, [
      info.typeName,
      info.digest,
      info.descriptorSet,
      new Date().toISOString(),
    ], PREPARED);
    const [row] = await sql.unsafe(PG_SQL.selectSchema, [
      info.typeName,
      info.digest,
    ], PREPARED);
    const id = row.id as number;
    tx.schemaIds.set(schema, id);
    this.#shared.typeNames.set(id, info.typeName);
    return id;
  }

  /**
   * Loads the type names of the schema ids in `rows` that are not cached yet; resolves
   * when they are, `undefined` when they already were.
   */
  #loadTypeNames(rows: Row[]): Promise<void> | undefined {
    const names = this.#shared.typeNames;
    let missing: number[] | undefined;
    for (const row of rows) {
      const schemaId = row.schema_id as number | null;
      if (schemaId !== null && !names.has(schemaId)) {
        (missing ??= []).push(schemaId);
      }
    }
    if (missing === undefined) return undefined;
    return this.#sql.unsafe(PG_SQL.typeNames, [missing], PREPARED).then(
      (found) => {
        for (const row of found) {
          names.set(row.id as number, row.type_name as string);
        }
      },
    );
  }

  /**
   * The row of (kind, id) as `statement` reads it, its type name cached, with the
   * types `options` accept; {@linkcode NotFoundError} when there is none.
   */
  async #current(
    statement: "get" | "entry",
    kind: string,
    id: string,
    options: ReadOptions | undefined,
  ): Promise<[Row, ReadonlySet<string> | undefined]> {
    requireKey("kind", kind);
    requireKey("id", id);
    const accept = acceptedTypes(options);
    if (hasNul(kind, id)) refuseNul({ kind, id });
    const rows = await this.#read(
      statement === "get" ? "getResource" : "getResourceEntry",
      kind,
      id,
      (sql) => sql.unsafe(PG_SQL[statement], [kind, id], PREPARED),
    );
    if (rows.length === 0) throw new NotFoundError(kind, id);
    const loading = this.#loadTypeNames(rows);
    if (loading !== undefined) await loading;
    return [rows[0], accept];
  }

  /** A resource row read with its revisions as a {@linkcode ResourceEntry}. */
  #entry<D extends DescMessage>(
    schema: D,
    row: Row,
    kind: string,
    id: string,
    accept: ReadonlySet<string> | undefined,
  ): ResourceEntry<MessageShape<D>> {
    return {
      kind,
      id,
      message: this.#decode(schema, row, kind, id, accept),
      revision: row.revision as number,
      createRevision: row.create_revision as number,
      updatedAt: new Date(row.updated_at as string),
    };
  }

  /** Decodes a row's `data` after checking its recorded type against `schema`'s. */
  #decode<D extends DescMessage>(
    schema: D,
    row: Row,
    kind: string,
    id: string,
    accept: ReadonlySet<string> | undefined,
  ): MessageShape<D> {
    const schemaId = row.schema_id as number | null;
    if (schemaId !== null) {
      const recorded = this.#shared.typeNames.get(schemaId);
      if (
        recorded !== undefined && recorded !== schema.typeName &&
        !accept?.has(recorded)
      ) {
        throw new TypeMismatchError(kind, id, recorded, schema.typeName);
      }
    }
    return decodeMessage(schema, row.data as Uint8Array, kind, id);
  }

  /** Every snapshot `statement` reads for (kind, resourceId), decoded, in its order. */
  async #wholeHistory<D extends DescMessage>(
    op: string,
    statement: string,
    schema: D,
    kind: string,
    resourceId: string,
    accept: ReadonlySet<string> | undefined,
  ): Promise<AuditEntry<MessageShape<D>>[]> {
    const rows = await this.#read(
      op,
      kind,
      resourceId,
      (sql) => sql.unsafe(statement, [kind, resourceId], PREPARED),
    );
    return await this.#historyEntries(
      schema,
      rows,
      rows.length,
      kind,
      resourceId,
      accept,
    );
  }

  async #historyEntries<D extends DescMessage>(
    schema: D,
    rows: Row[],
    count: number,
    kind: string,
    resourceId: string,
    accept: ReadonlySet<string> | undefined,
  ): Promise<AuditEntry<MessageShape<D>>[]> {
    const loading = this.#loadTypeNames(rows);
    if (loading !== undefined) await loading;
    const entries: AuditEntry<MessageShape<D>>[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const row = rows[i];
      const entry: AuditEntry<MessageShape<D>> = {
        id: row.id as number,
        archivedAt: new Date(row.archived_at as string),
        // Orphans were set apart before revisions: they carry none (as on SQLite).
        revision: (row.revision ?? 0) as number,
        message: this.#decode(schema, row, kind, resourceId, accept),
      };
      if (row.version_hash) entry.versionHash = row.version_hash as string;
      if (row.tag) entry.tag = row.tag as string;
      entries[i] = entry;
    }
    return entries;
  }

  async #auditBy<D extends DescMessage>(
    schema: D,
    statement: string,
    label: string,
    kind: string,
    resourceId: string,
    value: string,
    options: ReadOptions | undefined,
  ): Promise<MessageShape<D>> {
    requireKey("kind", kind);
    requireKey("resourceId", resourceId);
    if (typeof value !== "string") {
      throw new StoreError(`${label} must be a string, got ${typeof value}`);
    }
    requireWellFormed(label, value);
    const accept = acceptedTypes(options);
    if (hasNul(kind, resourceId, value)) {
      refuseNul({ kind, resourceId, [label]: value });
    }
    const rows = await this.#read(
      `audit lookup by ${label}`,
      kind,
      resourceId,
      (sql) => sql.unsafe(statement, [kind, resourceId, value], PREPARED),
    );
    if (rows.length === 0) {
      throw new AuditNotFoundError(
        kind,
        resourceId,
        label === "tag" ? { tag: value } : { versionHash: value },
        `no snapshot of resource ${
          describeResource(kind, resourceId)
        } has ${label} ${JSON.stringify(value)}`,
      );
    }
    const loading = this.#loadTypeNames(rows);
    if (loading !== undefined) await loading;
    return this.#decode(schema, rows[0], kind, resourceId, accept);
  }
}

type PruneTable = "resource_audit" | "resource_audit_orphans";
type PruneScope = "range" | "kind" | "id";

/**
 * The default pacing of a prune on PostgreSQL: batches of whole resources sized to take
 * about 200 ms, no pause (PostgreSQL locks rows, not the database: other writers never
 * wait for a batch unless they write the very snapshots it deletes).
 */
export const PG_PRUNE_PACING: PrunePacing = {
  batchRows: 5000,
  targetMs: 200,
  pauseMs: 0,
};

/**
 * The snapshots of `table` a prune removes among the resources of its scope, as on
 * SQLite (src/store/retention.ts): ranked newest first per resource, outside the newest
 * `$1`, archived before `$2` (when not null), untagged unless `$3` is false. Scope
 * parameters from `$4`: `id` (kind, id), `kind` (kind, after id[, through id]), `range`
 * (after kind and id[, through kind and id]). Bounded and unbounded forms are separate
 * statements so a generic plan keeps both bounds on the index.
 */
function pruneCandidatesSql(
  table: PruneTable,
  scope: PruneScope,
  bounded: boolean,
): string {
  const where = scope === "id"
    ? "kind = $4 AND resource_id = $5"
    : scope === "kind"
    ? `kind = $4 AND resource_id > $5${bounded ? " AND resource_id <= $6" : ""}`
    : `(kind, resource_id) > ($4, $5)${
      bounded ? " AND (kind, resource_id) <= ($6, $7)" : ""
    }`;
  return `SELECT id, kind FROM (
      SELECT id, kind, archived_at, tag, row_number() OVER (
        PARTITION BY kind, resource_id ORDER BY archived_at DESC, id DESC) AS rank
      FROM ${table} WHERE ${where}) ranked
    WHERE rank > $1 AND ($2::text IS NULL OR archived_at < $2)
      AND (NOT $3::boolean OR coalesce(tag, '') = '')`;
}

/** Deletes one batch and returns how many snapshots went, per kind. */
function pruneDeleteSql(
  table: PruneTable,
  scope: PruneScope,
  bounded: boolean,
): string {
  return `WITH c AS (${pruneCandidatesSql(table, scope, bounded)}),
    d AS (DELETE FROM ${table} t USING c WHERE t.id = c.id RETURNING t.kind)
    SELECT kind, count(*) AS n FROM d GROUP BY kind`;
}

/** Counts what a prune would remove from every table, per kind, in one statement. */
function pruneCountSql(tables: PruneTable[], scope: PruneScope): string {
  return tables.map((table) =>
    `SELECT '${table}' AS t, kind, count(*) AS n
    FROM (${pruneCandidatesSql(table, scope, false)}) x GROUP BY kind`
  ).join(" UNION ALL ");
}

/** The last resource of the next batch: the one holding the row a batch size ahead. */
function pruneBoundarySql(table: PruneTable, scope: PruneScope): string {
  return scope === "kind"
    ? `SELECT kind, resource_id FROM ${table} WHERE kind = $1 AND resource_id > $2
      ORDER BY kind, resource_id OFFSET $3 LIMIT 1`
    : `SELECT kind, resource_id FROM ${table} WHERE (kind, resource_id) > ($1, $2)
      ORDER BY kind, resource_id OFFSET $3 LIMIT 1`;
}

/** The scope parameters of a whole-scope (unbounded) statement. */
function wideBounds(
  criteria: { kind: string | null; id: string | null },
  scope: PruneScope,
): (string | null)[] {
  // Kinds and ids are non-empty, so "" is below every one of them.
  return scope === "id"
    ? [criteria.kind, criteria.id]
    : scope === "kind"
    ? [criteria.kind, ""]
    : ["", ""];
}

function addPruned(
  result: PruneResult,
  table: PruneTable,
  kind: string,
  n: number,
): void {
  const entry = result.kinds[kind] ??= { audit: 0, orphans: 0 };
  if (table === "resource_audit") entry.audit += n;
  else entry.orphans += n;
  result.removed += n;
}

/** Kinds in code point order, as SQLite's prune reports them. */
function sortKinds(result: PruneResult): PruneResult {
  result.kinds = Object.fromEntries(
    Object.entries(result.kinds).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
  );
  return result;
}

async function compact(
  sql: Sql | TransactionSql,
  through: number,
): Promise<number> {
  const result = await sql.unsafe(PG_SQL.compact, [through], PREPARED);
  await sql.unsafe(PG_SQL.markCompacted, [through], PREPARED);
  return result.count;
}

function target(kind: string | undefined, id: string | undefined): string {
  return kind === undefined ? "" : ` of ${describeResource(kind, id)}`;
}

/**
 * Rethrows `error`, unless the connection is gone: then returns a promise that never
 * settles. The driver (postgres 3.4.9) answers a transaction callback's rejection with
 * a ROLLBACK, and sent on a closed connection that throws an uncaught TypeError from a
 * timer (`socket.write` of null), which would crash the process. The server has rolled
 * the transaction back already, and the driver rejects the transaction itself when the
 * connection closes, so the caller still gets the error; only the ROLLBACK is skipped.
 */
function abandonIfLost(error: unknown): never {
  if (
    isConnectionLost(error) ||
    (error instanceof StoreError && isConnectionLost(error.cause))
  ) {
    return new Promise<never>(() => {}) as never;
  }
  throw error;
}

function ended(): StoreError {
  return new StoreError(
    "this transaction's store was used after its callback settled; use the outer store",
  );
}

export { isConnectionLost };
