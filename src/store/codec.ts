/**
 * Messages to and from the bytes the stores keep: encode and decode with errors that
 * name the resource (and hint at `inspect` for a row that does not decode). Shared by
 * the SQLite and PostgreSQL stores, so both fail with the same words.
 *
 * @module
 */
import {
  type DescMessage,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { describeResource, messageOf, StoreError } from "../errors.ts";

/** Encodes a message for `kind`/`id`, naming them when the message cannot be encoded. */
export function encodeMessage<D extends DescMessage>(
  schema: D,
  message: MessageShape<D>,
  kind: string,
  id: string,
): Uint8Array {
  try {
    return toBinary(schema, message);
  } catch (error) {
    throw new StoreError(
      `cannot encode ${describeResource(kind, id)} as ${schema?.typeName}: ${
        messageOf(error)
      }`,
      { cause: error },
    );
  }
}

/** Decodes a stored value as `schema`, naming the row when it is not bytes or does not decode. */
export function decodeMessage<D extends DescMessage>(
  schema: D,
  data: Uint8Array,
  kind: string,
  id: string | undefined,
): MessageShape<D> {
  // The column is not STRICT: a row written with raw SQL can hold text or a number.
  if (!(data instanceof Uint8Array)) {
    throw new StoreError(
      `the stored value of ${describeResource(kind, id)} is ${
        typeof data === "string" ? "text" : data === null ? "NULL" : "a number"
      }, not bytes: the row was not written by protostore (see \`deno run -A cli.ts inspect KIND ID\`)`,
    );
  }
  try {
    return fromBinary(schema, data);
  } catch (error) {
    throw new StoreError(
      `stored bytes of ${
        describeResource(kind, id)
      } do not decode as ${schema.typeName}: ` +
        `${
          messageOf(error)
        } (wrong schema, or a corrupt row: see \`deno run -A cli.ts inspect KIND ID\`)`,
      { cause: error },
    );
  }
}
