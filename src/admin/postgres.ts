/**
 * The admin reads on PostgreSQL: migration status, migrate, the overview, and one
 * resource or history. Every read runs in one `READ ONLY` transaction (the server
 * refuses any write in it), so inspecting a production store cannot change it.
 *
 * One resource, one snapshot, and a restore preview (the resource and one snapshot) are
 * read here and decoded by the same code as on SQLite (`inspectedRow`, `toEntry`,
 * `previewOf`), so the output is the same on both backends. A whole
 * history is read into a private scratch SQLite file (its rows and the message schemas
 * they use), which the SQLite history then streams from: `AuditHistory.entries()` is a
 * synchronous, lazy generator, which a PostgreSQL cursor cannot feed.
 *
 * @module
 */
import { AuditNotFoundError, StoreError } from "../errors.ts";
import {
  openPool,
  pgFailure,
  requireSchemaName,
  type Sql,
  storeLabel,
  type TransactionSql,
} from "../postgres/connection.ts";
import { PG_MIGRATIONS, preparePostgres } from "../postgres/migrate.ts";
import { openSqliteTarget } from "../copy/sqlite.ts";
import { TABLES } from "../copy/tables.ts";
import type { CopyValue } from "../copy/tables.ts";
import type { AppliedMigration, PendingMigration } from "../migrate/plan.ts";
import type { MigrateResult, MigrationStatus } from "../migrate/migrate.ts";
import {
  type DatabaseOverview,
  type InspectedResource,
  inspectedRow,
  type KindSummary,
  resourceNotFound,
} from "./inspect.ts";
import {
  type AuditRow,
  type HistoryEntry,
  snapshotNotFound,
  toEntry,
} from "./history.ts";
import {
  type DecodeOptions,
  type RecordedSchema,
  RowDecoder,
} from "./row_decoder.ts";
import { previewOf, type RestorePreview } from "./restore.ts";
import { PG_SQL } from "../postgres/store.ts";
import {
  snapshotLookup,
  type SnapshotRef,
  type SnapshotRow,
} from "../store/restore.ts";

/** Where a PostgreSQL store is: its connection string and schema. */
export interface PgLocation {
  /** The connection string (it may hold a password: never print it, see `label`). */
  url: string;
  /** The schema holding the store (default `public`). */
  schema?: string;
}

/** How messages name a PostgreSQL store: the URL without its password, and the schema. */
export function pgLabel(location: PgLocation): string {
  return storeLabel(location.url, location.schema);
}

async function withPool<T>(
  location: PgLocation,
  op: string,
  fn: (sql: Sql, schema: string) => Promise<T>,
): Promise<T> {
  const schema = requireSchemaName(location.schema ?? "public");
  let pool: Sql | undefined;
  try {
    pool = openPool(location.url, { schema, max: 1 });
    return await fn(pool, schema);
  } catch (error) {
    throw pgFailure(op, pgLabel(location), error);
  } finally {
    await pool?.end({ timeout: 5 });
  }
}

/** Runs `fn` in one read-only transaction with a consistent snapshot. */
function readOnly<T>(
  sql: Sql,
  fn: (tx: TransactionSql) => Promise<T>,
): Promise<T> {
  return sql.begin(
    "isolation level repeatable read read only",
    fn,
  ) as Promise<T>;
}

interface VersionRow {
  version: number;
  applied_at: string;
  name: string | null;
  checksum: string | null;
}

async function readStatus(
  tx: TransactionSql,
  schema: string,
  label: string,
): Promise<MigrationStatus> {
  const [{ exists }] = await tx<{ exists: boolean }[]>`
    SELECT to_regclass(${`"${schema}".schema_version`}) IS NOT NULL AS exists`;
  const rows = exists
    ? await tx.unsafe<VersionRow[]>(
      `SELECT version::int8 AS version, applied_at, name, checksum
       FROM "${schema}".schema_version ORDER BY version`,
    )
    : [];
  const known = new Map(PG_MIGRATIONS.map((m) => [m.version, m]));
  const problems: string[] = [];
  const applied: AppliedMigration[] = rows.map((row) => {
    const file = known.get(row.version);
    if (file === undefined) {
      problems.push(
        `schema ${schema} is at version ${row.version}, which this protostore does not ` +
          `know (it knows up to ${
            PG_MIGRATIONS.at(-1)!.version
          }): upgrade protostore`,
      );
    } else if (row.checksum !== null && row.checksum !== file.checksum) {
      problems.push(
        `migration ${file.name} was edited after it was applied (recorded checksum ` +
          `${row.checksum.slice(0, 12)}…, file now ${
            file.checksum.slice(0, 12)
          }…)`,
      );
    }
    const at = new Date(row.applied_at);
    return {
      version: row.version,
      name: row.name,
      appliedAt: Number.isNaN(at.getTime()) ? null : at,
      checksum: row.checksum,
    };
  });
  const done = new Set(rows.map((r) => r.version));
  const pending: PendingMigration[] = PG_MIGRATIONS.filter((m) =>
    !done.has(m.version)
  ).map(({ version, name, checksum }) => ({ version, name, checksum }));
  return {
    path: label,
    exists,
    schemaVersion: rows.reduce((max, r) => Math.max(max, r.version), 0),
    applied,
    pending,
    problems,
  };
}

/** The migration status of a PostgreSQL store, read-only (`migrate --status`). */
export function pgMigrationStatus(
  location: PgLocation,
): Promise<MigrationStatus> {
  return withPool(
    location,
    "reading the migration status",
    (sql, schema) =>
      readOnly(sql, (tx) => readStatus(tx, schema, pgLabel(location))),
  );
}

/** Applies pending PostgreSQL migrations, or with `dryRun` lists them. */
export function pgMigrate(
  location: PgLocation,
  options: { dryRun?: boolean } = {},
): Promise<MigrateResult> {
  const label = pgLabel(location);
  return withPool(location, "migrate", async (sql, schema) => {
    const status = await readOnly(sql, (tx) => readStatus(tx, schema, label));
    if (status.problems.length > 0) {
      throw new StoreError(
        `refusing to migrate: ${status.problems.join("; ")}`,
      );
    }
    const latest = PG_MIGRATIONS.at(-1)!.version;
    if (options.dryRun) {
      return {
        path: label,
        dryRun: true,
        applied: status.pending,
        schemaVersion: latest,
      };
    }
    const result = await preparePostgres(sql, schema, {
      migrate: true,
      readOnly: false,
    });
    return {
      path: label,
      dryRun: false,
      applied: status.pending.filter((p) => result.applied.includes(p.version)),
      schemaVersion: result.version,
    };
  });
}

/** The overview of a PostgreSQL store (`inspect`), in one read-only transaction. */
export function pgInspectDatabase(
  location: PgLocation,
  options: { check?: boolean } = {},
): Promise<DatabaseOverview> {
  const label = pgLabel(location);
  return withPool(
    location,
    "inspect",
    (sql, schema) =>
      readOnly(sql, async (tx) => {
        const status = await readStatus(tx, schema, label);
        const [server] = await tx.unsafe(
          `SELECT current_setting('server_version') AS version,
           current_setting('block_size')::int AS block,
           coalesce((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind = 'r'), 0)::int8 AS size`,
          [schema],
        );
        const base: DatabaseOverview = {
          path: label,
          backend: "postgres",
          size: server.size as number,
          walSize: 0,
          pageSize: server.block as number,
          pageCount: Math.ceil(
            (server.size as number) / (server.block as number),
          ),
          freePages: 0,
          journalMode: "postgresql",
          sqliteVersion: `PostgreSQL ${server.version}`,
          schemaVersion: status.schemaVersion,
          appliedMigrations: status.applied,
          pendingMigrations: status.pending.map(({ version, name }) => ({
            version,
            name,
          })),
          problems: status.problems,
          kinds: [],
          resources: 0,
          auditRecords: 0,
          orphanAuditRecords: 0,
          messageTypes: [],
          integrity: null,
          advice: null,
          revisions: null,
        };
        if (status.schemaVersion === 0) return base;
        const kinds = (await tx.unsafe(
          `WITH r AS (SELECT kind, count(*) AS n, sum(length(data)) AS bytes,
                      max(updated_at) AS last FROM resources GROUP BY kind),
              a AS (SELECT kind, count(*) AS n, sum(length(data)) AS bytes
                      FROM resource_audit GROUP BY kind),
              o AS (SELECT kind, count(*) AS n, sum(length(data)) AS bytes
                      FROM resource_audit_orphans GROUP BY kind)
         SELECT k.kind, coalesce(r.n, 0)::int8 AS resources,
           coalesce(a.n, 0)::int8 AS audit, coalesce(o.n, 0)::int8 AS orphans,
           coalesce(r.bytes, 0)::int8 AS bytes,
           (coalesce(a.bytes, 0) + coalesce(o.bytes, 0))::int8 AS audit_bytes, r.last
         FROM (SELECT kind FROM r UNION SELECT kind FROM a UNION SELECT kind FROM o) k
         LEFT JOIN r USING (kind) LEFT JOIN a USING (kind) LEFT JOIN o USING (kind)
         ORDER BY k.kind`,
        )).map((row): KindSummary => ({
          kind: row.kind as string,
          resources: row.resources as number,
          auditRecords: row.audit as number,
          orphanAuditRecords: row.orphans as number,
          bytes: row.bytes as number,
          auditBytes: row.audit_bytes as number,
          lastUpdated: row.last === null ? null : new Date(row.last as string),
        }));
        const types = await tx.unsafe(
          "SELECT DISTINCT type_name FROM message_schemas ORDER BY type_name",
        );
        const [extent] = await tx.unsafe(
          `SELECT revision, compacted_through,
           (SELECT count(*) FROM resource_changes)::int8 AS changes
         FROM revision_state WHERE id = 1`,
        );
        let integrity: DatabaseOverview["integrity"] = null;
        if (options.check) {
          // PostgreSQL enforces the foreign keys; what is left to check is that every
          // schema_id names a recorded schema in all three tables.
          const [bad] = await tx.unsafe(
            `SELECT (SELECT count(*) FROM resources r WHERE r.schema_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM message_schemas m WHERE m.id = r.schema_id))
             + (SELECT count(*) FROM resource_audit_orphans o WHERE NOT EXISTS
               (SELECT 1 FROM message_schemas m WHERE m.id = o.schema_id)
               AND o.schema_id IS NOT NULL) AS n`,
          );
          integrity = Number(bad.n) === 0
            ? "ok"
            : [`${bad.n} row(s) name a message schema that is not recorded`];
        }
        const sum = (
          key: "resources" | "auditRecords" | "orphanAuditRecords",
        ) => kinds.reduce((n, k) => n + k[key], 0);
        return {
          ...base,
          kinds,
          resources: sum("resources"),
          auditRecords: sum("auditRecords"),
          orphanAuditRecords: sum("orphanAuditRecords"),
          messageTypes: types.map((t) => t.type_name as string),
          integrity,
          revisions: {
            revision: extent.revision as number,
            compactedThrough: extent.compacted_through as number,
            changes: extent.changes as number,
          },
        };
      }),
  );
}

/** The recorded schemas `ids` (the ones a few rows use), for a {@linkcode RowDecoder}. */
async function schemasOf(
  tx: TransactionSql,
  ids: (number | null)[],
): Promise<Map<number, RecordedSchema>> {
  const wanted = [...new Set(ids.filter((id) => id !== null))];
  const schemas = new Map<number, RecordedSchema>();
  if (wanted.length === 0) return schemas;
  const rows = await tx.unsafe(
    "SELECT id, type_name, descriptor_set FROM message_schemas WHERE id = ANY($1::int8[])",
    [wanted.map(String)],
  );
  for (const row of rows) {
    schemas.set(row.id as number, {
      typeName: row.type_name as string,
      descriptorSet: row.descriptor_set as Uint8Array,
    });
  }
  return schemas;
}

/**
 * Resource (kind, id) of a PostgreSQL store as `inspectResource` shows one of a file,
 * read in one read-only transaction; {@linkcode NotFoundError} when it does not exist.
 */
export function pgInspectResource(
  location: PgLocation,
  kind: string,
  id: string,
  options: DecodeOptions = {},
): Promise<InspectedResource> {
  const label = pgLabel(location);
  return withPool(
    location,
    "inspect",
    (sql, schema) =>
      readOnly(sql, async (tx) => {
        await requireStore(tx, schema, label);
        const row = await resourceRow(tx, kind, id, label);
        const decoder = new RowDecoder(
          await schemasOf(tx, [row.schema_id as number | null]),
          options,
        );
        return inspected(decoder, kind, id, row);
      }),
  );
}

/**
 * What restoring snapshot `ref` of resource (kind, id) of a PostgreSQL store would
 * change, as `restorePreview` shows it for a file: the resource row and that one
 * snapshot, read in one read-only transaction.
 */
export function pgRestorePreview(
  location: PgLocation,
  kind: string,
  id: string,
  ref: SnapshotRef,
  options: DecodeOptions = {},
): Promise<RestorePreview> {
  const [lookup, value] = snapshotLookup(ref);
  const label = pgLabel(location);
  return withPool(
    location,
    "restore preview",
    (sql, schema) =>
      readOnly(sql, async (tx) => {
        await requireStore(tx, schema, label);
        const row = await resourceRow(tx, kind, id, label);
        const [snapshot] = await tx.unsafe(PG_SQL[lookup], [kind, id, value]);
        if (snapshot === undefined) throw new AuditNotFoundError(kind, id, ref);
        const decoder = new RowDecoder(
          await schemasOf(tx, [
            row.schema_id as number | null,
            snapshot.schema_id as number | null,
          ]),
          options,
        );
        return previewOf(
          decoder,
          kind,
          inspected(decoder, kind, id, row),
          row.revision as number,
          snapshot as unknown as SnapshotRow,
        );
      }),
  );
}

/**
 * Refuses a schema without the store's tables in one line, as SQLite refuses a missing
 * file ("no database at …"), instead of a "relation does not exist" from the middle of
 * a read.
 */
async function requireStore(
  sql: Sql | TransactionSql,
  schema: string,
  label: string,
): Promise<void> {
  const [{ exists }] = await sql<{ exists: boolean }[]>`
    SELECT to_regclass(${`"${schema}".resources`}) IS NOT NULL AS exists`;
  if (!exists) {
    throw new StoreError(
      `no store at ${label}: schema ${schema} holds no protostore tables; run the ` +
        "migrate command (or check --db and --schema)",
      { code: "cant_open" },
    );
  }
}

/**
 * The row of resource (kind, id) with the revisions of its changes in the log;
 * {@linkcode NotFoundError} naming the store (`label`) when it does not exist.
 */
async function resourceRow(
  tx: TransactionSql,
  kind: string,
  id: string,
  label: string,
): Promise<Record<string, unknown>> {
  const [row] = await tx.unsafe(
    `SELECT updated_at, data, schema_id, revision, create_revision,
       ARRAY(SELECT revision FROM resource_changes c
         WHERE c.kind = r.kind AND c.id = r.id ORDER BY revision) AS changes
     FROM resources r WHERE kind = $1 AND id = $2`,
    [kind, id],
  );
  if (row === undefined) {
    throw resourceNotFound(kind, id, label);
  }
  return row;
}

/** A row `resourceRow` read, as the admin tools show a resource. */
function inspected(
  decoder: RowDecoder,
  kind: string,
  id: string,
  row: Record<string, unknown>,
): InspectedResource {
  return inspectedRow(
    decoder,
    kind,
    id,
    row as unknown as Parameters<typeof inspectedRow>[3],
    (row.changes as (string | number)[]).map(Number),
  );
}

/**
 * Snapshot `auditId` of resource (kind, id) of a PostgreSQL store, decoded in full as
 * `auditSnapshot` decodes one of a file; {@linkcode AuditNotFoundError} when that id
 * is not in the resource's history (nor among its orphaned snapshots).
 */
export function pgAuditSnapshot(
  location: PgLocation,
  kind: string,
  id: string,
  auditId: number,
  options: DecodeOptions = {},
): Promise<HistoryEntry> {
  return withPool(
    location,
    "audit-history",
    (sql, schema) =>
      readOnly(sql, async (tx) => {
        await requireStore(tx, schema, pgLabel(location));
        const [row] = await tx.unsafe(
          `SELECT id, archived_at, version_hash, tag, data, schema_id FROM resource_audit
         WHERE kind = $1 AND resource_id = $2 AND id = $3
         UNION ALL
         SELECT id, archived_at, version_hash, tag, data, schema_id
         FROM resource_audit_orphans WHERE kind = $1 AND resource_id = $2 AND id = $3
         LIMIT 1`,
          [kind, id, auditId],
        );
        if (row === undefined) {
          throw snapshotNotFound(kind, id, auditId);
        }
        const decoder = new RowDecoder(
          await schemasOf(tx, [row.schema_id as number | null]),
          options,
        );
        return toEntry(decoder, kind, row as unknown as AuditRow);
      }),
  );
}

/**
 * Reads resource (kind, id) — its row, its snapshots, its orphaned snapshots, its
 * changes and the message schemas they use — from PostgreSQL in one read-only
 * transaction into a new scratch SQLite file; returns its path and `cleanup`, which
 * removes it (the caller's job once it has read the file).
 */
export function pgResourceScratch(
  location: PgLocation,
  kind: string,
  id: string,
): Promise<{ path: string; cleanup(): void }> {
  return withPool(location, "audit-history", async (sql, schema) => {
    await requireStore(sql, schema, pgLabel(location));
    const dir = Deno.makeTempDirSync({ prefix: "protostore-scratch-" });
    const path = `${dir}/resource.sqlite`;
    const cleanup = () => Deno.removeSync(dir, { recursive: true });
    try {
      const target = openSqliteTarget(path);
      try {
        await readOnly(sql, (tx) =>
          target.transaction(async (out) => {
            const filters: Record<string, string> = {
              resources: "kind = $1 AND id = $2",
              resource_audit: "kind = $1 AND resource_id = $2",
              resource_audit_orphans: "kind = $1 AND resource_id = $2",
              resource_changes: "kind = $1 AND id = $2",
              message_schemas:
                `id IN (SELECT schema_id FROM resources WHERE kind = $1 AND id = $2
                  UNION SELECT schema_id FROM resource_audit WHERE kind = $1 AND resource_id = $2
                  UNION SELECT schema_id FROM resource_audit_orphans
                    WHERE kind = $1 AND resource_id = $2)`,
            };
            for (const spec of TABLES) {
              const query = tx.unsafe(
                `SELECT ${spec.columns.join(", ")} FROM ${spec.name}
                 WHERE ${filters[spec.name]} ORDER BY ${spec.orderBy}`,
                [kind, id],
              );
              for await (
                const rows of query.cursor(1000) as AsyncIterable<
                  Record<string, unknown>[]
                >
              ) {
                await out.write(
                  spec,
                  rows.map((row) =>
                    spec.columns.map((c) => (row[c] ?? null) as CopyValue)
                  ),
                );
              }
            }
            const [state] = await tx.unsafe(
              "SELECT revision, compacted_through FROM revision_state WHERE id = 1",
            );
            await out.setState({
              revision: state.revision as number,
              compactedThrough: state.compacted_through as number,
              auditSequence: 0,
            });
          }));
      } finally {
        await target.close();
      }
      return { path, cleanup };
    } catch (error) {
      cleanup();
      throw error;
    }
  });
}
