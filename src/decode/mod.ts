/**
 * Turning stored bytes into something people read, without a database: the schema-less
 * wire dump (`wire.ts`), decoding with descriptor sets (`descriptors.ts`), field-level
 * diffs (`diff.ts`) and escaping of untrusted text for terminals (`text.ts`).
 *
 * May import: `src/errors.ts`. Used by store, admin, badger and cli.
 *
 * @module
 */
export {
  decodeWire,
  type DecodeWireOptions,
  DEFAULT_WIRE_MAX_DEPTH,
  DEFAULT_WIRE_MAX_FIELDS,
  MAX_WIRE_MAX_DEPTH,
  type WireField,
  type WireJsonField,
  wireToJson,
  type WireToJsonOptions,
} from "./wire.ts";
export {
  decodeBlob,
  type DecodedBlob,
  type DecodedWith,
  decodeMessageToJson,
  type DecodeSources,
  RegistryCache,
  registryFromDescriptorSet,
} from "./descriptors.ts";
export {
  type Change,
  diffJson,
  formatChange,
  type FormatChangeOptions,
} from "./diff.ts";
export { escapeControl } from "./text.ts";
