/**
 * The PostgreSQL side of a merge (`copyStore(…, { merge })` into a non-empty schema):
 * each batch is sent with `COPY` into a temporary staging table, then merged by a few
 * set-based statements (a round trip per row would cost more than the rows), then
 * checked against the target, all inside the copy's one transaction.
 *
 * @module
 */
import { CopyVerificationError } from "../errors.ts";
import type { Sql, TransactionSql } from "../postgres/connection.ts";
import type { MergeMode, MergeWriter, ResourceMerge } from "./endpoint.ts";
import { mapSchemaId } from "./merge.ts";
import type { ColumnType, CopyValue } from "./tables.ts";

/** The highest id the snapshot id sequence handed out (0 before the first). */
export const AUDIT_SEQUENCE =
  "coalesce(pg_sequence_last_value(pg_get_serial_sequence('resource_audit', 'id')::regclass), 0)";

/** Sends rows to `table` with COPY (the copy target's stream, ended after the batch). */
export type Stage = (
  table: string,
  columns: readonly string[],
  types: readonly ColumnType[],
  rows: CopyValue[][],
) => Promise<void>;

const RESOURCES = "protostore_merge_resources";
const SNAPSHOTS = "protostore_merge_snapshots";
const RESOURCE_COLUMNS = [
  "ord",
  "kind",
  "id",
  "data",
  "updated_at",
  "schema_id",
];
const RESOURCE_TYPES: ColumnType[] = [
  "int",
  "text",
  "text",
  "bytes",
  "text",
  "int",
];
const SNAPSHOT_COLUMNS = [
  "ord",
  "kind",
  "resource_id",
  "data",
  "archived_at",
  "version_hash",
  "tag",
  "schema_id",
];
const SNAPSHOT_TYPES: ColumnType[] = [
  "int",
  "text",
  "text",
  "bytes",
  "text",
  "text",
  "text",
  "int",
];

/**
 * No row of `table` (a snapshot table) equals the staged snapshot `m`: same resource,
 * time, labels and bytes.
 */
function notIn(table: "resource_audit" | "resource_audit_orphans"): string {
  return `NOT EXISTS (SELECT 1 FROM ${table} a
      WHERE a.kind = m.kind AND a.resource_id = m.resource_id
        AND a.archived_at = m.archived_at
        AND a.version_hash IS NOT DISTINCT FROM m.version_hash
        AND a.tag IS NOT DISTINCT FROM m.tag AND a.data = m.data)`;
}

/** The staged snapshots `table` lacks, equal staged rows once (the first staged). */
function newStaged(table: "resource_audit" | "resource_audit_orphans"): string {
  return `SELECT m.* FROM (
        SELECT DISTINCT ON (kind, resource_id, archived_at, version_hash, tag, data) *
        FROM ${SNAPSHOTS}
        ORDER BY kind, resource_id, archived_at, version_hash, tag, data, ord) m
      WHERE ${notIn(table)}`;
}

const SQL = {
  stage: `CREATE TEMP TABLE ${RESOURCES} (ord int8, kind text COLLATE "C",
      id text COLLATE "C", data bytea, updated_at text COLLATE "C", schema_id int8)
      ON COMMIT DROP;
    CREATE TEMP TABLE ${SNAPSHOTS} (ord int8, kind text COLLATE "C",
      resource_id text COLLATE "C", data bytea, archived_at text COLLATE "C",
      version_hash text COLLATE "C", tag text COLLATE "C", schema_id int8)
      ON COMMIT DROP`,
  // New snapshot and orphan ids continue above every id of both tables. They are
  // given here and the sequence set at the end, not drawn with nextval: a sequence
  // does not roll back, and a failed merge must leave the target as it was.
  lastId: `SELECT greatest(${AUDIT_SEQUENCE},
      (SELECT coalesce(max(id), 0) FROM resource_audit),
      (SELECT coalesce(max(id), 0) FROM resource_audit_orphans))::int8 AS n`,
  setSequence:
    "SELECT setval(pg_get_serial_sequence('resource_audit', 'id'), $1::int8)",
  revision: "SELECT revision FROM revision_state WHERE id = 1",
  // One statement: the id of the schema (type name, digest), added if missing.
  schema: `WITH ins AS (
      INSERT INTO message_schemas (type_name, digest, descriptor_set, created_at)
      VALUES ($1, $2, $3, $4) ON CONFLICT (type_name, digest) DO NOTHING RETURNING id)
    SELECT id, true AS added FROM ins
    UNION ALL SELECT id, false FROM message_schemas WHERE type_name = $1 AND digest = $2`,
  // $1: the revision before the batch; $2: overwrite. Writes take revisions in source
  // order; a replaced resource's time is the later of both (times never go back).
  resources: `WITH s AS (
      SELECT m.*, r.kind IS NOT NULL AS present,
        coalesce(r.data = m.data AND ts.type_name IS NOT DISTINCT FROM ms.type_name,
          false) AS same
      FROM ${RESOURCES} m
      LEFT JOIN resources r ON r.kind = m.kind AND r.id = m.id
      LEFT JOIN message_schemas ts ON ts.id = r.schema_id
      LEFT JOIN message_schemas ms ON ms.id = m.schema_id),
    w AS (
      SELECT s.*, $1::int8 + row_number() OVER (ORDER BY s.ord) AS rev
      FROM s WHERE NOT s.present OR ($2::boolean AND NOT s.same)),
    ins AS (
      INSERT INTO resources (kind, id, data, updated_at, schema_id, revision, create_revision)
      SELECT kind, id, data, updated_at, schema_id, rev, rev FROM w WHERE NOT present),
    upd AS (
      UPDATE resources r SET data = w.data, schema_id = w.schema_id, revision = w.rev,
        updated_at = greatest(r.updated_at, w.updated_at)
      FROM w WHERE w.present AND r.kind = w.kind AND r.id = w.id),
    ch AS (
      INSERT INTO resource_changes (revision, kind, id, deleted)
      SELECT rev, kind, id, false FROM w)
    SELECT count(*) FILTER (WHERE NOT present)::int8 AS inserted,
      count(*) FILTER (WHERE present AND NOT same AND $2::boolean)::int8 AS replaced,
      count(*) FILTER (WHERE present AND NOT same AND NOT $2::boolean)::int8 AS skipped,
      count(*) FILTER (WHERE present AND same)::int8 AS unchanged
    FROM s`,
  // A staged resource absent from the target, or (overwrite) there with other content.
  resourceMissing: `SELECT m.kind, m.id FROM ${RESOURCES} m
    LEFT JOIN resources r ON r.kind = m.kind AND r.id = m.id
    LEFT JOIN message_schemas ts ON ts.id = r.schema_id
    LEFT JOIN message_schemas ms ON ms.id = m.schema_id
    WHERE r.kind IS NULL OR ($1::boolean AND NOT coalesce(r.data = m.data
      AND ts.type_name IS NOT DISTINCT FROM ms.type_name, false))
    LIMIT 1`,
  // $1: the last snapshot id; $2: the merge's revision. Ids follow the source's order.
  // A snapshot slotted before newer ones of its resource takes the revision of the
  // next newer one, so revisions keep growing along the history (getResourceAt by
  // revision relies on it). Equal staged rows go in once.
  snapshots: `WITH p AS (${newStaged("resource_audit")}),
    ins AS (
      INSERT INTO resource_audit (id, kind, resource_id, data, archived_at, version_hash, tag,
        schema_id, revision)
      SELECT $1::int8 + row_number() OVER (ORDER BY p.ord), p.kind, p.resource_id,
        p.data, p.archived_at, p.version_hash, p.tag, p.schema_id,
        coalesce((SELECT min(a.revision) FROM resource_audit a
          WHERE a.kind = p.kind AND a.resource_id = p.resource_id
            AND a.archived_at > p.archived_at), $2::int8)
      FROM p
      RETURNING 1)
    SELECT count(*)::int8 AS added FROM ins`,
  snapshotMissing: `SELECT m.ord FROM ${SNAPSHOTS} m
    WHERE ${notIn("resource_audit")} LIMIT 1`,
  // $1: the last snapshot id.
  orphans: `WITH p AS (${newStaged("resource_audit_orphans")}),
    ins AS (
      INSERT INTO resource_audit_orphans (id, kind, resource_id, data, archived_at, version_hash, tag,
        schema_id)
      SELECT $1::int8 + row_number() OVER (ORDER BY p.ord), p.kind, p.resource_id,
        p.data, p.archived_at, p.version_hash, p.tag, p.schema_id
      FROM p
      RETURNING 1)
    SELECT count(*)::int8 AS added FROM ins`,
  orphanMissing: `SELECT m.ord FROM ${SNAPSHOTS} m
    WHERE ${notIn("resource_audit_orphans")} LIMIT 1`,
  // The merge's changes commit with one notification: watchers wake and read them.
  finish:
    "UPDATE revision_state SET revision = $1::int8 WHERE id = 1 RETURNING pg_notify($2, $1::int8::text)",
} as const;

/**
 * The merge writer of the PostgreSQL store (schema `schema`) that `sql`'s open
 * transaction writes; `stage` sends a batch to a staging table with COPY.
 */
export async function postgresMergeWriter(
  sql: TransactionSql | Sql,
  target: { label: string; schema: string; mode: MergeMode },
  stage: Stage,
): Promise<MergeWriter> {
  const { label, schema, mode } = target;
  const overwrite = mode === "overwrite";
  await sql.unsafe(SQL.stage);
  const [{ n: firstId }] = await sql.unsafe(SQL.lastId);
  let lastId = firstId as number;
  const [{ revision: start }] = await sql.unsafe(SQL.revision);
  let revision = start as number;
  const ids = new Map<number, number>();
  let ord = 0;
  const missing = (table: string, what: string) =>
    new CopyVerificationError(label, table, what, "missing after the merge");
  const stageSnapshots = async (rows: CopyValue[][]) => {
    await sql.unsafe(`TRUNCATE ${SNAPSHOTS}`);
    await stage(
      SNAPSHOTS,
      SNAPSHOT_COLUMNS,
      SNAPSHOT_TYPES,
      rows.map((r) => [
        ord++,
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        mapSchemaId(ids, r[7], label),
      ]),
    );
    // Without statistics the planner may scan the whole history per batch.
    await sql.unsafe(`ANALYZE ${SNAPSHOTS}`);
  };
  return {
    get revision() {
      return revision;
    },
    async schemas(rows) {
      let added = 0;
      for (const [id, typeName, digest, descriptors, createdAt] of rows) {
        const [row] = await sql.unsafe(SQL.schema, [
          typeName as string,
          digest as string,
          descriptors as Uint8Array,
          createdAt as string,
        ]);
        ids.set(Number(id), row.id as number);
        if (row.added) added++;
      }
      return added;
    },
    async resources(rows) {
      await sql.unsafe(`TRUNCATE ${RESOURCES}`);
      await stage(
        RESOURCES,
        RESOURCE_COLUMNS,
        RESOURCE_TYPES,
        rows.map((r) => [
          ord++,
          r[0],
          r[1],
          r[2],
          r[3],
          mapSchemaId(ids, r[4], label),
        ]),
      );
      await sql.unsafe(`ANALYZE ${RESOURCES}`);
      const [row] = await sql.unsafe(SQL.resources, [revision, overwrite]);
      const result: ResourceMerge = {
        inserted: row.inserted as number,
        replaced: row.replaced as number,
        skipped: row.skipped as number,
        unchanged: row.unchanged as number,
      };
      revision += result.inserted + result.replaced;
      const [gone] = await sql.unsafe(SQL.resourceMissing, [overwrite]);
      if (gone !== undefined) {
        throw missing(
          "resources",
          `${JSON.stringify(gone.kind)}/${JSON.stringify(gone.id)}`,
        );
      }
      return result;
    },
    async snapshots(rows) {
      await stageSnapshots(rows);
      const [row] = await sql.unsafe(SQL.snapshots, [lastId, revision]);
      lastId += row.added as number;
      const [gone] = await sql.unsafe(SQL.snapshotMissing);
      if (gone !== undefined) {
        throw missing("resource_audit", "a snapshot of the source");
      }
      return row.added as number;
    },
    async orphans(rows) {
      await stageSnapshots(rows);
      const [row] = await sql.unsafe(SQL.orphans, [lastId]);
      lastId += row.added as number;
      const [gone] = await sql.unsafe(SQL.orphanMissing);
      if (gone !== undefined) {
        throw missing("resource_audit_orphans", "a snapshot of the source");
      }
      return row.added as number;
    },
    async finish() {
      if (lastId !== firstId) await sql.unsafe(SQL.setSequence, [lastId]);
      if (revision === start) return;
      // The store's channel (src/postgres/store.ts).
      await sql.unsafe(SQL.finish, [revision, `protostore_${schema}`]);
    },
  };
}
