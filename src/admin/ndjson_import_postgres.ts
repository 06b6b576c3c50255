/**
 * Import of an NDJSON export into a PostgreSQL store, with SQLite's rules (the line
 * reading is shared, `ndjson_import.ts`): one transaction, all or nothing; the first
 * line that cannot be imported named by its number; a resource already in the store
 * refused; into an empty store the snapshot ids and revisions kept, else every
 * imported resource takes one new revision, logged in the change feed and notified,
 * so watchers see the import.
 *
 * Rows are sent in batches (one statement per table and batch, `json_to_recordset`),
 * so memory stays bounded and the round trips are few; a refused row in a batch is
 * found again by its line.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  openPool,
  pgFailure,
  requireSchemaName,
  type Sql,
} from "../postgres/connection.ts";
import {
  lockMigrations,
  migrateLocked,
  needsMigration,
  unlockMigrations,
} from "../postgres/migrate.ts";
import { changeChannel } from "../postgres/store.ts";
import {
  alreadyExists,
  type ImportPlan,
  type ImportRecord,
  type ImportTarget,
  LineError,
  type NdjsonImportSummary,
  runImport,
  snapshotFirst,
} from "./ndjson_import.ts";
import { pgLabel, type PgLocation } from "./postgres.ts";

/** Rows per batch, and hex characters of message bytes per batch: bound memory. */
const BATCH_ROWS = 1000;
const BATCH_CHARS = 8 << 20;

const AUDIT_SEQUENCE = "pg_get_serial_sequence('resource_audit', 'id')";

/**
 * Imports an export written by `exportNdjson` or `exportStore` (a file path or a
 * stream of its bytes) into the PostgreSQL store at `location` (created and migrated
 * if needed), as `importNdjson` does into a SQLite store.
 */
export async function importPostgresNdjson(
  location: PgLocation,
  source: string | ReadableStream<Uint8Array>,
): Promise<NdjsonImportSummary> {
  const label = pgLabel(location);
  const schema = requireSchemaName(location.schema ?? "public");
  // One connection: the transaction is opened with a plain BEGIN on it.
  const pool = openPool(location.url, { schema, max: 1 });
  try {
    let migrate: boolean;
    try {
      migrate = await needsMigration(pool, schema);
    } catch (error) {
      if (typeof source !== "string") await source.cancel().catch(() => {});
      throw error;
    }
    // A missing or older store is created and migrated inside the import's own
    // transaction, so a failed import leaves no schema or tables behind.
    if (!migrate) {
      return await runImport(source, new PostgresTarget(pool, schema, label));
    }
    await lockMigrations(pool, schema);
    try {
      return await runImport(
        source,
        new PostgresTarget(pool, schema, label, true),
      );
    } finally {
      await unlockMigrations(pool, schema).catch(() => {});
    }
  } catch (error) {
    throw pgFailure("import", label, error);
  } finally {
    await pool.end({ timeout: 5 });
  }
}

type Resource = Extract<ImportRecord, { type: "resource" }>;
type Snapshot = Extract<ImportRecord, { type: "snapshot" | "orphan" }>;

class PostgresTarget implements ImportTarget {
  readonly revisions = true;
  newSchemas = 0;
  #sql: Sql;
  #schema: string;
  #migrate: boolean;
  #channel: string;
  #label: string;
  #open = false;
  #plan: ImportPlan = { keepIds: false, keepRevisions: false };
  #importRevision = 0;
  #bumped = false;
  #schemas = new Map<number, number>();
  #resources: { line: number; r: Resource }[] = [];
  #snapshots: { line: number; r: Snapshot }[] = [];
  #orphans: { line: number; r: Snapshot }[] = [];
  #chars = 0;
  /** The last resource line read: its snapshots follow it. */
  #lastResource: string | null = null;

  /** `migrate`: create or migrate the store first, in the import's transaction. */
  constructor(sql: Sql, schema: string, label: string, migrate = false) {
    this.#sql = sql;
    this.#schema = schema;
    this.#channel = changeChannel(schema);
    this.#label = label;
    this.#migrate = migrate;
  }

  async begin(): Promise<ImportPlan> {
    const sql = this.#sql;
    await sql.unsafe("BEGIN");
    this.#open = true;
    if (this.#migrate) await migrateLocked(sql, this.#schema);
    // As SQLite's BEGIN IMMEDIATE: no other writer until the import commits (readers
    // go on). Writers of resources update revision_state first, so they wait here.
    await sql.unsafe(
      `LOCK TABLE revision_state, resources, resource_audit, resource_audit_orphans
       IN EXCLUSIVE MODE`,
    );
    const [row] = await sql.unsafe(
      `SELECT s.revision,
         EXISTS (SELECT 1 FROM resources) AS resources,
         EXISTS (SELECT 1 FROM resource_audit) OR
           EXISTS (SELECT 1 FROM resource_audit_orphans) AS snapshots
       FROM revision_state s WHERE s.id = 1`,
    );
    const revision = row.revision as number;
    this.#plan = {
      keepIds: !row.snapshots,
      keepRevisions: revision === 0 && !row.resources,
    };
    this.#importRevision = revision + 1;
    return this.#plan;
  }

  async write(record: ImportRecord, line: number): Promise<void> {
    switch (record.type) {
      case "schema": {
        refuseNul(line, record.typeName, record.digest, record.createdAt);
        const sql = this.#sql;
        const inserted = await sql.unsafe(
          `INSERT INTO message_schemas (type_name, digest, descriptor_set, created_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT (type_name, digest) DO NOTHING
           RETURNING id`,
          [
            record.typeName,
            record.digest,
            record.descriptorSet,
            record.createdAt,
          ],
        );
        if (inserted.length > 0) this.newSchemas++;
        const [row] = inserted.length > 0 ? inserted : await sql.unsafe(
          "SELECT id FROM message_schemas WHERE type_name = $1 AND digest = $2",
          [record.typeName, record.digest],
        );
        this.#schemas.set(record.schemaId, row.id as number);
        return;
      }
      case "resource":
        refuseNul(line, record.kind, record.id, record.updatedAt);
        this.#resources.push({ line, r: record });
        this.#lastResource = keyOf(record.kind, record.id);
        break;
      case "snapshot":
        refuseNul(
          line,
          record.kind,
          record.resourceId,
          record.archivedAt,
          record.versionHash,
          record.tag,
        );
        if (keyOf(record.kind, record.resourceId) !== this.#lastResource) {
          // Not right after its resource: it must be in the store already.
          await this.flush();
          const found = await this.#sql.unsafe(
            "SELECT 1 FROM resources WHERE kind = $1 AND id = $2",
            [record.kind, record.resourceId],
          );
          if (found.length === 0) throw snapshotFirst(record, line);
        }
        this.#snapshots.push({ line, r: record });
        break;
      case "orphan":
        refuseNul(
          line,
          record.kind,
          record.resourceId,
          record.archivedAt,
          record.versionHash,
          record.tag,
        );
        this.#orphans.push({ line, r: record });
        break;
    }
    this.#chars += record.data.length * 2;
    if (
      this.#resources.length + this.#snapshots.length + this.#orphans.length >=
        BATCH_ROWS || this.#chars >= BATCH_CHARS
    ) {
      await this.flush();
    }
  }

  #schemaOf(schemaId: number | null): number | null {
    return schemaId === null ? null : this.#schemas.get(schemaId)!;
  }

  /** Writes the pending rows: resources first (the snapshots need them). */
  async flush(): Promise<void> {
    const sql = this.#sql;
    const keep = this.#plan;
    if (this.#resources.length > 0) {
      const batch = this.#resources;
      this.#resources = [];
      const log = !keep.keepRevisions;
      if (log && !this.#bumped) {
        // The import's one revision, notified at commit so watchers wake.
        await sql.unsafe(
          `UPDATE revision_state SET revision = $1 WHERE id = 1
           RETURNING pg_notify($2, revision::text)`,
          [this.#importRevision, this.#channel],
        );
        this.#bumped = true;
      }
      const rows = batch.map(({ r }, n) => {
        const revision = r.revision ?? this.#importRevision;
        return {
          n,
          kind: r.kind,
          id: r.id,
          data: hex(r.data),
          updated_at: r.updatedAt,
          schema_id: this.#schemaOf(r.schemaId),
          revision,
          create_revision: r.createRevision ?? revision,
        };
      });
      const inserted = await sql.unsafe(
        `WITH x AS (SELECT * FROM json_to_recordset($1::text::json) AS x(n int, kind text,
           id text, data text, updated_at text, schema_id int8, revision int8,
           create_revision int8)),
         w AS (INSERT INTO resources (kind, id, data, updated_at, schema_id, revision,
             create_revision)
           SELECT kind, id, decode(data, 'hex'), updated_at, schema_id, revision,
             create_revision FROM x ORDER BY n
           ON CONFLICT (kind, id) DO NOTHING RETURNING kind, id)${
          log
            ? `, c AS (INSERT INTO resource_changes (revision, kind, id, deleted)
           SELECT ${this.#importRevision}::int8, kind, id, false FROM w)`
            : ""
        }
         SELECT kind, id FROM w`,
        [JSON.stringify(rows)],
      );
      if (inserted.length < batch.length) {
        // The first line whose row did not go in: it was in the store (or twice here).
        const done = new Set(
          inserted.map((r) => keyOf(r.kind as string, r.id as string)),
        );
        for (const { line, r } of batch) {
          const key = keyOf(r.kind, r.id);
          if (!done.delete(key)) throw alreadyExists(r, line);
        }
      }
    }
    if (this.#snapshots.length > 0) {
      const batch = this.#snapshots;
      this.#snapshots = [];
      await sql.unsafe(
        `INSERT INTO resource_audit (${
          keep.keepIds ? "id, " : ""
        }kind, resource_id, data, archived_at, version_hash, tag, schema_id, revision)
         SELECT ${
          keep.keepIds ? "id, " : ""
        }kind, resource_id, decode(data, 'hex'), archived_at, version_hash, tag,
           schema_id, revision
         FROM json_to_recordset($1::text::json) AS x(n int, id int8, kind text,
           resource_id text, data text, archived_at text, version_hash text, tag text,
           schema_id int8, revision int8)
         ORDER BY n`,
        [JSON.stringify(this.#snapshotRows(batch, true))],
      );
    }
    if (this.#orphans.length > 0) {
      const batch = this.#orphans;
      this.#orphans = [];
      // Orphans share the snapshots' ids: new ones come from the same sequence.
      await sql.unsafe(
        `INSERT INTO resource_audit_orphans (id, kind, resource_id, data, archived_at,
           version_hash, tag, schema_id)
         SELECT ${
          keep.keepIds ? "id" : `nextval(${AUDIT_SEQUENCE})`
        }, kind, resource_id, decode(data, 'hex'), archived_at, version_hash, tag,
           schema_id
         FROM (SELECT * FROM json_to_recordset($1::text::json) AS x(n int, id int8,
           kind text, resource_id text, data text, archived_at text,
           version_hash text, tag text, schema_id int8) ORDER BY n) s`,
        [JSON.stringify(this.#snapshotRows(batch, false))],
      );
    }
    this.#chars = 0;
  }

  #snapshotRows(batch: { line: number; r: Snapshot }[], revision: boolean) {
    return batch.map(({ r }, n) => ({
      n,
      id: r.auditId,
      kind: r.kind,
      resource_id: r.resourceId,
      data: hex(r.data),
      archived_at: r.archivedAt,
      version_hash: r.versionHash,
      tag: r.tag,
      schema_id: this.#schemaOf(r.schemaId),
      ...(revision ? { revision: r.revision ?? this.#importRevision } : {}),
    }));
  }

  async finish(header: Record<string, unknown>): Promise<void> {
    const sql = this.#sql;
    await this.flush();
    // New snapshots never reuse an id, not even an orphan's.
    await sql.unsafe(
      `SELECT setval(${AUDIT_SEQUENCE}, greatest(m, 1), m > 0) FROM (SELECT greatest(
         coalesce(pg_sequence_last_value(${AUDIT_SEQUENCE}::regclass), 0),
         (SELECT coalesce(max(id), 0) FROM resource_audit),
         (SELECT coalesce(max(id), 0) FROM resource_audit_orphans)) AS m) s`,
    );
    if (this.#plan.keepRevisions) {
      // The export's changes are not in this log: a watcher from before must list.
      const [row] = typeof header.revision === "number"
        ? [{ r: header.revision }]
        : await sql.unsafe(
          `SELECT greatest((SELECT coalesce(max(revision), 0) FROM resources),
             (SELECT coalesce(max(revision), 0) FROM resource_audit)) AS r`,
        );
      if ((row.r as number) > 0) {
        await sql.unsafe(
          `UPDATE revision_state SET revision = greatest(revision, $1),
             compacted_through = greatest(compacted_through, $1) WHERE id = 1
           RETURNING pg_notify($2, revision::text)`,
          [row.r as number, this.#channel],
        );
      }
    }
    await sql.unsafe("COMMIT");
    this.#open = false;
  }

  async rollback(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    try {
      await this.#sql.unsafe("ROLLBACK");
    } catch (error) {
      throw pgFailure("rolling back the import", this.#label, error);
    }
  }
}

/** A map key for (kind, id): NUL never occurs in them here (refused first). */
function keyOf(kind: string, id: string): string {
  return `${kind}\u0000${id}`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .toString("hex");
}

/** PostgreSQL's text cannot hold NUL: refused by line, as the store refuses it. */
function refuseNul(line: number, ...values: (string | null)[]): void {
  for (const value of values) {
    if (value !== null && value.includes("\u0000")) {
      throw new LineError(
        line,
        `${
          JSON.stringify(value)
        } contains NUL (\\u0000), which PostgreSQL cannot store in text`,
      );
    }
  }
}
