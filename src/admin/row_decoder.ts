/**
 * Decoding stored rows for the admin tools: with the type recorded in the database
 * (`message_schemas`), else with descriptors the user gave, else schema-less.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { requireTable } from "./read_only.ts";
import {
  decodeBlob,
  type DecodedBlob,
  decodeMessageToJson,
  RegistryCache,
  registryFromDescriptorSet,
} from "../decode/descriptors.ts";
import type { FileRegistry } from "@bufbuild/protobuf";

/**
 * Descriptors the user supplies for rows that have no recorded type (the Go store's),
 * as from `--descriptors FILE --type NAME` or `--type-for KIND=NAME`. A row recorded
 * as another type is never decoded with them.
 */
export interface DecodeOptions {
  /** A serialized FileDescriptorSet, e.g. from `buf build -o FILE`. */
  descriptorSet?: Uint8Array;
  /** The message type for every kind, e.g. `example.v1.Skill`. */
  typeName?: string;
  /** The message type per kind; wins over `typeName`. */
  typeForKind?: Record<string, string>;
}

/** A message type recorded in a database: its name and descriptors. */
export interface RecordedSchema {
  /** The fully qualified message name. */
  typeName: string;
  /** A serialized FileDescriptorSet. */
  descriptorSet: Uint8Array;
}

/** A decoded row: how, as which type, and the message as JSON data. */
export type DecodedRow = DecodedBlob;

/**
 * Decodes rows of one database, caching registries per recorded schema.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "../store/store.ts";
 * import { Store } from "../store/store.ts";
 * import { RowDecoder } from "./row_decoder.ts";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * const decoder = new RowDecoder(Store.connectionOf(store));
 * assert(decoder.decode("agent", new Uint8Array([8, 1]), null).decodedWith === "wire");
 * ```
 */
export class RowDecoder {
  #cache = new RegistryCache();
  #schemas = new Map<number, RecordedSchema | null>();
  #lookup: ((schemaId: number) => RecordedSchema | undefined) | null;
  #registry: FileRegistry | undefined;
  #options: DecodeOptions;

  /**
   * Reads recorded schemas from `db` when it has a `message_schemas` table, or takes
   * them from `schemas` (read by the caller, e.g. from PostgreSQL).
   */
  constructor(
    db: DatabaseSync | Map<number, RecordedSchema>,
    options: DecodeOptions = {},
  ) {
    this.#options = options;
    if (db instanceof Map) {
      this.#lookup = (schemaId) => db.get(schemaId);
    } else if (
      requireTable(db, "message_schemas").includes("descriptor_set")
    ) {
      const select: StatementSync = db.prepare(
        "SELECT type_name, descriptor_set FROM message_schemas WHERE id = ?",
      );
      this.#lookup = (schemaId) => {
        const row = select.get(schemaId) as
          | { type_name: string; descriptor_set: Uint8Array }
          | undefined;
        return row
          ? { typeName: row.type_name, descriptorSet: row.descriptor_set }
          : undefined;
      };
    } else {
      this.#lookup = null;
    }
    // Built once: a bad --descriptors file is a clear error up front, not per row.
    if (options.descriptorSet) {
      this.#registry = registryFromDescriptorSet(options.descriptorSet);
      // A misspelt type name is the user's mistake, not the data's: fail up front with
      // the names the descriptors have, instead of a wire dump of every row.
      const names = [
        options.typeName,
        ...Object.values(options.typeForKind ?? {}),
      ];
      for (const name of new Set(names)) {
        if (name) decodeMessageToJson(this.#registry, name, new Uint8Array());
      }
    }
  }

  /** The type name recorded for `schemaId`, if any. */
  typeOf(schemaId: number | null): string | undefined {
    return this.#schema(schemaId)?.typeName;
  }

  /** Decodes one row's bytes; never throws for bad data (see `decodeBlob`). */
  decode(kind: string, data: Uint8Array, schemaId: number | null): DecodedRow {
    const stored = this.#schema(schemaId);
    const typeName = this.#options.typeForKind?.[kind] ??
      this.#options.typeName;
    // Given descriptors are for rows with no recorded type: a row recorded as another type
    // is never decoded as the given one, not even when its own descriptors fail.
    const given = this.#registry && typeName &&
      (stored === undefined || stored.typeName === typeName);
    return decodeBlob(data, {
      stored: stored ? { ...stored, key: String(schemaId) } : undefined,
      descriptors: given
        ? { registry: this.#registry!, typeName: typeName! }
        : undefined,
      cache: this.#cache,
    });
  }

  #schema(schemaId: number | null) {
    if (schemaId === null || this.#lookup === null) return undefined;
    let schema = this.#schemas.get(schemaId);
    if (schema === undefined) {
      schema = this.#lookup(schemaId) ?? null;
      this.#schemas.set(schemaId, schema);
    }
    return schema ?? undefined;
  }
}
