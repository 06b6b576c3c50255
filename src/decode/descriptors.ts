/**
 * Decoding stored blobs for people: with descriptors to protobuf JSON (the type and
 * descriptor set recorded in the database, or ones the user gives), else as a
 * schema-less wire dump, else as base64 with the reasons.
 *
 * The descriptor-based path is the hot one (`audit-history` decodes every snapshot), so
 * registries are built once per descriptor set and kept in a {@linkcode RegistryCache}.
 *
 * @module
 */

import {
  createFileRegistry,
  type DescMessage,
  type FileRegistry,
  fromBinary,
  type JsonValue,
  type Registry,
  toJson,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createHash } from "node:crypto";
import { messageOf, StoreError } from "../errors.ts";
import { decodeWire, wireToJson } from "./wire.ts";

/**
 * Builds a registry of all types in a serialized `google.protobuf.FileDescriptorSet`
 * (what `buf build -o FILE` or `protoc --include_imports --descriptor_set_out=FILE`
 * writes, and what the `message_schemas.descriptor_set` column holds).
 *
 * @param bytes The serialized FileDescriptorSet; it must include every imported file.
 * @returns A registry for {@linkcode decodeMessageToJson}.
 * @throws {StoreError} When the bytes are not a FileDescriptorSet or a file's imports
 * are missing from it.
 *
 * @example
 * ```ts
 * import { registryFromDescriptorSet } from "./descriptors.ts";
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { FileDescriptorSetSchema, file_google_protobuf_timestamp } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * const set = toBinary(
 *   FileDescriptorSetSchema,
 *   create(FileDescriptorSetSchema, { file: [file_google_protobuf_timestamp.proto] }),
 * );
 * const registry = registryFromDescriptorSet(set);
 * assert.equal(registry.getMessage("google.protobuf.Timestamp")?.name, "Timestamp");
 * ```
 */
export function registryFromDescriptorSet(bytes: Uint8Array): FileRegistry {
  let set;
  try {
    set = fromBinary(FileDescriptorSetSchema, bytes);
  } catch (error) {
    throw new StoreError(
      `Cannot read the descriptor set (${bytes.length} bytes) as a google.protobuf.FileDescriptorSet: ${
        messageOf(error)
      }. Build one with \`buf build -o FILE\` or \`protoc --include_imports --descriptor_set_out=FILE\`.`,
      { cause: error },
    );
  }
  try {
    return createFileRegistry(set);
  } catch (error) {
    throw new StoreError(
      `Cannot use the descriptor set (${set.file.length} files): ${
        messageOf(error)
      }. It must contain every imported file; build it with \`buf build -o FILE\` or \`protoc --include_imports\`.`,
      { cause: error },
    );
  }
}

/** Up to `max` message type names of a registry, for error messages. */
function someTypeNames(registry: Registry, max: number): string[] {
  const names: string[] = [];
  for (const desc of registry) {
    if (desc.kind !== "message") continue;
    if (names.length === max) {
      names.push("…");
      break;
    }
    names.push(desc.typeName);
  }
  return names;
}

function findMessage(registry: Registry, typeName: string): DescMessage {
  // ".pkg.Type" is how descriptors themselves spell fully qualified names
  const name = typeName.startsWith(".") ? typeName.slice(1) : typeName;
  const desc = registry.getMessage(name);
  if (desc !== undefined) return desc;
  const known = someTypeNames(registry, 8);
  throw new StoreError(
    `Message type "${name}" is not in the descriptors (${
      known.length === 0
        ? "they define no messages"
        : `they have ${known.join(", ")}`
    }). Check the type name (package included, e.g. example.v1.Skill) or give descriptors that define it.`,
  );
}

/**
 * Decodes `bytes` as the message type `typeName` and returns its protobuf JSON form
 * (field names in lowerCamelCase, 64-bit integers and bytes as strings, fields with
 * default values left out). Unknown fields are ignored, so bytes of another type can
 * decode "successfully"; bytes that are not valid for the type throw.
 *
 * @param registry Types to decode with, e.g. from {@linkcode registryFromDescriptorSet};
 * also used to resolve `google.protobuf.Any` fields.
 * @param typeName Fully qualified message type name, e.g. `example.v1.Skill`.
 * @param bytes The serialized message.
 * @returns The message as protobuf JSON.
 * @throws {StoreError} When the type is not in the registry, or the bytes do not decode
 * as it (truncated, wrong wire types, invalid UTF-8, too deep), or the message has no
 * JSON form (e.g. a Timestamp out of range, an Any of an unknown type).
 *
 * @example
 * ```ts
 * import { decodeMessageToJson } from "./descriptors.ts";
 * import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
 * import { DurationSchema } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * const registry = createRegistry(DurationSchema);
 * const bytes = toBinary(DurationSchema, create(DurationSchema, { seconds: 90n }));
 * assert.equal(decodeMessageToJson(registry, "google.protobuf.Duration", bytes), "90s");
 * ```
 */
export function decodeMessageToJson(
  registry: Registry,
  typeName: string,
  bytes: Uint8Array,
): JsonValue {
  const desc = findMessage(registry, typeName);
  try {
    return toJson(desc, fromBinary(desc, bytes), { registry });
  } catch (error) {
    throw new StoreError(
      `Cannot decode ${bytes.length} bytes as ${desc.typeName}: ${
        messageOf(error)
      }. The data is of another type, or corrupt.`,
      { cause: error },
    );
  }
}

/**
 * Registries by descriptor set, so decoding many rows that share a schema builds the
 * registry once. A descriptor set that fails is remembered too, and its error thrown
 * again without re-reading. Holds at most `maxEntries` sets (the oldest is dropped),
 * so a database with many schemas cannot exhaust memory.
 *
 * @example
 * ```ts
 * import { RegistryCache } from "./descriptors.ts";
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { FileDescriptorSetSchema, file_google_protobuf_timestamp } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * const set = toBinary(
 *   FileDescriptorSetSchema,
 *   create(FileDescriptorSetSchema, { file: [file_google_protobuf_timestamp.proto] }),
 * );
 * const cache = new RegistryCache();
 * assert.equal(cache.get(set, "schema-1"), cache.get(set, "schema-1"));
 * ```
 */
export class RegistryCache {
  readonly #entries = new Map<string, FileRegistry | StoreError>();
  readonly #maxEntries: number;

  /**
   * Creates an empty cache.
   *
   * @param maxEntries How many descriptor sets to keep, at least 1; default 64.
   */
  constructor(maxEntries = 64) {
    this.#maxEntries = Math.max(1, Math.floor(maxEntries));
  }

  /**
   * The registry of a descriptor set, built on first use.
   *
   * @param descriptorSet A serialized FileDescriptorSet.
   * @param key Identifies these exact bytes, e.g. `message_schemas.id`. Without it the
   * key is the SHA-256 of the bytes, which costs a hash per call.
   * @throws {StoreError} As {@linkcode registryFromDescriptorSet}, also for a set
   * that failed before.
   */
  get(descriptorSet: Uint8Array, key?: string): FileRegistry {
    const id = key ??
      `sha256:${createHash("sha256").update(descriptorSet).digest("hex")}`;
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      try {
        entry = registryFromDescriptorSet(descriptorSet);
      } catch (error) {
        if (!(error instanceof StoreError)) throw error;
        entry = error;
      }
      if (this.#entries.size >= this.#maxEntries) {
        this.#entries.delete(this.#entries.keys().next().value!);
      }
      this.#entries.set(id, entry);
    }
    if (entry instanceof StoreError) throw entry;
    return entry;
  }

  /** How many descriptor sets are held. */
  get size(): number {
    return this.#entries.size;
  }
}

/**
 * What {@linkcode decodeBlob} may try, in this order: `stored`, `descriptors`, then the
 * wire dump, then base64.
 *
 * @example
 * ```ts
 * import { type DecodeSources, RegistryCache } from "./descriptors.ts";
 * import assert from "node:assert/strict";
 *
 * const sources: DecodeSources = { cache: new RegistryCache(), wireMaxDepth: 8 };
 * assert.ok(sources.stored === undefined);
 * ```
 */
export interface DecodeSources {
  /**
   * The type and descriptor set the Store recorded for the row (`message_schemas`), if
   * any. `key` identifies the descriptor set bytes for the cache, e.g. the schema id.
   */
  stored?: { typeName: string; descriptorSet: Uint8Array; key?: string };
  /**
   * Descriptors and type the user chose (`--descriptors FILE` with `--type NAME` or
   * `--type-for KIND=NAME`); the caller resolves the type for the row's kind.
   */
  descriptors?: { registry: Registry; typeName: string };
  /**
   * Where registries of stored descriptor sets are kept; pass the same cache for every
   * row of a listing. Without one, each call builds the registry anew.
   */
  cache?: RegistryCache;
  /** `maxDepth` of the wire dump; see `DecodeWireOptions` in `wire.ts`. */
  wireMaxDepth?: number;
}

/**
 * How a blob was decoded:
 * - `"stored-descriptors"`: with the type and descriptor set recorded in the database;
 *   `message` is protobuf JSON.
 * - `"descriptors"`: with the descriptors and type the user gave; protobuf JSON.
 * - `"wire"`: without a schema; `message` is an array of `WireJsonField` (see
 *   `wire.ts`): field numbers, wire types, values.
 * - `"base64"`: not even the wire format reads; `message` is
 *   `{ "$base64": true, "encoded": "…" }`.
 *
 * @example
 * ```ts
 * import type { DecodedWith } from "./descriptors.ts";
 * import assert from "node:assert/strict";
 *
 * const labels: Record<DecodedWith, string> = {
 *   "stored-descriptors": "recorded type",
 *   descriptors: "given type",
 *   wire: "schema-less wire dump",
 *   base64: "undecodable, base64",
 * };
 * assert.ok(Object.keys(labels).length === 4);
 * ```
 */
export type DecodedWith =
  | "stored-descriptors"
  | "descriptors"
  | "wire"
  | "base64";

/**
 * The result of {@linkcode decodeBlob}.
 *
 * @example
 * ```ts
 * import { decodeBlob, type DecodedBlob } from "./descriptors.ts";
 * import assert from "node:assert/strict";
 *
 * const result: DecodedBlob = decodeBlob(new Uint8Array([0x08, 0x01]), {});
 * assert.ok(result.decodedWith === "wire" && result.type === undefined);
 * ```
 */
export interface DecodedBlob {
  /** Which way worked; see {@linkcode DecodedWith}. */
  decodedWith: DecodedWith;
  /** The message type name, for `"stored-descriptors"` and `"descriptors"`. */
  type?: string;
  /** The decoded message as JSON data; its shape depends on `decodedWith`. */
  message: unknown;
  /** Why each earlier way failed, `; `-separated; absent when none was tried and failed. */
  reason?: string;
}

/**
 * Decodes a stored blob the best way available, and never throws for bad data: with the
 * type and descriptor set recorded for its row, else with descriptors the user gave,
 * else as a schema-less wire dump, else as base64 (see {@linkcode DecodedWith}). A way
 * that throws falls through to the next one, and `reason` says why it failed.
 *
 * Descriptor decoding ignores unknown fields, so a blob of another type can decode with
 * the wrong type; it only falls through when the bytes cannot be that type at all.
 *
 * @param bytes The blob.
 * @param sources The descriptors to try and the registry cache.
 * @returns The decoded message and how it was decoded.
 *
 * @example Fall back to the wire dump, then to base64
 * ```ts
 * import { decodeBlob } from "./descriptors.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = decodeBlob(new Uint8Array([0x08, 0x01]), {});
 * assert.deepEqual(wire, {
 *   decodedWith: "wire",
 *   message: [{ field: 1, wireType: "varint", value: "1", zigzag: "-1" }],
 * });
 *
 * const garbage = decodeBlob(new Uint8Array([0xff]), {});
 * assert.equal(garbage.decodedWith, "base64");
 * assert.deepEqual(garbage.message, { $base64: true, encoded: "/w==" });
 * assert.match(garbage.reason!, /^wire format: .*byte offset 0/);
 * ```
 */
export function decodeBlob(
  bytes: Uint8Array,
  sources: DecodeSources,
): DecodedBlob {
  let reason: string | undefined;
  const failed = (what: string, error: unknown) => {
    // one line per blob in listings: sentences joined by "; "
    const text = `${what}: ${messageOf(error).replace(/\.$/, "")}`;
    reason = reason === undefined ? text : `${reason}; ${text}`;
  };
  const { stored, descriptors } = sources;
  if (stored !== undefined) {
    try {
      const registry = sources.cache !== undefined
        ? sources.cache.get(stored.descriptorSet, stored.key)
        : registryFromDescriptorSet(stored.descriptorSet);
      const message = decodeMessageToJson(registry, stored.typeName, bytes);
      return {
        decodedWith: "stored-descriptors",
        type: stored.typeName,
        message,
      };
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      failed(`stored descriptors (${stored.typeName})`, error);
    }
  }
  if (descriptors !== undefined) {
    try {
      const message = decodeMessageToJson(
        descriptors.registry,
        descriptors.typeName,
        bytes,
      );
      const result: DecodedBlob = {
        decodedWith: "descriptors",
        type: descriptors.typeName,
        message,
      };
      if (reason !== undefined) result.reason = reason;
      return result;
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      failed(`given descriptors (${descriptors.typeName})`, error);
    }
  }
  try {
    const message = wireToJson(
      decodeWire(bytes, { maxDepth: sources.wireMaxDepth }),
    );
    const result: DecodedBlob = { decodedWith: "wire", message };
    if (reason !== undefined) result.reason = reason;
    return result;
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    failed("wire format", error);
  }
  return {
    decodedWith: "base64",
    message: { $base64: true, encoded: bytes.toBase64() },
    reason,
  };
}
