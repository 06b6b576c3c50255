/**
 * Self-describing rows: each message type written through the Store is recorded once in
 * `message_schemas` as its type name plus a FileDescriptorSet of its file and all
 * dependencies, so tools can decode any row with no `.proto` files at hand.
 * This module owns the `message_schemas` table.
 *
 * @module
 */
import {
  create,
  type DescFile,
  type DescMessage,
  toBinary,
} from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { createHash } from "node:crypto";
import type { DatabaseSync, StatementSync } from "node:sqlite";

/** A message type's descriptors, serialized once per process. */
export interface DescriptorSetInfo {
  /** The fully qualified message name, e.g. `example.v1.Skill`. */
  typeName: string;
  /** A serialized `google.protobuf.FileDescriptorSet`, dependencies first. */
  descriptorSet: Uint8Array;
  /** SHA-256 of `descriptorSet`, hex. */
  digest: string;
}

const infoCache = new WeakMap<DescMessage, DescriptorSetInfo>();

/**
 * The FileDescriptorSet of a message schema: its file and every file it imports,
 * dependencies first. Computed once per schema object.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { descriptorSetOf } from "./schemas.ts";
 * import { TimestampSchema } from "@bufbuild/protobuf/wkt";
 *
 * assert(descriptorSetOf(TimestampSchema).typeName === "google.protobuf.Timestamp");
 * ```
 */
export function descriptorSetOf(schema: DescMessage): DescriptorSetInfo {
  let info = infoCache.get(schema);
  if (info) return info;
  const files: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (file: DescFile) => {
    if (seen.has(file.name)) return;
    seen.add(file.name);
    for (const dependency of file.dependencies) visit(dependency);
    files.push(file.proto);
  };
  visit(schema.file);
  const descriptorSet = toBinary(
    FileDescriptorSetSchema,
    create(FileDescriptorSetSchema, { file: files }),
  );
  info = {
    typeName: schema.typeName,
    descriptorSet,
    digest: createHash("sha256").update(descriptorSet).digest("hex"),
  };
  infoCache.set(schema, info);
  return info;
}

/**
 * Maps message schemas to their `message_schemas` row id on one connection, inserting
 * a row the first time a schema is written. Ids are cached; call {@linkcode forget}
 * after a rollback, which may have undone an insert.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SchemaIds } from "./schemas.ts";
 * import { applyMigrations } from "../migrate/runner.ts";
 * import { openConnection } from "../sqlite/connection.ts";
 * import { TimestampSchema } from "@bufbuild/protobuf/wkt";
 *
 * const db = openConnection(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * applyMigrations(db);
 * const ids = new SchemaIds(db);
 * assert(ids.idOf(TimestampSchema) === ids.idOf(TimestampSchema));
 * db.close();
 * ```
 */
export class SchemaIds {
  #ids = new Map<DescMessage, number>();
  /** Recorded type name of each `message_schemas` id seen (rows there never change). */
  #typeNames = new Map<number, string>();
  /** Per schema, the ids whose recorded type name is the schema's: rows readable as is. */
  #readable = new Map<DescMessage, Set<number>>();
  #insert: StatementSync;
  #select: StatementSync;
  #selectType: StatementSync;

  /** Prepares the statements on `db`, whose schema must be migrated. */
  constructor(db: DatabaseSync) {
    this.#insert = db.prepare(
      `INSERT INTO message_schemas (type_name, digest, descriptor_set, created_at)
       VALUES (?, ?, ?, ?) ON CONFLICT (type_name, digest) DO NOTHING`,
    );
    this.#select = db.prepare(
      "SELECT id FROM message_schemas WHERE type_name = ? AND digest = ?",
    );
    this.#selectType = db.prepare(
      "SELECT type_name FROM message_schemas WHERE id = ?",
    );
  }

  /** The row id for `schema`; inserts the row if new. Call inside a write transaction. */
  idOf(schema: DescMessage): number {
    const cached = this.#ids.get(schema);
    if (cached !== undefined) return cached;
    const info = descriptorSetOf(schema);
    this.#insert.run(
      info.typeName,
      info.digest,
      info.descriptorSet,
      new Date().toISOString(),
    );
    const row = this.#select.get(info.typeName, info.digest) as { id: number };
    this.#ids.set(schema, row.id);
    this.#typeNames.set(row.id, info.typeName);
    return row.id;
  }

  /**
   * The type name recorded with a row whose `schema_id` is `schemaId`, when that row must
   * not be decoded with `schema`; `undefined` when it may: same type name, no recorded
   * type (`null`, or an id missing from `message_schemas`), or a name in `accept`.
   * Per row this is two map lookups once the id has been seen.
   */
  mismatch(
    schema: DescMessage,
    schemaId: number | null,
    accept?: ReadonlySet<string>,
  ): string | undefined {
    if (schemaId === null) return undefined;
    let readable = this.#readable.get(schema);
    if (readable?.has(schemaId)) return undefined;
    const typeName = this.#typeNameOf(schemaId);
    if (typeName === undefined) return undefined;
    if (typeName === schema.typeName) {
      if (readable === undefined) {
        readable = new Set();
        this.#readable.set(schema, readable);
      }
      readable.add(schemaId);
      return undefined;
    }
    return accept?.has(typeName) ? undefined : typeName;
  }

  /** Whether `schema`'s id is cached, i.e. {@linkcode idOf} will not write. */
  has(schema: DescMessage): boolean {
    return this.#ids.has(schema);
  }

  /** Drops cached ids (after a rollback, which may have undone an insert whose id a
   * later insert reuses for another type). */
  forget(): void {
    this.#ids.clear();
    this.#typeNames.clear();
    this.#readable.clear();
  }

  #typeNameOf(schemaId: number): string | undefined {
    let typeName = this.#typeNames.get(schemaId);
    if (typeName === undefined) {
      const row = this.#selectType.get(schemaId) as
        | { type_name: unknown }
        | undefined;
      if (typeof row?.type_name !== "string") return undefined;
      typeName = row.type_name;
      this.#typeNames.set(schemaId, typeName);
    }
    return typeName;
  }
}
