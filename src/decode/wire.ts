/**
 * A schema-less reader of the protobuf wire format, for blobs whose message type is not
 * known: it lists field numbers, wire types and values, shows length-delimited fields as
 * nested messages when their bytes parse as one, as text when they are printable UTF-8,
 * and as bytes otherwise (like `protoc --decode_raw`).
 *
 * The input is untrusted. Every length is checked against the bytes that remain before
 * anything is sliced; nesting is limited by `maxDepth` and the output by `maxFields`;
 * whether bytes are a nested message is checked without allocating before it is built,
 * and each byte is checked at most once per nesting level, so the work is linear in the
 * input size times the depth. Malformed input throws a {@linkcode DecodeError} whose
 * `offset` is the byte where reading failed.
 *
 * It stays hand-written on purpose: a version on protobuf-es's `BinaryReader` that
 * guesses nested messages by trying to parse them and catching the error was measured
 * 10-40x slower on the same inputs (issue 10). The Badger KVList decoder, whose schema
 * is known, does run on `BinaryReader` at about the same speed (`src/badger/kvlist.ts`).
 *
 * @module
 */

import { DecodeError, StoreError } from "../errors.ts";

/** Nesting levels expanded below the top level when no `maxDepth` is given. */
export const DEFAULT_WIRE_MAX_DEPTH = 16;
/** The largest `maxDepth` accepted; deeper nesting would risk the call stack. */
export const MAX_WIRE_MAX_DEPTH = 100;
/** Fields a dump may hold when no `maxFields` is given. */
export const DEFAULT_WIRE_MAX_FIELDS = 100_000;

/** The largest field number protobuf allows (2^29 - 1). */
const MAX_FIELD_NUMBER = 0x1fffffff;
const TWO_32 = 4294967296;
/** `hi` words below this keep a uint64 under 2^53, exact as a JS number. */
const SAFE_HI = 0x200000;

/**
 * One field of a message read without a schema; `wireType` tells which variant it is.
 * `field` is the field number and `offset` the byte offset of the field's tag in the
 * input given to {@linkcode decodeWire} (also for fields of nested messages).
 *
 * @example Tell the variants apart
 * ```ts
 * import { decodeWire, type WireField } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * function describe(field: WireField): string {
 *   switch (field.wireType) {
 *     case "varint":
 *       return `${field.field}: ${field.value}`;
 *     case "len":
 *       return "message" in field ? `${field.field} {…}` : `${field.field}: …`;
 *     default:
 *       return `${field.field}: ${field.wireType}`;
 *   }
 * }
 * assert.ok(describe(decodeWire(new Uint8Array([0x08, 0x96, 0x01]))[0]) === "1: 150");
 * ```
 */
export type WireField =
  | WireVarintField
  | WireI64Field
  | WireI32Field
  | WireLenField
  | WireGroupField;

/**
 * A varint field (wire type 0): int32, int64, uint32, uint64, sint32, sint64, bool or
 * enum. `value` is the exact uint64 in decimal, `zigzag` the value read as sint64, and
 * `signed` the value read as int64, present only when it differs from `value`.
 *
 * @example
 * ```ts
 * import { decodeWire } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const [field] = decodeWire(new Uint8Array([0x08, 0x03])); // field 1 = 3
 * assert.ok(field.wireType === "varint" && field.zigzag === "-2");
 * ```
 */
export interface WireVarintField {
  /** Field number, 1 to 2^29 - 1. */
  field: number;
  /** Byte offset of the field's tag in the input. */
  offset: number;
  /** The wire type. */
  wireType: "varint";
  /** The value as uint64, in decimal. */
  value: string;
  /** The value as int64, in decimal; only when the top bit is set. */
  signed?: string;
  /** The value as sint64 (zigzag-decoded), in decimal. */
  zigzag: string;
}

/**
 * A 64-bit fixed-width field (wire type 1): fixed64, sfixed64 or double.
 *
 * @example
 * ```ts
 * import { decodeWire } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]); // field 1 = 1.0
 * const [field] = decodeWire(bytes);
 * assert.ok(field.wireType === "i64" && field.double === 1);
 * ```
 */
export interface WireI64Field {
  /** Field number, 1 to 2^29 - 1. */
  field: number;
  /** Byte offset of the field's tag in the input. */
  offset: number;
  /** The wire type. */
  wireType: "i64";
  /** The 64 bits as hexadecimal, most significant first: `0x3ff0000000000000`. */
  hex: string;
  /** The value as fixed64 (uint64), in decimal. */
  value: string;
  /** The value as sfixed64, in decimal; only when the top bit is set. */
  signed?: string;
  /** The value as a double. */
  double: number;
}

/**
 * A 32-bit fixed-width field (wire type 5): fixed32, sfixed32 or float.
 *
 * @example
 * ```ts
 * import { decodeWire } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const [field] = decodeWire(new Uint8Array([0x0d, 0xff, 0xff, 0xff, 0xff]));
 * assert.ok(field.wireType === "i32" && field.signed === -1);
 * ```
 */
export interface WireI32Field {
  /** Field number, 1 to 2^29 - 1. */
  field: number;
  /** Byte offset of the field's tag in the input. */
  offset: number;
  /** The wire type. */
  wireType: "i32";
  /** The 32 bits as hexadecimal, most significant first: `0x3f800000`. */
  hex: string;
  /** The value as fixed32 (uint32). */
  value: number;
  /** The value as sfixed32; only when the top bit is set. */
  signed?: number;
  /** The value as a float. */
  float: number;
}

/**
 * A length-delimited field (wire type 2) with exactly one of: `message` (its bytes parse
 * completely as a message with at least one field), `string` (printable UTF-8 text) or
 * `bytes` (anything else; a view into the input, not a copy). Packed repeated scalars
 * show as bytes.
 *
 * @example
 * ```ts
 * import { decodeWire } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const [field] = decodeWire(new Uint8Array([0x12, 0x02, 0x68, 0x69])); // field 2 = "hi"
 * assert.ok(field.wireType === "len" && "string" in field && field.string === "hi");
 * ```
 */
export type WireLenField =
  & {
    /** Field number, 1 to 2^29 - 1. */
    field: number;
    /** Byte offset of the field's tag in the input. */
    offset: number;
    /** The wire type. */
    wireType: "len";
    /** Length of the field's contents in bytes. */
    length: number;
  }
  & (
    | { message: WireField[] }
    | { string: string }
    | { bytes: Uint8Array }
  );

/**
 * A group (wire types 3 and 4, proto2's deprecated groups): the fields between the
 * start-group tag and the matching end-group tag.
 *
 * @example
 * ```ts
 * import { decodeWire } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * // start group 1, field 2 = 5, end group 1
 * const [field] = decodeWire(new Uint8Array([0x0b, 0x10, 0x05, 0x0c]));
 * assert.ok(field.wireType === "group" && field.group.length === 1);
 * ```
 */
export interface WireGroupField {
  /** Field number, 1 to 2^29 - 1. */
  field: number;
  /** Byte offset of the start-group tag in the input. */
  offset: number;
  /** The wire type. */
  wireType: "group";
  /** The fields inside the group. */
  group: WireField[];
}

/**
 * Options of {@linkcode decodeWire}.
 *
 * @example
 * ```ts
 * import { decodeWire, type DecodeWireOptions } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const options: DecodeWireOptions = { maxDepth: 0 }; // never look inside fields
 * const [field] = decodeWire(new Uint8Array([0x0a, 0x02, 0x08, 0x01]), options);
 * assert.ok(field.wireType === "len" && "bytes" in field);
 * ```
 */
export interface DecodeWireOptions {
  /**
   * How many levels of nested messages and groups are expanded below the top level,
   * 0 to {@linkcode MAX_WIRE_MAX_DEPTH}; default {@linkcode DEFAULT_WIRE_MAX_DEPTH}.
   * Deeper length-delimited fields are shown as text or bytes; deeper groups are an
   * error.
   */
  maxDepth?: number;
  /**
   * How many fields (nested ones included) the dump may hold, at least 1; default
   * {@linkcode DEFAULT_WIRE_MAX_FIELDS}. More is an error: it bounds the memory a
   * hostile blob of millions of tiny fields could take.
   */
  maxFields?: number;
}

// Failure codes of the internal parser; the message is only built when it is thrown,
// because failed attempts at reading nested messages are common and must stay cheap.
const enum Fail {
  TruncatedVarint,
  VarintOverflow,
  FieldNumberZero,
  FieldNumberTooLarge,
  ReservedFieldNumber,
  InvalidWireType,
  TruncatedFixed,
  LengthPastEnd,
  GroupTooDeep,
  UnmatchedEndGroup,
  UnterminatedGroup,
}

/** What a check-only pass returns on success; never written to. */
const SCANNED: WireField[] = Object.freeze([]) as unknown as WireField[];

const scratch = new DataView(new ArrayBuffer(8));
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** C1 controls; C0 and DEL are rejected byte by byte before decoding. */
const C1_CONTROL = /[\u0080-\u009f]/;

function u64String(lo: number, hi: number): string {
  if (hi === 0) return String(lo);
  if (hi < SAFE_HI) return String(hi * TWO_32 + lo);
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

function i64String(lo: number, hi: number): string {
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}

function zigzagString(lo: number, hi: number): string {
  // n >>> 1, as two words
  const shiftedLo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
  const shiftedHi = hi >>> 1;
  if ((lo & 1) === 0) return u64String(shiftedLo, shiftedHi);
  // odd n encodes -(n >>> 1) - 1; that magnitude is at most 2^63, so it fits a uint64
  if (shiftedHi < SAFE_HI) return String(-(shiftedHi * TWO_32 + shiftedLo) - 1);
  return (-((BigInt(shiftedHi) << 32n) | BigInt(shiftedLo)) - 1n).toString();
}

function byteCount(n: number): string {
  return n === 1 ? "1 byte" : `${n} bytes`;
}

function hex32(word: number): string {
  return word.toString(16).padStart(8, "0");
}

/** One parse of one input; `pos` is the cursor, the fields below hold the last failure. */
class WireParser {
  pos = 0;
  /** Words of the last varint read. */
  lo = 0;
  hi = 0;
  failure = Fail.TruncatedVarint;
  failureOffset = 0;
  failureA = 0;
  failureB = 0;
  /** Fields built so far, against `maxFields`. */
  built = 0;
  /** Fields seen by the last check-only pass, and whether one was length-delimited. */
  scanned = 0;
  scannedLen = false;

  constructor(
    readonly buf: Uint8Array,
    readonly maxDepth: number,
    readonly maxFields: number,
  ) {}

  fail(code: Fail, offset: number, a = 0, b = 0): null {
    this.failure = code;
    this.failureOffset = offset;
    this.failureA = a;
    this.failureB = b;
    return null;
  }

  /** {@linkcode fail} for functions that report success as a boolean. */
  failed(code: Fail, offset: number): false {
    this.fail(code, offset);
    return false;
  }

  /** Reads a varint ending before `end` into `lo`/`hi`; false on failure. */
  readVarint(end: number): boolean {
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) return this.failed(Fail.TruncatedVarint, start);
      const b = buf[pos++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = 0;
        return true;
      }
    }
    // fifth byte: 4 bits of lo, 3 of hi
    if (pos >= end) return this.failed(Fail.TruncatedVarint, start);
    let b = buf[pos++];
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (let shift = 3; shift < 32; shift += 7) {
        if (pos >= end) return this.failed(Fail.TruncatedVarint, start);
        b = buf[pos++];
        // the tenth byte may only carry bit 63
        if (shift === 31 && b > 1) {
          return this.failed(Fail.VarintOverflow, start);
        }
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return true;
  }

  /**
   * Reads fields up to `end`, or up to the end-group tag of `groupField` when it is not
   * 0. `nested` applies the stricter checks used when guessing that bytes are a message.
   *
   * With `build` false this only checks that the bytes are well-formed: it allocates
   * nothing, does not look inside length-delimited fields (their contents cannot make
   * the enclosing message invalid), counts fields in `scanned` and notes in `scannedLen`
   * whether one was length-delimited; it returns {@linkcode SCANNED} on success.
   */
  parseFields(
    end: number,
    depth: number,
    groupField: number,
    groupOffset: number,
    nested: boolean,
    build: boolean,
  ): WireField[] | null {
    const buf = this.buf;
    const fields: WireField[] = build ? [] : SCANNED;
    while (this.pos < end) {
      const offset = this.pos;
      if (!this.readVarint(end)) return null;
      if (this.hi !== 0) return this.fail(Fail.FieldNumberTooLarge, offset);
      const field = this.lo >>> 3;
      const wireType = this.lo & 7;
      if (field === 0) return this.fail(Fail.FieldNumberZero, offset);
      if (field > MAX_FIELD_NUMBER) {
        return this.fail(Fail.FieldNumberTooLarge, offset);
      }
      // 19000-19999 are reserved by protobuf; real nested messages never use them
      if (nested && field >= 19000 && field <= 19999) {
        return this.fail(Fail.ReservedFieldNumber, offset, field);
      }
      if (wireType === 4) {
        if (field !== groupField) {
          return this.fail(Fail.UnmatchedEndGroup, offset, field);
        }
        return fields;
      }
      if (build) {
        // an output limit, so that a hostile blob of millions of tiny fields cannot
        // exhaust memory; thrown, because no smaller reading of the input helps
        if (++this.built > this.maxFields) {
          throw new DecodeError(
            `The protobuf wire format has more than ${this.maxFields} fields, too many for a schema-less dump (decode it with descriptors, or raise maxFields); the limit was reached`,
            offset,
          );
        }
      } else {
        this.scanned++;
      }
      switch (wireType) {
        case 0: {
          if (!this.readVarint(end)) return null;
          if (!build) break;
          const { lo, hi } = this;
          const varint: WireVarintField = {
            field,
            offset,
            wireType: "varint",
            value: u64String(lo, hi),
            zigzag: zigzagString(lo, hi),
          };
          if (hi >= 0x80000000) varint.signed = i64String(lo, hi);
          fields.push(varint);
          break;
        }
        case 1: {
          const pos = this.pos;
          if (end - pos < 8) {
            return this.fail(Fail.TruncatedFixed, pos, 8, end - pos);
          }
          this.pos = pos + 8;
          if (!build) break;
          const lo = (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) |
            (buf[pos + 3] << 24)) >>> 0;
          const hi =
            (buf[pos + 4] | (buf[pos + 5] << 8) | (buf[pos + 6] << 16) |
              (buf[pos + 7] << 24)) >>> 0;
          scratch.setUint32(0, lo, true);
          scratch.setUint32(4, hi, true);
          const i64: WireI64Field = {
            field,
            offset,
            wireType: "i64",
            hex: `0x${hex32(hi)}${hex32(lo)}`,
            value: u64String(lo, hi),
            double: scratch.getFloat64(0, true),
          };
          if (hi >= 0x80000000) i64.signed = i64String(lo, hi);
          fields.push(i64);
          break;
        }
        case 2: {
          const lengthOffset = this.pos;
          if (!this.readVarint(end)) return null;
          const start = this.pos;
          // checked before anything is sliced: a huge length must not allocate
          if (this.hi !== 0 || this.lo > end - start) {
            // a = -1: the length does not even fit in 32 bits
            const length = this.hi !== 0 ? -1 : this.lo;
            return this.fail(
              Fail.LengthPastEnd,
              lengthOffset,
              length,
              end - start,
            );
          }
          const length = this.lo;
          if (build) {
            fields.push(
              this.lenField(field, offset, start, start + length, depth),
            );
          } else {
            this.scannedLen = true;
          }
          this.pos = start + length;
          break;
        }
        case 3: {
          if (depth >= this.maxDepth) {
            return this.fail(Fail.GroupTooDeep, offset, field);
          }
          const group = this.parseFields(
            end,
            depth + 1,
            field,
            offset,
            nested,
            build,
          );
          if (group === null) return null;
          if (build) fields.push({ field, offset, wireType: "group", group });
          break;
        }
        case 5: {
          const pos = this.pos;
          if (end - pos < 4) {
            return this.fail(Fail.TruncatedFixed, pos, 4, end - pos);
          }
          this.pos = pos + 4;
          if (!build) break;
          const value = (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) |
            (buf[pos + 3] << 24)) >>> 0;
          scratch.setUint32(0, value, true);
          const i32: WireI32Field = {
            field,
            offset,
            wireType: "i32",
            hex: `0x${hex32(value)}`,
            value,
            float: scratch.getFloat32(0, true),
          };
          if (value >= 0x80000000) i32.signed = value | 0;
          fields.push(i32);
          break;
        }
        default:
          return this.fail(Fail.InvalidWireType, offset, wireType, field);
      }
    }
    if (groupField !== 0) {
      return this.fail(Fail.UnterminatedGroup, groupOffset, groupField);
    }
    return fields;
  }

  /**
   * Shows bytes `start..end` as a nested message, text or bytes. Checks first, without
   * allocating, whether they are a message; builds it only when it is chosen. So each
   * byte is checked once per nesting level at most, and failed guesses cost no memory.
   */
  lenField(
    field: number,
    offset: number,
    start: number,
    end: number,
    depth: number,
  ): WireLenField {
    const length = end - start;
    let isMessage = false;
    if (length > 0 && depth < this.maxDepth) {
      this.pos = start;
      this.scanned = 0;
      this.scannedLen = false;
      isMessage =
        this.parseFields(end, depth + 1, 0, 0, true, false) !== null &&
        this.scanned > 0;
    }
    // A message with a length-delimited field is strong evidence; one made only of
    // numbers is what short text like "hi" (field 13 = 105) looks like, so text wins.
    const text = isMessage && this.scannedLen
      ? undefined
      : this.text(start, end);
    if (text !== undefined) {
      return { field, offset, wireType: "len", length, string: text };
    }
    if (isMessage) {
      this.pos = start;
      // cannot fail: the same checks just passed (only the field limit throws)
      const message = this.parseFields(end, depth + 1, 0, 0, true, true)!;
      return { field, offset, wireType: "len", length, message };
    }
    return {
      field,
      offset,
      wireType: "len",
      length,
      bytes: this.buf.subarray(start, end),
    };
  }

  /** The bytes as text when they are valid UTF-8 without control characters. */
  text(start: number, end: number): string | undefined {
    const buf = this.buf;
    let ascii = true;
    for (let i = start; i < end; i++) {
      const b = buf[i];
      if (b < 0x20) {
        if (b !== 0x09 && b !== 0x0a && b !== 0x0d) return undefined;
      } else if (b === 0x7f) {
        return undefined;
      } else if (b >= 0x80) {
        ascii = false;
      }
    }
    let text: string;
    try {
      text = utf8.decode(buf.subarray(start, end));
    } catch {
      return undefined;
    }
    if (!ascii && C1_CONTROL.test(text)) return undefined;
    return text;
  }

  describeFailure(): string {
    const a = this.failureA;
    const b = this.failureB;
    switch (this.failure) {
      case Fail.TruncatedVarint:
        return "varint is cut off by the end of the data";
      case Fail.VarintOverflow:
        return "varint is longer than 64 bits";
      case Fail.FieldNumberZero:
        return "field number 0 is not allowed";
      case Fail.FieldNumberTooLarge:
        return `field number is larger than ${MAX_FIELD_NUMBER}`;
      case Fail.ReservedFieldNumber:
        return `field number ${a} is in the reserved range 19000-19999`;
      case Fail.InvalidWireType:
        return `wire type ${a} of field ${b} does not exist`;
      case Fail.TruncatedFixed:
        return `fixed-width value needs ${a} bytes but only ${
          byteCount(b)
        } are left`;
      case Fail.LengthPastEnd:
        return `length ${
          a < 0 ? "of 4 GiB or more" : a
        } runs past the end (only ${byteCount(b)} left after it)`;
      case Fail.GroupTooDeep:
        return `group of field ${a} is nested deeper than maxDepth ${this.maxDepth}`;
      case Fail.UnmatchedEndGroup:
        return `end-group tag of field ${a} has no matching start-group tag`;
      case Fail.UnterminatedGroup:
        return `group of field ${a} that starts here has no end-group tag`;
    }
  }
}

/**
 * Reads `bytes` as a protobuf message without knowing its type.
 *
 * Length-delimited fields become a nested message when their bytes parse completely as
 * one with at least one field and no field number in the reserved range 19000-19999
 * (if such a message has only numeric fields and the bytes are also printable text, the
 * text wins: short strings like "hi" parse as numbers); else a string when they are
 * UTF-8 without control characters other than tab, newline and carriage return; else
 * bytes. Empty contents are the string `""`. An empty input is an empty message.
 *
 * @param bytes A serialized protobuf message.
 * @param options `maxDepth`: nesting levels to expand; `maxFields`: most fields to
 * return (see {@linkcode DecodeWireOptions}).
 * @returns The top-level fields in the order they appear.
 * @throws {DecodeError} When the bytes are not well-formed wire format (a varint or value
 * cut short, a length past the end, field number 0, wire type 6 or 7, unbalanced
 * groups) or hold more than `maxFields` fields; `offset` is the byte where it failed.
 * @throws {StoreError} When an option is out of range.
 *
 * @example Dump a message
 * ```ts
 * import { decodeWire } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * // field 1 = 150, field 2 = "hi", field 3 = { field 1 = 1 }
 * const bytes = new Uint8Array([0x08, 0x96, 0x01, 0x12, 0x02, 0x68, 0x69, 0x1a, 0x02, 0x08, 0x01]);
 * const [a, b, c] = decodeWire(bytes);
 * assert.equal(a.wireType === "varint" && a.value, "150");
 * assert.equal(b.wireType === "len" && "string" in b && b.string, "hi");
 * assert.equal(c.wireType === "len" && "message" in c && c.message.length, 1);
 * ```
 *
 * @example Malformed input names the offset
 * ```ts
 * import { decodeWire } from "./wire.ts";
 * import { DecodeError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * // field 1, a varint whose continuation bit promises a byte that is not there
 * assert.throws(() => decodeWire(new Uint8Array([0x08, 0x96])), (error) => {
 *   return error instanceof DecodeError && error.offset === 1;
 * });
 * ```
 */
export function decodeWire(
  bytes: Uint8Array,
  options?: DecodeWireOptions,
): WireField[] {
  const maxDepth = options?.maxDepth ?? DEFAULT_WIRE_MAX_DEPTH;
  if (
    !Number.isInteger(maxDepth) || maxDepth < 0 || maxDepth > MAX_WIRE_MAX_DEPTH
  ) {
    throw new StoreError(
      `maxDepth ${maxDepth} is not allowed for the wire decoder; use an integer from 0 to ${MAX_WIRE_MAX_DEPTH}`,
    );
  }
  const maxFields = options?.maxFields ?? DEFAULT_WIRE_MAX_FIELDS;
  if (!Number.isInteger(maxFields) || maxFields < 1) {
    throw new StoreError(
      `maxFields ${maxFields} is not allowed for the wire decoder; use an integer of at least 1`,
    );
  }
  const parser = new WireParser(bytes, maxDepth, maxFields);
  const fields = parser.parseFields(bytes.length, 0, 0, 0, false, true);
  if (fields === null) {
    throw new DecodeError(
      `Cannot read protobuf wire format of ${
        byteCount(bytes.length)
      } (not a protobuf message, or truncated or corrupt): ${parser.describeFailure()}`,
      parser.failureOffset,
    );
  }
  return fields;
}

/**
 * The JSON form of a {@linkcode WireField} made by {@linkcode wireToJson}: the same keys,
 * with `bytes` in base64, a `double` or `float` that is not finite as the string
 * `"NaN"`, `"Infinity"` or `"-Infinity"` (as the protobuf JSON mapping does), and
 * `offset` and `length` only when asked for.
 *
 * @example
 * ```ts
 * import { decodeWire, wireToJson, type WireJsonField } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const json: WireJsonField[] = wireToJson(decodeWire(new Uint8Array([0x08, 0x01])));
 * assert.ok(json[0].value === "1");
 * ```
 */
export interface WireJsonField {
  /** Field number. */
  field: number;
  /** `"varint"`, `"i64"`, `"len"`, `"group"` or `"i32"`. */
  wireType: WireField["wireType"];
  /** Byte offset of the tag; only with `positions: true`. */
  offset?: number;
  /** Length of a length-delimited field; only with `positions: true`. */
  length?: number;
  /** Varint and i64: uint64 in decimal; i32: uint32. */
  value?: string | number;
  /** Varint and i64: int64 in decimal; i32: int32; only when it differs from `value`. */
  signed?: string | number;
  /** Varint: the value as sint64, in decimal. */
  zigzag?: string;
  /** i64 and i32: the bits in hexadecimal. */
  hex?: string;
  /** i64: the value as a double. */
  double?: number | string;
  /** i32: the value as a float. */
  float?: number | string;
  /** Length-delimited, parsed as a message: its fields. */
  message?: WireJsonField[];
  /** Length-delimited, printable UTF-8: the text. */
  string?: string;
  /** Length-delimited, anything else: base64 (standard alphabet, padded). */
  bytes?: string;
  /** Group: its fields. */
  group?: WireJsonField[];
}

/**
 * Options of {@linkcode wireToJson}.
 *
 * @example
 * ```ts
 * import { decodeWire, wireToJson, type WireToJsonOptions } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const options: WireToJsonOptions = { positions: true };
 * assert.ok(wireToJson(decodeWire(new Uint8Array([0x08, 0x01])), options)[0].offset === 0);
 * ```
 */
export interface WireToJsonOptions {
  /**
   * Include each field's byte `offset` (and `length` of length-delimited fields).
   * Default false: offsets move whenever an earlier field changes size, which would
   * clutter a diff of two snapshots.
   */
  positions?: boolean;
}

function jsonNumber(value: number): number | string {
  return Number.isFinite(value) ? value : String(value);
}

/**
 * Turns the result of {@linkcode decodeWire} into plain JSON data (see
 * {@linkcode WireJsonField}) for `--json` output, for printing, and for
 * diffing two snapshots (`diffJson` in `diff.ts`).
 *
 * @param fields Fields from {@linkcode decodeWire}.
 * @param options `positions`: include offsets and lengths.
 * @returns New objects; `JSON.stringify` of them is lossless for everything but offsets.
 *
 * @example
 * ```ts
 * import { decodeWire, wireToJson } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * // field 1 = 150, field 2 = bytes 0xff 0x00
 * const fields = decodeWire(new Uint8Array([0x08, 0x96, 0x01, 0x12, 0x02, 0xff, 0x00]));
 * assert.deepEqual(wireToJson(fields), [
 *   { field: 1, wireType: "varint", value: "150", zigzag: "75" },
 *   { field: 2, wireType: "len", bytes: "/wA=" },
 * ]);
 * ```
 */
export function wireToJson(
  fields: WireField[],
  options?: WireToJsonOptions,
): WireJsonField[] {
  const positions = options?.positions ?? false;
  const convert = (list: WireField[]): WireJsonField[] =>
    list.map((f) => {
      const out: WireJsonField = { field: f.field, wireType: f.wireType };
      if (positions) out.offset = f.offset;
      switch (f.wireType) {
        case "varint":
          out.value = f.value;
          if (f.signed !== undefined) out.signed = f.signed;
          out.zigzag = f.zigzag;
          break;
        case "i64":
          out.hex = f.hex;
          out.value = f.value;
          if (f.signed !== undefined) out.signed = f.signed;
          out.double = jsonNumber(f.double);
          break;
        case "i32":
          out.hex = f.hex;
          out.value = f.value;
          if (f.signed !== undefined) out.signed = f.signed;
          out.float = jsonNumber(f.float);
          break;
        case "len":
          if (positions) out.length = f.length;
          if ("message" in f) out.message = convert(f.message);
          else if ("string" in f) out.string = f.string;
          else out.bytes = f.bytes.toBase64();
          break;
        case "group":
          out.group = convert(f.group);
          break;
      }
      return out;
    });
  return convert(fields);
}
