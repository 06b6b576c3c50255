/**
 * `--descriptors FILE`, `--type NAME` and `--type-for KIND=NAME`: how the CLI learns the
 * message types of rows the Store did not record a type for (the Go store's rows).
 *
 * @module
 */
import { messageOf, StoreError } from "../errors.ts";
import type { DecodeOptions } from "../admin/row_decoder.ts";
import {
  fields,
  formatBytes,
  type Output,
  prettyMessage,
  UsageError,
} from "./output.ts";

/** The parseArgs options for decoding. */
export const DECODE_OPTIONS = {
  descriptors: { type: "string" },
  type: { type: "string" },
  "type-for": { type: "string", multiple: true },
} as const;

/** Help lines for the decoding options. */
export const DECODE_HELP =
  `  --descriptors FILE   a FileDescriptorSet (e.g. from \`buf build -o FILE\`) to decode rows
                       that have no recorded type (rows written by the Go store)
  --type NAME          the message type of those rows, e.g. example.v1.Skill
  --type-for KIND=NAME the message type for one kind (repeatable; wins over --type)`;

/** Turns the parsed flags into {@linkcode DecodeOptions}, reading the descriptor file. */
export function decodeOptions(
  values: { descriptors?: string; type?: string; "type-for"?: string[] },
  command: string,
): DecodeOptions {
  const typeForKind: Record<string, string> = {};
  for (const mapping of values["type-for"] ?? []) {
    const at = mapping.indexOf("=");
    if (at <= 0 || at === mapping.length - 1) {
      throw new UsageError(
        `--type-for takes KIND=NAME, got ${JSON.stringify(mapping)}`,
        command,
      );
    }
    typeForKind[mapping.slice(0, at)] = mapping.slice(at + 1);
  }
  if ((values.type || values["type-for"]) && !values.descriptors) {
    throw new UsageError(
      "--type and --type-for need --descriptors FILE",
      command,
    );
  }
  let descriptorSet: Uint8Array | undefined;
  if (values.descriptors) {
    try {
      descriptorSet = Deno.readFileSync(values.descriptors);
    } catch (error) {
      throw new StoreError(
        `cannot read descriptors ${values.descriptors}: ${messageOf(error)}`,
      );
    }
  }
  return { descriptorSet, typeName: values.type, typeForKind };
}

/** How a message was decoded, in words for people. */
export function decodedWithLabel(
  decodedWith: string,
  type: string | null,
): string {
  switch (decodedWith) {
    case "stored-descriptors":
      return `${type} (type recorded in the database)`;
    case "descriptors":
      return `${type} (from --descriptors)`;
    case "wire":
      return type
        ? `schema-less wire dump (the bytes do not decode as ${type})`
        : "schema-less wire dump (no type known; pass --descriptors FILE --type NAME)";
    default:
      return "undecodable: shown as base64";
  }
}

/** A decoded message with what the CLI tells about it (a resource or a snapshot). */
export interface Decoded {
  size: number;
  type: string | null;
  decodedWith: string;
  message: unknown;
  reason?: string;
}

/**
 * A decoded message for people: the `head` fields, its size and how it was decoded,
 * the `more` fields, any note, then the message itself.
 */
export function renderDecoded(
  output: Output,
  decoded: Decoded,
  head: [string, unknown][],
  more: [string, unknown][] = [],
): string {
  return fields(output, [
    ...head,
    ["size", formatBytes(decoded.size)],
    ["type", decodedWithLabel(decoded.decodedWith, decoded.type)],
    ...more,
    ...(decoded.reason ? [["note", decoded.reason] as [string, unknown]] : []),
  ]) + "\n" + prettyMessage(decoded.message) + "\n";
}
