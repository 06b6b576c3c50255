/**
 * NDJSON export of a PostgreSQL store: the same lines as `exportNdjson` writes for the
 * same store on SQLite (the line builders are shared), read in one `REPEATABLE READ
 * READ ONLY` transaction so the export is of one moment and the server refuses any
 * write. Memory stays bounded: resources are read in keyset pages, and each page's
 * snapshots and the orphans through cursors, never a whole table at once.
 *
 * @module
 */
import {
  openPool,
  pgFailure,
  requireSchemaName,
  type Sql,
} from "../postgres/connection.ts";
import { preparePostgres } from "../postgres/migrate.ts";
import {
  checkedKind,
  Decoder,
  type ExportOptions,
  headerLine,
  resourceLine,
  schemaLines,
  type SchemaRow,
  snapshotLine,
} from "./ndjson_export.ts";
import { pgLabel, type PgLocation } from "./postgres.ts";

/** Resources per keyset page (their snapshots stream through a cursor). */
const PAGE = 500;
/** Rows per cursor fetch. */
const FETCH = 500;

interface ResourceRow {
  kind: string;
  id: string;
  updated_at: string;
  schema_id: number | null;
  data: Uint8Array;
  revision: number;
  create_revision: number;
}

interface SnapshotRow {
  kind: string;
  resource_id: string;
  id: number;
  archived_at: string;
  version_hash: string | null;
  tag: string | null;
  schema_id: number | null;
  data: Uint8Array;
  revision?: number;
}

const SNAPSHOT_COLUMNS =
  "kind, resource_id, id, archived_at, version_hash, tag, schema_id, data";

/**
 * The PostgreSQL store at `location` as NDJSON lines (without newlines), the lines
 * `exportNdjson` writes for the same store on SQLite, read in one read-only
 * transaction. Close the iterator (or let `for await` finish) to end the read.
 */
export async function* exportPostgresNdjson(
  location: PgLocation,
  options: ExportOptions = {},
): AsyncGenerator<string, void, undefined> {
  const kind = checkedKind(options);
  const label = pgLabel(location);
  const schema = requireSchemaName(location.schema ?? "public");
  // One connection: the transaction below is opened with a plain BEGIN on it.
  const pool = openPool(location.url, { schema, max: 1, readOnly: true });
  let open = false;
  try {
    await preparePostgres(pool, schema, { migrate: false, readOnly: true });
    await pool.unsafe("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    open = true;
    const [state] = await pool.unsafe(
      "SELECT revision FROM revision_state WHERE id = 1",
    );
    yield headerLine(options, state.revision as number);
    const schemas = await readSchemas(pool);
    yield* schemaLines(schemas);
    const decoder = options.decoded ? new Decoder(schemas) : null;
    const byKind = kind === undefined ? "" : "kind = $1 AND ";
    let after: [string, string] | null = null;
    for (;;) {
      const params: unknown[] = kind === undefined ? [] : [kind];
      let where = kind === undefined ? "" : "WHERE kind = $1";
      if (after !== null) {
        params.push(after[0], after[1]);
        where = `WHERE ${byKind}(kind, id) > ($${
          params.length - 1
        }, $${params.length})`;
      }
      const page = await pool.unsafe<ResourceRow[]>(
        `SELECT kind, id, updated_at, schema_id, data, revision, create_revision
         FROM resources ${where} ORDER BY kind, id LIMIT ${PAGE}`,
        params as string[],
      );
      if (page.length === 0) break;
      const first = page[0];
      const last = page[page.length - 1];
      after = [last.kind, last.id];
      const history = options.history
        ? cursor<SnapshotRow>(
          pool,
          `SELECT ${SNAPSHOT_COLUMNS}, revision FROM resource_audit
           WHERE (kind, resource_id) >= ($1, $2) AND (kind, resource_id) <= ($3, $4)
           ORDER BY kind, resource_id, archived_at, id`,
          [first.kind, first.id, last.kind, last.id],
        )
        : null;
      try {
        let pending = history ? await history.next() : null;
        for (const row of page) {
          yield resourceLine(
            {
              kind: row.kind,
              id: row.id,
              updatedAt: row.updated_at,
              schemaId: row.schema_id,
              data: row.data,
              revision: row.revision,
              createRevision: row.create_revision,
            },
            schemas,
            decoder,
          );
          // Snapshots come in (kind, resource_id) order, resources in (kind, id) order,
          // and every snapshot has its resource (a foreign key): a plain merge.
          while (
            pending && !pending.done && pending.value.kind === row.kind &&
            pending.value.resource_id === row.id
          ) {
            yield snapshot("snapshot", pending.value, schemas, decoder);
            pending = await history!.next();
          }
        }
      } finally {
        await history?.return(undefined);
      }
      if (page.length < PAGE) break;
    }
    if (options.history) {
      const orphans = cursor<SnapshotRow>(
        pool,
        `SELECT ${SNAPSHOT_COLUMNS} FROM resource_audit_orphans
         ${kind === undefined ? "" : "WHERE kind = $1"}
         ORDER BY kind, resource_id, archived_at, id`,
        kind === undefined ? [] : [kind],
      );
      for await (const row of orphans) {
        yield snapshot("orphan", row, schemas, decoder);
      }
    }
    await pool.unsafe("COMMIT");
    open = false;
  } catch (error) {
    throw pgFailure("export", label, error);
  } finally {
    if (open) await pool.unsafe("ROLLBACK").catch(() => {});
    await pool.end({ timeout: 5 });
  }
}

function snapshot(
  type: "snapshot" | "orphan",
  row: SnapshotRow,
  schemas: Map<number, SchemaRow>,
  decoder: Decoder | null,
): string {
  return snapshotLine(
    type,
    {
      kind: row.kind,
      resourceId: row.resource_id,
      auditId: row.id,
      archivedAt: row.archived_at,
      versionHash: row.version_hash,
      tag: row.tag,
      schemaId: row.schema_id,
      data: row.data,
      revision: row.revision,
    },
    schemas,
    decoder,
  );
}

/** The rows of `query`, fetched {@linkcode FETCH} at a time. */
async function* cursor<T>(
  sql: Sql,
  query: string,
  params: string[],
): AsyncGenerator<T, void, undefined> {
  const rows = sql.unsafe(query, params).cursor(FETCH) as AsyncIterable<
    T[]
  >;
  for await (const batch of rows) yield* batch;
}

async function readSchemas(sql: Sql): Promise<Map<number, SchemaRow>> {
  const rows = await sql.unsafe(
    "SELECT id, type_name, digest, descriptor_set, created_at FROM message_schemas ORDER BY id",
  );
  const schemas = new Map<number, SchemaRow>();
  for (const r of rows) {
    schemas.set(r.id as number, {
      id: r.id as number,
      typeName: r.type_name as string,
      digest: r.digest as string,
      descriptorSet: r.descriptor_set as Uint8Array,
      createdAt: r.created_at as string,
    });
  }
  return schemas;
}
