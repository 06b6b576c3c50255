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
  return await runImport(source, new SqliteTarget(db));
}

/** A record of an export, checked, as an import target writes it. */
export type ImportRecord =
  | {
    type: "schema";
    /** The id in the export (rows refer to it). */
    schemaId: number;
    typeName: string;
    digest: string;
    descriptorSet: Uint8Array;
    createdAt: string;
  }
  | {
    type: "resource";
    kind: string;
    id: string;
    updatedAt: string;
    data: Uint8Array;
    /** The export's schema id (see the schema records), or null. */
    schemaId: number | null;
    /** Only read when revisions are kept. */
    revision?: number;
    createRevision?: number;
  }
  | {
    type: "snapshot" | "orphan";
    kind: string;
    resourceId: string;
    auditId: number;
    archivedAt: string;
    versionHash: string | null;
    tag: string | null;
    data: Uint8Array;
    schemaId: number | null;
    /** Only read when revisions are kept. */
    revision?: number;
  };

/** What an import target decided when its transaction began. */
export interface ImportPlan {
  /** Snapshot ids are kept (the store has none). */
  keepIds: boolean;
  /** Revisions are kept (the store never had one). */
  keepRevisions: boolean;
}

/**
 * A store being imported into, in one transaction: `begin` opens it, each record is
 * written (a target may batch, and then report a refused record at `finish` by its
 * line), `finish` commits, `rollback` undoes everything. Methods may return promises.
 */
export interface ImportTarget {
  begin(): ImportPlan | Promise<ImportPlan>;
  write(record: ImportRecord, line: number): void | Promise<void>;
  finish(header: Json): void | Promise<void>;
  rollback(): void | Promise<void>;
  /**
   * Writes what is still pending (a batching target), so that a refusal of an earlier
   * line is found before a later line's is reported.
   */
  flush?(): Promise<void>;
  /** Message types that were new to the store. */
  readonly newSchemas: number;
  /** Revisions are a feature of the store (Go-era files have none). */
  readonly revisions: boolean;
}

/** Opens `source` (a path or a stream) as a stream of bytes. */
async function openSource(
  source: string | ReadableStream<Uint8Array>,
): Promise<ReadableStream<Uint8Array>> {
  if (typeof source !== "string") return source;
  try {
    return (await Deno.open(source, { read: true })).readable;
  } catch (error) {
    throw new StoreError(`cannot read ${source}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

/**
 * Reads `source` line by line into `target` in its one transaction: the import both
 * backends share (what a line must hold, line numbers, counts, all or nothing).
 */
export async function runImport(
  source: string | ReadableStream<Uint8Array>,
  target: ImportTarget,
): Promise<NdjsonImportSummary> {
  const stream = await openSource(source);
  let plan: ImportPlan;
  try {
    plan = await target.begin();
  } catch (error) {
    await stream.cancel().catch(() => {});
    throw error;
  }
  const reader = new RecordReader(plan.keepRevisions);
  let lineNo = 0;
  try {
    for await (const line of lines(stream)) {
      lineNo++;
      if (line.trim() === "") continue;
      const record = reader.read(line, lineNo);
      if (record === null) continue;
      const written = target.write(record, lineNo);
      if (written !== undefined) await written;
      reader.count(record);
    }
    if (lineNo === 0) {
      throw new LineError(1, "the file is empty, not an export");
    }
    if (reader.header === null) {
      throw new LineError(1, "no header line: not a protostore export");
    }
    await target.finish(reader.header);
    return {
      lines: lineNo,
      ...reader.counts,
      newSchemas: target.newSchemas,
      kinds: Object.fromEntries(
        [...reader.kinds].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
      ),
      keptIds: plan.keepIds,
      keptRevisions: target.revisions && plan.keepRevisions,
    };
  } catch (caught) {
    let error = caught;
    if (error instanceof LineError && target.flush) {
      try {
        await target.flush();
      } catch (earlier) {
        if (earlier instanceof LineError && earlier.line < error.line) {
          error = earlier;
        }
      }
    }
    await target.rollback();
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

/** A line the import refuses: the message is prefixed with `line N:`. */
export class LineError extends Error {
  /** A refusal of line `line`. */
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

/** Turns lines into checked records: the header first, then schemas, rows. */
class RecordReader {
  header: Json | null = null;
  counts = { resources: 0, snapshots: 0, orphans: 0 };
  kinds = new Map<
    string,
    { resources: number; snapshots: number; orphans: number }
  >();
  #typeNames = new Map<number, string>();
  #keepRevisions: boolean;

  constructor(keepRevisions: boolean) {
    this.#keepRevisions = keepRevisions;
  }

  /** The record of line `n`, or null for the header. */
  read(text: string, n: number): ImportRecord | null {
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
    if (this.header === null) {
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
      this.header = record;
      return null;
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

  /** Counts a record that was written. */
  count(record: ImportRecord): void {
    if (record.type === "schema") return;
    let entry = this.kinds.get(record.kind);
    if (entry === undefined) {
      entry = { resources: 0, snapshots: 0, orphans: 0 };
      this.kinds.set(record.kind, entry);
    }
    const key = record.type === "resource"
      ? "resources"
      : record.type === "snapshot"
      ? "snapshots"
      : "orphans";
    this.counts[key]++;
    entry[key]++;
  }

  #schema(r: Json, n: number): ImportRecord {
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
    this.#typeNames.set(schemaId, typeName);
    return {
      type: "schema",
      schemaId,
      typeName,
      digest,
      descriptorSet,
      createdAt,
    };
  }

  #schemaOf(r: Json, n: number): number | null {
    if (r.schemaId === undefined) {
      if (r.typeName !== undefined) {
        throw new LineError(n, "typeName without schemaId");
      }
      return null;
    }
    const schemaId = int(r, "schemaId", n);
    const typeName = this.#typeNames.get(schemaId);
    if (typeName === undefined) {
      throw new LineError(
        n,
        `schemaId ${schemaId} has no schema line before it`,
      );
    }
    if (r.typeName !== typeName) {
      throw new LineError(
        n,
        `typeName ${
          JSON.stringify(r.typeName)
        } is not that of schema ${schemaId} (${typeName})`,
      );
    }
    return schemaId;
  }

  #resource(r: Json, n: number): ImportRecord {
    const kind = key(r, "kind", n);
    const id = key(r, "id", n);
    const updatedAt = str(r, "updatedAt", n);
    const data = bytes(r, "data", n);
    const schemaId = this.#schemaOf(r, n);
    const record: ImportRecord = {
      type: "resource",
      kind,
      id,
      updatedAt,
      data,
      schemaId,
    };
    if (this.#keepRevisions && r.revision !== undefined) {
      record.revision = positive(r, "revision", n);
    }
    if (this.#keepRevisions && r.createRevision !== undefined) {
      record.createRevision = positive(r, "createRevision", n);
    }
    return record;
  }

  #snapshot(r: Json, n: number, type: "snapshot" | "orphan"): ImportRecord {
    const record: ImportRecord = {
      type,
      kind: key(r, "kind", n),
      resourceId: key(r, "resourceId", n),
      auditId: positive(r, "auditId", n),
      archivedAt: str(r, "archivedAt", n),
      versionHash: optionalStr(r, "versionHash", n),
      tag: optionalStr(r, "tag", n),
      data: bytes(r, "data", n),
      schemaId: this.#schemaOf(r, n),
    };
    if (
      type === "snapshot" && this.#keepRevisions && r.revision !== undefined
    ) {
      record.revision = int(r, "revision", n);
    }
    return record;
  }
}

/** The SQLite store's side of an import: every record written as it is read. */
class SqliteTarget implements ImportTarget {
  #db: DatabaseSync;
  #schemas = new Map<number, number>();
  #keepIds = false;
  #keepRevisions = false;
  #importRevision = 0;
  #s!: Record<string, StatementSync>;
  newSchemas = 0;
  readonly revisions: boolean;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.revisions = tableColumns(db, "resources").includes("revision");
  }

  /** Opens the transaction, decides what is kept, prepares the statements. */
  begin(): ImportPlan {
    const db = this.#db;
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (error) {
      throw sqliteFailure(`import failed: ${messageOf(error)}`, error);
    }
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    this.#keepIds = count("SELECT count(*) AS n FROM resource_audit") === 0 &&
      count("SELECT count(*) AS n FROM resource_audit_orphans") === 0;
    const rev = this.revisions;
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
    return { keepIds: this.#keepIds, keepRevisions: this.#keepRevisions };
  }

  write(r: ImportRecord, n: number): void {
    switch (r.type) {
      case "schema": {
        const inserted = this.#s.schemaInsert.run(
          r.typeName,
          r.digest,
          r.descriptorSet,
          r.createdAt,
        );
        if (Number(inserted.changes) > 0) this.newSchemas++;
        const row = this.#s.schemaId.get(r.typeName, r.digest) as {
          id: number;
        };
        this.#schemas.set(r.schemaId, row.id);
        return;
      }
      case "resource":
        return this.#resource(r, n);
      default:
        return this.#snapshot(r, n);
    }
  }

  #resource(r: Extract<ImportRecord, { type: "resource" }>, n: number): void {
    if (this.#s.exists.get(r.kind, r.id)) throw alreadyExists(r, n);
    const args: (string | number | Uint8Array | null)[] = [
      r.kind,
      r.id,
      r.data,
      r.updatedAt,
      this.#schemaOf(r.schemaId),
    ];
    if (this.revisions) {
      const revision = r.revision ?? this.#importRevision;
      args.push(revision, r.createRevision ?? revision);
      if (!this.#keepRevisions) {
        this.#s.change.run(this.#importRevision, r.kind, r.id);
      }
    }
    this.#s.resource.run(...args);
  }

  #snapshot(
    r: Extract<ImportRecord, { type: "snapshot" | "orphan" }>,
    n: number,
  ): void {
    const args: (string | number | Uint8Array | null)[] = [
      this.#keepIds ? r.auditId : null,
      r.kind,
      r.resourceId,
      r.data,
      r.archivedAt,
      r.versionHash,
      r.tag,
      this.#schemaOf(r.schemaId),
    ];
    if (r.type === "orphan") {
      this.#s.orphan.run(...args);
      return;
    }
    if (this.revisions) args.push(r.revision ?? this.#importRevision);
    if (Number(this.#s.snapshot.run(...args).changes) === 0) {
      throw snapshotFirst(r, n);
    }
  }

  #schemaOf(schemaId: number | null): number | null {
    return schemaId === null ? null : this.#schemas.get(schemaId)!;
  }

  /** After the last line, still in the transaction; then commits. */
  finish(header: Json): void {
    const db = this.#db;
    // New snapshots never reuse an id, not even an orphan's (as migration 0003 keeps it).
    db.exec(
      `UPDATE sqlite_sequence SET seq = max(seq,
         coalesce((SELECT max(id) FROM resource_audit_orphans), 0))
       WHERE name = 'resource_audit'`,
    );
    if (this.revisions && this.#keepRevisions) {
      // The export's changes are not in this log: a watcher from before must list.
      const revision = typeof header.revision === "number"
        ? header.revision
        : (db.prepare(
          "SELECT max(coalesce((SELECT max(revision) FROM resources), 0), coalesce((SELECT max(revision) FROM resource_audit), 0)) AS n",
        ).get() as { n: number }).n;
      db.prepare(
        "UPDATE change_log SET compacted_through = max(compacted_through, ?) WHERE id = 1",
      ).run(revision);
    }
    db.exec("COMMIT");
  }

  rollback(): void {
    if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
  }
}

/** The refusal of a resource that is already in the store. */
export function alreadyExists(
  r: { kind: string; id: string },
  n: number,
): LineError {
  return new LineError(
    n,
    `resource ${JSON.stringify(r.kind)}/${
      JSON.stringify(r.id)
    } already exists in the database; ` +
      "import into a database without these resources",
  );
}

/** The refusal of a snapshot whose resource is neither in the store nor before it. */
export function snapshotFirst(
  r: { kind: string; resourceId: string },
  n: number,
): LineError {
  return new LineError(
    n,
    `snapshot of ${JSON.stringify(r.kind)}/${
      JSON.stringify(r.resourceId)
    } comes before its ` +
      "resource's line (or the resource is not in the export); an orphan's type is \"orphan\"",
  );
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
