/**
 * Import of an NDJSON export (`ndjson_export.ts`) into a store, all or nothing: every
 * line is read and checked inside one write transaction, and the first line that cannot
 * be read rolls everything back with an error naming its line number. Message bytes,
 * times, hashes, tags, recorded types and the order of each history come back as they
 * were; into an empty database the snapshot ids and revisions too.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { messageOf, StoreError } from "../errors.ts";
import { sqliteFailure } from "../sqlite/errors.ts";
import { tableColumns } from "../sqlite/connection.ts";
import { Store } from "../store/store.ts";
import { EXPORT_FORMAT, EXPORT_VERSION } from "./ndjson_export.ts";

/** What {@linkcode importNdjson} brought in, per kind. */
export interface NdjsonImportSummary {
  /** Lines read, the header included. */
  lines: number;
  /** Resources inserted. */
  resources: number;
  /** Audit snapshots inserted. */
  snapshots: number;
  /** Orphaned snapshots inserted. */
  orphans: number;
  /** Message types that were new to the database. */
  newSchemas: number;
  /** Per kind, in kind order. */
  kinds: Record<
    string,
    { resources: number; snapshots: number; orphans: number }
  >;
  /** Snapshot ids were kept (the database had no snapshots before). */
  keptIds: boolean;
  /** Revisions were kept (the database had none before); else all took one revision. */
  keptRevisions: boolean;
}

/**
 * Imports an export written by {@linkcode exportNdjson} (a file path, or a stream of its
 * bytes) into `store`, in one transaction: either every line is imported or none. A line
 * that is not JSON, not a record of the format, refers to a type or resource the export
 * did not give, or names a resource that already exists in the store throws a
 * {@linkcode StoreError} starting with `line N:` and leaves the database as it was.
 * Into a database without snapshots the snapshot ids are kept; into one that never had
 * a revision, the resources' and snapshots' revisions are kept too (and the change log
 * starts after the export's revision).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exportNdjson, importNdjson, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const dir = await Deno.makeTempDir();
 * using source = openStore(`${dir}/a.sqlite`);
 * source.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * source.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "v1" });
 * const text = [...exportNdjson(`${dir}/a.sqlite`, { history: true })].join("\n") + "\n";
 * using target = openStore(`${dir}/b.sqlite`);
 * const summary = await importNdjson(target, ReadableStream.from([new TextEncoder().encode(text)]));
 * assert.equal(summary.resources, 1);
 * assert.equal(target.getAuditByTag(StructSchema, "agent", "a1", "v1").fields.v.kind.value, 1);
 * ```
 */
export async function importNdjson(
  store: Store,
  source: string | ReadableStream<Uint8Array>,
): Promise<NdjsonImportSummary> {
  if (!(store instanceof Store)) {
    throw new StoreError(
      "importNdjson takes an open Store (from openStore) first",
    );
  }
  const db = Store.connectionOf(store);
  if (db.isTransaction) {
    throw new StoreError(
      "importNdjson cannot run inside an open transaction: it runs its own; commit first",
    );
  }
  let stream: ReadableStream<Uint8Array>;
  if (typeof source === "string") {
    try {
      stream = (await Deno.open(source, { read: true })).readable;
    } catch (error) {
      throw new StoreError(`cannot read ${source}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  } else {
    stream = source;
  }
  const writer = new Writer(db);
  try {
    db.exec("BEGIN IMMEDIATE");
  } catch (error) {
    await stream.cancel().catch(() => {});
    throw sqliteFailure(`import failed: ${messageOf(error)}`, error);
  }
  let lineNo = 0;
  try {
    writer.start();
    for await (const line of lines(stream)) {
      lineNo++;
      if (line.trim() === "") continue;
      writer.line(line, lineNo);
    }
    if (lineNo === 0) {
      throw new LineError(1, "the file is empty, not an export");
    }
    writer.finish();
    db.exec("COMMIT");
    return writer.summary(lineNo);
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    await stream.cancel().catch(() => {});
    if (error instanceof LineError) {
      throw new StoreError(`line ${error.line}: ${error.message}`, {
        cause: error,
      });
    }
    if (error instanceof StoreError) throw error;
    throw new StoreError(
      `import failed at line ${lineNo}: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
}

class LineError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let rest = "";
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, at);
      rest = rest.slice(at + 1);
    }
  }
  rest += decoder.decode();
  if (rest !== "") yield rest;
}

type Json = Record<string, unknown>;

class Writer {
  #db: DatabaseSync;
  #schemas = new Map<number, { id: number; typeName: string }>();
  #header: Json | null = null;
  #keepIds = false;
  #keepRevisions = false;
  #revisions: boolean;
  #importRevision = 0;
  #s!: Record<string, StatementSync>;
  #counts = { resources: 0, snapshots: 0, orphans: 0, newSchemas: 0 };
  #kinds = new Map<
    string,
    { resources: number; snapshots: number; orphans: number }
  >();

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#revisions = tableColumns(db, "resources").includes("revision");
  }

  /** Inside the transaction: decide what is kept, prepare the statements. */
  start(): void {
    const db = this.#db;
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    this.#keepIds = count("SELECT count(*) AS n FROM resource_audit") === 0 &&
      count("SELECT count(*) AS n FROM resource_audit_orphans") === 0;
    const rev = this.#revisions;
    if (rev) {
      const current = count(
        `SELECT max(coalesce((SELECT max(revision) FROM resource_changes), 0),
                    coalesce((SELECT compacted_through FROM change_log WHERE id = 1), 0)) AS n`,
      );
      this.#keepRevisions = current === 0 &&
        count("SELECT count(*) AS n FROM resources") === 0;
      this.#importRevision = current + 1;
    }
    this.#s = {
      schemaInsert: db.prepare(
        `INSERT INTO message_schemas (type_name, digest, descriptor_set, created_at)
         VALUES (?, ?, ?, ?) ON CONFLICT (type_name, digest) DO NOTHING`,
      ),
      schemaId: db.prepare(
        "SELECT id FROM message_schemas WHERE type_name = ? AND digest = ?",
      ),
      exists: db.prepare("SELECT 1 FROM resources WHERE kind = ? AND id = ?"),
      resource: db.prepare(
        `INSERT INTO resources (kind, id, data, updated_at, schema_id${
          rev ? ", revision, create_revision" : ""
        }) VALUES (?, ?, ?, ?, ?${rev ? ", ?, ?" : ""})`,
      ),
      snapshot: db.prepare(
        `INSERT INTO resource_audit (id, kind, resource_id, data, archived_at, version_hash, tag,
           schema_id${rev ? ", revision" : ""})
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8${rev ? ", ?9" : ""}
         WHERE EXISTS (SELECT 1 FROM resources WHERE kind = ?2 AND id = ?3)`,
      ),
      orphan: db.prepare(
        `INSERT INTO resource_audit_orphans (id, kind, resource_id, data, archived_at,
           version_hash, tag, schema_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      ...(rev
        ? {
          change: db.prepare(
            "INSERT INTO resource_changes (revision, kind, id, deleted) VALUES (?, ?, ?, 0)",
          ),
        }
        : {}),
    };
  }

  line(text: string, n: number): void {
    let record: Json;
    try {
      record = JSON.parse(text);
    } catch (error) {
      throw new LineError(n, `not JSON (${messageOf(error)})`);
    }
    if (
      typeof record !== "object" || record === null || Array.isArray(record)
    ) {
      throw new LineError(n, "not a JSON object");
    }
    if (this.#header === null) {
      if (
        record.type !== "header" || record.format !== EXPORT_FORMAT
      ) {
        throw new LineError(
          n,
          `not a protostore export: the first line must be the header ({"type":"header","format":"${EXPORT_FORMAT}",…})`,
        );
      }
      if (record.version !== EXPORT_VERSION) {
        throw new LineError(
          n,
          `export format version ${
            JSON.stringify(record.version)
          }; this protostore reads version ${EXPORT_VERSION}`,
        );
      }
      this.#header = record;
      return;
    }
    switch (record.type) {
      case "schema":
        return this.#schema(record, n);
      case "resource":
        return this.#resource(record, n);
      case "snapshot":
      case "orphan":
        return this.#snapshot(record, n, record.type);
      default:
        throw new LineError(
          n,
          `unknown record type ${
            JSON.stringify(record.type)
          } (expected schema, resource, snapshot or orphan)`,
        );
    }
  }

  #schema(r: Json, n: number): void {
    const schemaId = int(r, "schemaId", n);
    const typeName = str(r, "typeName", n);
    const digest = str(r, "digest", n);
    const descriptorSet = bytes(r, "descriptorSet", n);
    const createdAt = str(r, "createdAt", n);
    const actual = createHash("sha256").update(descriptorSet).digest("hex");
    if (actual !== digest) {
      throw new LineError(
        n,
        `descriptorSet does not match its digest ${digest}`,
      );
    }
    const inserted = this.#s.schemaInsert.run(
      typeName,
      digest,
      descriptorSet,
      createdAt,
    );
    if (Number(inserted.changes) > 0) this.#counts.newSchemas++;
    const row = this.#s.schemaId.get(typeName, digest) as { id: number };
    this.#schemas.set(schemaId, { id: row.id, typeName });
  }

  #schemaOf(r: Json, n: number): number | null {
    if (r.schemaId === undefined) {
      if (r.typeName !== undefined) {
        throw new LineError(n, "typeName without schemaId");
      }
      return null;
    }
    const schemaId = int(r, "schemaId", n);
    const schema = this.#schemas.get(schemaId);
    if (schema === undefined) {
      throw new LineError(
        n,
        `schemaId ${schemaId} has no schema line before it`,
      );
    }
    if (r.typeName !== schema.typeName) {
      throw new LineError(
        n,
        `typeName ${
          JSON.stringify(r.typeName)
        } is not that of schema ${schemaId} (${schema.typeName})`,
      );
    }
    return schema.id;
  }

  #resource(r: Json, n: number): void {
    const kind = key(r, "kind", n);
    const id = key(r, "id", n);
    const updatedAt = str(r, "updatedAt", n);
    const data = bytes(r, "data", n);
    const schemaId = this.#schemaOf(r, n);
    if (this.#s.exists.get(kind, id)) {
      throw new LineError(
        n,
        `resource ${JSON.stringify(kind)}/${
          JSON.stringify(id)
        } already exists in the database; ` +
          "import into a database without these resources",
      );
    }
    const args: (string | number | Uint8Array | null)[] = [
      kind,
      id,
      data,
      updatedAt,
      schemaId,
    ];
    if (this.#revisions) {
      const revision = this.#keepRevisions && r.revision !== undefined
        ? positive(r, "revision", n)
        : this.#importRevision;
      const created = this.#keepRevisions && r.createRevision !== undefined
        ? positive(r, "createRevision", n)
        : revision;
      args.push(revision, created);
      if (!this.#keepRevisions) {
        this.#s.change.run(this.#importRevision, kind, id);
      }
    }
    this.#s.resource.run(...args);
    this.#counts.resources++;
    this.#kind(kind).resources++;
  }

  #snapshot(r: Json, n: number, type: "snapshot" | "orphan"): void {
    const kind = key(r, "kind", n);
    const resourceId = key(r, "resourceId", n);
    const auditId = positive(r, "auditId", n);
    const archivedAt = str(r, "archivedAt", n);
    const hash = optionalStr(r, "versionHash", n);
    const tag = optionalStr(r, "tag", n);
    const data = bytes(r, "data", n);
    const schemaId = this.#schemaOf(r, n);
    const id = this.#keepIds ? auditId : null;
    if (type === "orphan") {
      this.#s.orphan.run(
        id,
        kind,
        resourceId,
        data,
        archivedAt,
        hash,
        tag,
        schemaId,
      );
      this.#counts.orphans++;
      this.#kind(kind).orphans++;
      return;
    }
    const args: (string | number | Uint8Array | null)[] = [
      id,
      kind,
      resourceId,
      data,
      archivedAt,
      hash,
      tag,
      schemaId,
    ];
    if (this.#revisions) {
      args.push(
        this.#keepRevisions && r.revision !== undefined
          ? int(r, "revision", n)
          : this.#importRevision,
      );
    }
    if (Number(this.#s.snapshot.run(...args).changes) === 0) {
      throw new LineError(
        n,
        `snapshot of ${JSON.stringify(kind)}/${
          JSON.stringify(resourceId)
        } comes before its ` +
          "resource's line (or the resource is not in the export); an orphan's type is \"orphan\"",
      );
    }
    this.#counts.snapshots++;
    this.#kind(kind).snapshots++;
  }

  #kind(kind: string) {
    let entry = this.#kinds.get(kind);
    if (entry === undefined) {
      entry = { resources: 0, snapshots: 0, orphans: 0 };
      this.#kinds.set(kind, entry);
    }
    return entry;
  }

  /** After the last line, still in the transaction. */
  finish(): void {
    const db = this.#db;
    if (this.#header === null) {
      throw new LineError(1, "no header line: not a protostore export");
    }
    // New snapshots never reuse an id, not even an orphan's (as migration 0003 keeps it).
    db.exec(
      `UPDATE sqlite_sequence SET seq = max(seq,
         coalesce((SELECT max(id) FROM resource_audit_orphans), 0))
       WHERE name = 'resource_audit'`,
    );
    if (this.#revisions && this.#keepRevisions) {
      // The export's changes are not in this log: a watcher from before must list.
      const revision = typeof this.#header.revision === "number"
        ? this.#header.revision
        : (db.prepare(
          "SELECT max(coalesce((SELECT max(revision) FROM resources), 0), coalesce((SELECT max(revision) FROM resource_audit), 0)) AS n",
        ).get() as { n: number }).n;
      db.prepare(
        "UPDATE change_log SET compacted_through = max(compacted_through, ?) WHERE id = 1",
      ).run(revision);
    }
  }

  summary(lines: number): NdjsonImportSummary {
    return {
      lines,
      ...this.#counts,
      kinds: Object.fromEntries(
        [...this.#kinds].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
      ),
      keptIds: this.#keepIds,
      keptRevisions: this.#revisions && this.#keepRevisions,
    };
  }
}

function str(r: Json, name: string, n: number): string {
  const value = r[name];
  if (typeof value !== "string") {
    throw new LineError(
      n,
      `${name} must be a string, got ${JSON.stringify(value) ?? "nothing"}`,
    );
  }
  return value;
}

function key(r: Json, name: string, n: number): string {
  const value = str(r, name, n);
  if (value === "") throw new LineError(n, `${name} is empty`);
  return value;
}

function optionalStr(r: Json, name: string, n: number): string | null {
  if (r[name] === undefined || r[name] === null || r[name] === "") return null;
  return str(r, name, n);
}

function int(r: Json, name: string, n: number): number {
  const value = r[name];
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new LineError(
      n,
      `${name} must be a whole number, got ${
        JSON.stringify(value) ?? "nothing"
      }`,
    );
  }
  return value as number;
}

function positive(r: Json, name: string, n: number): number {
  const value = int(r, name, n);
  if (value < 1) throw new LineError(n, `${name} must be >= 1, got ${value}`);
  return value;
}

function bytes(r: Json, name: string, n: number): Uint8Array {
  const text = str(r, name, n);
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    throw new LineError(n, `${name} is not base64`);
  }
}
