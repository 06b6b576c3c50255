/**
 * Export of a database as NDJSON (sqlite-utils' JSON export, for protobuf rows): one JSON
 * line per message type, resource and snapshot, message bytes in base64 with the type
 * recorded for them, read in one read transaction so the export is of one moment. The
 * format is what `ndjson_import.ts` reads back; `decoded` adds each message as JSON,
 * decoded with the descriptors the export itself carries.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { readText, tableColumns, wholeText } from "../sqlite/connection.ts";
import { openUntrusted, requireProtostore, requireTable } from "./read_only.ts";
import { refusedRead } from "../sqlite/untrusted.ts";
import { decodeMessageToJson, RegistryCache } from "../decode/descriptors.ts";
import { StoreError } from "../errors.ts";

/**
 * The `format` field of an export's first line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXPORT_FORMAT, exportNdjson, migrate } from "@protostore/store";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * migrate(path);
 * for await (const line of exportNdjson(path)) {
 *   assert.equal(JSON.parse(line).format, EXPORT_FORMAT);
 *   break;
 * }
 * ```
 */
export const EXPORT_FORMAT = "protostore-ndjson";
/**
 * The version of the export format this code writes and reads (the header's `version`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXPORT_VERSION, exportNdjson, migrate } from "@protostore/store";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * migrate(path);
 * for await (const line of exportNdjson(path)) {
 *   assert.equal(JSON.parse(line).version, EXPORT_VERSION);
 *   break;
 * }
 * ```
 */
export const EXPORT_VERSION = 1;

/** Options of {@linkcode exportNdjson}. */
export interface ExportOptions {
  /** Only resources (and snapshots) of this kind. */
  kind?: string;
  /** Include audit snapshots, and orphaned ones (default: resources only). */
  history?: boolean;
  /** Add `message`: each message as protobuf JSON, from the descriptors in the export. */
  decoded?: boolean;
}

/** Line 1 of an export. */
export interface ExportHeader {
  /** `"header"`. */
  type: "header";
  /** Always {@linkcode EXPORT_FORMAT}. */
  format: typeof EXPORT_FORMAT;
  /** The format version ({@linkcode EXPORT_VERSION}). */
  version: number;
  /** When the export was read, ISO-8601. */
  exportedAt: string;
  /** The `kind` option, when one was given. */
  kind?: string;
  /** Whether snapshots are included. */
  history: boolean;
  /** The store's revision the export was read at (databases with revisions). */
  revision?: number;
}

/** A message type recorded in the database (`message_schemas`). */
export interface ExportSchema {
  /** `"schema"`. */
  type: "schema";
  /** Its id in the exported database; rows refer to it as `schemaId`. */
  schemaId: number;
  /** The fully qualified message name, e.g. `example.v1.Skill`. */
  typeName: string;
  /** SHA-256 of the descriptor set, hex. */
  digest: string;
  /** A serialized FileDescriptorSet, base64. */
  descriptorSet: string;
  /** When the type was first recorded. */
  createdAt: string;
}

/** A resource. */
export interface ExportResource {
  /** `"resource"`. */
  type: "resource";
  /** The kind. */
  kind: string;
  /** The id. */
  id: string;
  /** `updated_at` as stored. */
  updatedAt: string;
  /** The recorded message type; absent for rows written without one (Go, Badger). */
  typeName?: string;
  /** The schema line of that type. */
  schemaId?: number;
  /** The message bytes, base64. */
  data: string;
  /** The revision of its last change (databases with revisions). */
  revision?: number;
  /** The revision that created it. */
  createRevision?: number;
  /** With `decoded`: the message as protobuf JSON. */
  message?: unknown;
  /** With `decoded`: why the message could not be decoded with its descriptors. */
  decodeError?: string;
}

/** An audit snapshot (`snapshot`) or an orphaned one (`orphan`, its resource is gone). */
export interface ExportSnapshot {
  /** `"snapshot"`, or `"orphan"` for one whose resource is gone. */
  type: "snapshot" | "orphan";
  /** The kind. */
  kind: string;
  /** The resource's id. */
  resourceId: string;
  /** Its id in the exported database (kept by an import into an empty database). */
  auditId: number;
  /** `archived_at` as stored. */
  archivedAt: string;
  /** The version hash, when it has one. */
  versionHash?: string;
  /** The tag, when it has one. */
  tag?: string;
  /** The recorded message type, when there is one. */
  typeName?: string;
  /** The schema line of that type. */
  schemaId?: number;
  /** The message bytes, base64. */
  data: string;
  /** The store's revision when it was archived (databases with revisions). */
  revision?: number;
  /** With `decoded`: the message as protobuf JSON. */
  message?: unknown;
  /** With `decoded`: why the message could not be decoded with its descriptors. */
  decodeError?: string;
}

/** One line of an export. */
export type ExportRecord =
  | ExportHeader
  | ExportSchema
  | ExportResource
  | ExportSnapshot;

/**
 * The database at `path` as NDJSON lines (without newlines), read in one read
 * transaction: a header, the recorded message types, then each resource (by kind and
 * id) followed, with `history`, by its snapshots oldest first; orphaned snapshots last.
 * Close the returned iterator (or let `for … of` finish) to end the read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exportNdjson, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * using store = openStore(path);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "v1" });
 * const lines = [...exportNdjson(path, { history: true, decoded: true })].map((l) => JSON.parse(l));
 * assert.deepEqual(lines.map((l) => l.type), ["header", "schema", "resource", "snapshot"]);
 * assert.deepEqual(lines[2].message, { v: 1 });
 * assert.equal(lines[3].tag, "v1");
 * ```
 */
export function* exportNdjson(
  path: string,
  options: ExportOptions = {},
): Generator<string, void, undefined> {
  const kind = checkedKind(options);
  // A file we did not write may hide SQL in views and the like: it never runs.
  const db = openUntrusted(path);
  try {
    db.exec("BEGIN");
    // The first read fixes the snapshot every later read sees. Views, virtual tables
    // and generated columns are refused by name before any query reads them.
    requireProtostore(db, path);
    const resourceColumns = requireTable(db, "resources");
    const auditColumns = requireTable(db, "resource_audit");
    const orphanColumns = requireTable(db, "resource_audit_orphans");
    requireTable(db, "message_schemas");
    const revisions = resourceColumns.includes("revision");
    const revision = revisions ? currentRevision(db) : undefined;
    yield headerLine(options, revision);
    const schemas = readSchemas(db);
    yield* schemaLines(schemas);
    const decoder = options.decoded ? new Decoder(schemas) : null;
    const rev = revisions ? ", revision, create_revision" : "";
    const resources = db.prepare(
      `SELECT ${wholeText("kind")} AS kind, ${wholeText("id")} AS id, ${
        isoTime("updated_at", resourceColumns)
      }, ${typed(resourceColumns)}, data${rev}
       FROM resources ${
        kind === undefined ? "" : "WHERE kind = ?"
      } ORDER BY kind, id`,
    );
    const auditRevision = auditColumns.includes("revision") ? ", revision" : "";
    // A Go v1 file has no history table; a Go v2 file no orphans table.
    const history = options.history && auditColumns.length > 0
      ? db.prepare(
        snapshotSql(
          "resource_audit",
          auditRevision,
          "kind = ? AND resource_id = ?",
          false,
          typed(auditColumns),
        ),
      )
      : null;
    const args = kind === undefined ? [] : [kind];
    for (const row of resources.iterate(...args) as Iterable<ResourceRow>) {
      const rowKind = readText(row.kind)!;
      const id = readText(row.id)!;
      yield resourceLine(
        {
          kind: rowKind,
          id,
          updatedAt: row.updated_at,
          schemaId: row.schema_id,
          data: row.data,
          ...(revisions
            ? { revision: row.revision, createRevision: row.create_revision }
            : {}),
        },
        schemas,
        decoder,
      );
      if (history) {
        yield* snapshots(
          history.iterate(rowKind, id),
          "snapshot",
          schemas,
          decoder,
        );
      }
    }
    if (options.history && orphanColumns.length > 0) {
      const orphans = db.prepare(
        snapshotSql(
          "resource_audit_orphans",
          "",
          kind === undefined ? "1" : "kind = ?",
          true,
          typed(orphanColumns),
        ),
      );
      yield* snapshots(orphans.iterate(...args), "orphan", schemas, decoder);
    }
  } catch (error) {
    throw refusedRead(db, error, path);
  } finally {
    if (db.isTransaction) db.exec("COMMIT");
    db.close();
  }
}

interface ResourceRow {
  kind: string | Uint8Array;
  id: string | Uint8Array;
  updated_at: string;
  schema_id: number | null;
  data: Uint8Array;
  revision: number;
  create_revision: number;
}

interface SnapshotRow {
  kind: string | Uint8Array;
  resource_id: string | Uint8Array;
  id: number;
  archived_at: string;
  version_hash: string | Uint8Array | null;
  tag: string | Uint8Array | null;
  schema_id: number | null;
  data: Uint8Array;
  revision?: number;
}

/** A recorded message type, as read. */
export interface SchemaRow {
  id: number;
  typeName: string;
  digest: string;
  descriptorSet: Uint8Array;
  createdAt: string;
}

/** `schema_id`, or `NULL` for the Go store's tables, which record no type. */
const typed = (columns: string[]) =>
  columns.includes("schema_id") ? "schema_id" : "NULL AS schema_id";

/** Time `column` as ISO-8601: the Go store's tables (no `schema_id`) hold
 * `datetime('now')` text, which an import refuses; converted as migration 0003 does. */
const isoTime = (column: string, columns: string[]) =>
  columns.includes("schema_id")
    ? column
    : `coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', ${column}), ${column}) AS ${column}`;

const snapshotSql = (
  table: string,
  revision: string,
  where: string,
  all = false,
  schemaId = "schema_id",
) =>
  `SELECT ${wholeText("kind")} AS kind, ${
    wholeText("resource_id")
  } AS resource_id, id,
     ${
    schemaId === "schema_id" ? "archived_at" : isoTime("archived_at", [])
  }, ${wholeText("version_hash")} AS version_hash, ${wholeText("tag")} AS tag,
     ${schemaId}, data${revision}
   FROM ${table} WHERE ${where}
   ORDER BY ${all ? "kind, resource_id, " : ""}archived_at, id`;

function* snapshots(
  rows: Iterable<unknown>,
  type: "snapshot" | "orphan",
  schemas: Map<number, SchemaRow>,
  decoder: Decoder | null,
): Generator<string> {
  for (const row of rows as Iterable<SnapshotRow>) {
    yield snapshotLine(
      type,
      {
        kind: readText(row.kind)!,
        resourceId: readText(row.resource_id)!,
        auditId: row.id,
        archivedAt: row.archived_at,
        versionHash: readText(row.version_hash),
        tag: readText(row.tag),
        schemaId: row.schema_id,
        data: row.data,
        revision: row.revision,
      },
      schemas,
      decoder,
    );
  }
}

/** A resource row as both backends read it (text already decoded). */
export interface ResourceFields {
  kind: string;
  id: string;
  updatedAt: string;
  schemaId: number | null;
  data: Uint8Array;
  revision?: number;
  createRevision?: number;
}

/** A snapshot row as both backends read it (text already decoded). */
export interface SnapshotFields {
  kind: string;
  resourceId: string;
  auditId: number;
  archivedAt: string;
  versionHash: string | null | undefined;
  tag: string | null | undefined;
  schemaId: number | null;
  data: Uint8Array;
  revision?: number;
}

/** `options.kind`, checked. */
export function checkedKind(options: ExportOptions): string | undefined {
  const kind = options.kind;
  if (kind !== undefined && (typeof kind !== "string" || kind === "")) {
    throw new StoreError(
      `kind must be a non-empty string, got ${String(kind)}`,
    );
  }
  return kind;
}

/** The header line, read now at `revision`. */
export function headerLine(
  options: ExportOptions,
  revision: number | undefined,
): string {
  const header: ExportHeader = {
    type: "header",
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: new Date().toISOString(),
    ...(options.kind === undefined ? {} : { kind: options.kind }),
    history: options.history ?? false,
    ...(revision === undefined ? {} : { revision }),
  };
  return JSON.stringify(header);
}

/** One line per recorded message type. */
export function* schemaLines(
  schemas: Map<number, SchemaRow>,
): Generator<string> {
  for (const schema of schemas.values()) {
    yield JSON.stringify(
      {
        type: "schema",
        schemaId: schema.id,
        typeName: schema.typeName,
        digest: schema.digest,
        descriptorSet: schema.descriptorSet.toBase64(),
        createdAt: schema.createdAt,
      } satisfies ExportSchema,
    );
  }
}

/** The line of one resource. */
export function resourceLine(
  row: ResourceFields,
  schemas: Map<number, SchemaRow>,
  decoder: Decoder | null,
): string {
  const record: ExportResource = {
    type: "resource",
    kind: row.kind,
    id: row.id,
    updatedAt: row.updatedAt,
    ...typeOf(schemas, row.schemaId),
    data: row.data.toBase64(),
  };
  if (row.revision !== undefined) {
    record.revision = row.revision;
    record.createRevision = row.createRevision;
  }
  if (decoder) decoder.add(record, row.data, row.schemaId);
  return JSON.stringify(record);
}

/** The line of one snapshot or orphaned snapshot. */
export function snapshotLine(
  type: "snapshot" | "orphan",
  row: SnapshotFields,
  schemas: Map<number, SchemaRow>,
  decoder: Decoder | null,
): string {
  const record: ExportSnapshot = {
    type,
    kind: row.kind,
    resourceId: row.resourceId,
    auditId: row.auditId,
    archivedAt: row.archivedAt,
    data: "",
  };
  if (row.versionHash) record.versionHash = row.versionHash;
  if (row.tag) record.tag = row.tag;
  Object.assign(record, typeOf(schemas, row.schemaId));
  // Re-set so the bytes come after the labels in the line, as in a resource line.
  delete (record as { data?: string }).data;
  record.data = row.data.toBase64();
  if (row.revision !== undefined) record.revision = row.revision;
  if (decoder) decoder.add(record, row.data, row.schemaId);
  return JSON.stringify(record);
}

function typeOf(
  schemas: Map<number, SchemaRow>,
  schemaId: number | null,
): { typeName?: string; schemaId?: number } {
  const schema = schemaId === null ? undefined : schemas.get(schemaId);
  return schema ? { typeName: schema.typeName, schemaId: schema.id } : {};
}

function readSchemas(db: DatabaseSync): Map<number, SchemaRow> {
  const schemas = new Map<number, SchemaRow>();
  if (!tableColumns(db, "message_schemas").includes("descriptor_set")) {
    return schemas;
  }
  const rows = db.prepare(
    "SELECT id, type_name, digest, descriptor_set, created_at FROM message_schemas ORDER BY id",
  ).all() as {
    id: number;
    type_name: string;
    digest: string;
    descriptor_set: Uint8Array;
    created_at: string;
  }[];
  for (const r of rows) {
    schemas.set(r.id, {
      id: r.id,
      typeName: r.type_name,
      digest: r.digest,
      descriptorSet: r.descriptor_set,
      createdAt: r.created_at,
    });
  }
  return schemas;
}

function currentRevision(db: DatabaseSync): number {
  // The counter as src/store/revisions.ts defines it, read without depending on it.
  const hasLog = tableColumns(db, "change_log").length > 0;
  if (!hasLog) return 0;
  const statement: StatementSync = db.prepare(
    `SELECT max(coalesce((SELECT max(revision) FROM resource_changes), 0),
                coalesce((SELECT compacted_through FROM change_log WHERE id = 1), 0)) AS r`,
  );
  return (statement.get() as { r: number }).r;
}

/** Decodes rows with the descriptor sets of the export's own schema lines. */
export class Decoder {
  #cache = new RegistryCache();
  #schemas: Map<number, SchemaRow>;

  constructor(schemas: Map<number, SchemaRow>) {
    this.#schemas = schemas;
  }

  add(
    record: { message?: unknown; decodeError?: string },
    data: Uint8Array,
    schemaId: number | null,
  ): void {
    const schema = schemaId === null ? undefined : this.#schemas.get(schemaId);
    if (schema === undefined) return;
    try {
      const registry = this.#cache.get(schema.descriptorSet, String(schema.id));
      record.message = decodeMessageToJson(registry, schema.typeName, data);
    } catch (error) {
      record.decodeError = error instanceof Error
        ? error.message
        : String(error);
    }
  }
}
