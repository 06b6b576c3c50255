/**
 * Streaming reader of the `badger backup` format (BadgerDB v2, v3 and v4 write the same
 * bytes) and the mapping of Badger keys to protostore resources and audit snapshots.
 *
 * The file is a sequence of records: an 8-byte little-endian length, then that many bytes
 * of a protobuf `KVList { repeated KV kv = 1; }` with
 * `KV { bytes key = 1; bytes value = 2; bytes user_meta = 3; uint64 version = 4;
 * uint64 expires_at = 5; bytes meta = 6; uint32 stream_id = 10; bool stream_done = 11; }`.
 * The protobuf is decoded by hand (no generated code, no per-field objects); unknown
 * fields are skipped. Memory stays bounded by the largest record, never the file.
 *
 * @module
 */
import { StoreError } from "../errors.ts";
import { messageOf } from "../sqlite/connection.ts";

/** Largest record accepted by default (1 GiB); Badger writes records of a few MiB. */
export const MAX_RECORD_BYTES = 1024 * 1024 * 1024;

/** Badger's `bitDelete` meta flag: the version is a tombstone. */
export const BADGER_BIT_DELETE = 0x01;

/**
 * One key version from a Badger backup. `key`, `value` and the byte fields are views into
 * the record's buffer: copy them (`slice()`) to keep them beyond the record's lifetime.
 */
export interface BadgerKV {
  /** The key bytes. */
  key: Uint8Array;
  /** The value bytes; empty for tombstones and expired keys. */
  value: Uint8Array;
  /** Version (Badger's commit timestamp), a uint64: a `bigint` only above 2^53 - 1. */
  version: number | bigint;
  /** Unix seconds after which the key is gone, 0 for none; a `bigint` above 2^53 - 1. */
  expiresAt: number | bigint;
  /** Badger's meta byte (first byte of the `meta` field, 0 if absent); 0x01 = deleted. */
  meta: number;
  /** The application's user-meta byte (first byte of `user_meta`, 0 if absent). */
  userMeta: number;
  /** Stream id (set by Badger's stream framework; informational). */
  streamId: number;
  /** True on stream-done markers, which carry no data. */
  streamDone: boolean;
}

/** One length-prefixed record of a Badger backup. */
export interface BadgerRecord {
  /** Byte offset of the record's 8-byte length prefix in the file. */
  offset: number;
  /** Length of the protobuf body (without the 8-byte prefix). */
  length: number;
  /** The decoded key versions, in file order. */
  kvs: BadgerKV[];
}

/** Options of {@linkcode readBadgerBackup}. */
export interface ReadBadgerOptions {
  /** Name of the source used in error messages, e.g. the file path. */
  name?: string;
  /** Total size in bytes when known: lets a too-long record fail before it is buffered. */
  totalBytes?: number;
  /** Largest record body accepted; default {@linkcode MAX_RECORD_BYTES}. */
  maxRecordBytes?: number;
  /** Called after every chunk read from the stream with the bytes read so far. */
  onProgress?: (bytesRead: number, totalBytes?: number) => void;
}

/** One length-prefixed record, not yet decoded. */
export interface BadgerRecordBody {
  /** Byte offset of the record's 8-byte length prefix in the file. */
  offset: number;
  /** The protobuf `KVList` bytes (without the prefix). */
  body: Uint8Array;
}

/**
 * Reads a Badger backup stream record by record. Each record is decoded completely
 * before it is yielded, so a corrupt record is an error before any of its KVs is seen.
 * Throws {@linkcode StoreError} naming the byte offset of the record on a truncated
 * length prefix, a record longer than the maximum or than the rest of the input, or a
 * body that is not a valid `KVList`. Breaking out of the loop cancels the stream.
 *
 * @param source The backup bytes, e.g. `(await Deno.open(path)).readable`.
 * @param options Name for messages, total size, maximum record size, progress callback.
 * @returns An async generator of records.
 *
 * @example Count the KVs of a backup
 * ```ts
 * import { readBadgerBackup } from "./reader.ts";
 * import assert from "node:assert/strict";
 *
 * // One record holding KV { key: "a/1", value: "x", version: 1 }.
 * const body = [0x0a, 0x0a, 0x0a, 0x03, 0x61, 0x2f, 0x31, 0x12, 0x01, 0x78, 0x20, 0x01];
 * const bytes = new Uint8Array([body.length, 0, 0, 0, 0, 0, 0, 0, ...body]);
 * let count = 0;
 * for await (const record of readBadgerBackup(ReadableStream.from([bytes]))) {
 *   count += record.kvs.length;
 * }
 * assert.equal(count, 1);
 * ```
 */
export async function* readBadgerBackup(
  source: ReadableStream<Uint8Array>,
  options: ReadBadgerOptions = {},
): AsyncGenerator<BadgerRecord, void, undefined> {
  const name = options.name ?? "Badger backup";
  for await (
    const { offset, body } of readBadgerRecordBodies(source, options)
  ) {
    yield {
      offset,
      length: body.length,
      kvs: decodeKVList(body, offset, name),
    };
  }
}

/**
 * The framing layer of {@linkcode readBadgerBackup}: yields each record's offset and
 * undecoded body, for decoding with {@linkcode forEachKV} without per-KV objects. Same
 * errors for the framing (truncated prefix, record too long or past the end); the body
 * is not checked. The body is a view into the stream's chunk when it lies in one.
 *
 * @param source The backup bytes.
 * @param options Name for messages, total size, maximum record size, progress callback.
 * @returns An async generator of record bodies.
 *
 * @example
 * ```ts
 * import { forEachKV, readBadgerRecordBodies } from "./reader.ts";
 * import assert from "node:assert/strict";
 *
 * const body = [0x0a, 0x07, 0x0a, 0x03, 0x61, 0x2f, 0x31, 0x20, 0x07];
 * const bytes = new Uint8Array([body.length, 0, 0, 0, 0, 0, 0, 0, ...body]);
 * let versions = 0;
 * for await (const record of readBadgerRecordBodies(ReadableStream.from([bytes]))) {
 *   forEachKV(record.body, (kv) => versions += Number(kv.version), record.offset);
 * }
 * assert.equal(versions, 7);
 * ```
 */
export async function* readBadgerRecordBodies(
  source: ReadableStream<Uint8Array>,
  options: ReadBadgerOptions = {},
): AsyncGenerator<BadgerRecordBody, void, undefined> {
  const name = options.name ?? "Badger backup";
  const maxRecordBytes = options.maxRecordBytes ?? MAX_RECORD_BYTES;
  const totalBytes = options.totalBytes;
  const onProgress = options.onProgress;
  const reader = source.getReader();
  // Unconsumed input: a queue of chunks, the first one consumed up to `head`.
  const chunks: Uint8Array[] = [];
  let head = 0;
  let buffered = 0;
  let bytesRead = 0;
  let ended = false;

  const fill = async (wanted: number): Promise<boolean> => {
    while (buffered < wanted && !ended) {
      const result = await reader.read();
      if (result.done) {
        ended = true;
        break;
      }
      const chunk = result.value;
      if (!(chunk instanceof Uint8Array)) {
        throw new StoreError(
          `${name}: the stream yielded a ${typeof chunk}, expected Uint8Array chunks`,
        );
      }
      if (chunk.length === 0) continue;
      chunks.push(chunk);
      buffered += chunk.length;
      bytesRead += chunk.length;
      onProgress?.(bytesRead, totalBytes);
    }
    return buffered >= wanted;
  };

  // Takes `n` buffered bytes: a view when they lie in one chunk, else one copy.
  const take = (n: number): Uint8Array => {
    if (n === 0) return EMPTY;
    const first = chunks[0];
    if (first.length - head >= n) {
      const out = first.subarray(head, head + n);
      head += n;
      if (head === first.length) {
        chunks.shift();
        head = 0;
      }
      buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = chunks[0];
      const count = Math.min(chunk.length - head, n - filled);
      out.set(chunk.subarray(head, head + count), filled);
      filled += count;
      head += count;
      if (head === chunk.length) {
        chunks.shift();
        head = 0;
      }
    }
    buffered -= n;
    return out;
  };

  let offset = 0;
  let finished = false;
  try {
    while (true) {
      if (!(await fill(8))) {
        if (buffered === 0) break;
        throw new StoreError(
          `${name}: truncated record length at byte offset ${offset}: ${buffered} of 8 bytes ` +
            `before the end of the input; the backup is incomplete, take it again with ` +
            "`badger backup`",
        );
      }
      const prefix = take(8);
      const length = (prefix[0] | (prefix[1] << 8) | (prefix[2] << 16)) +
        prefix[3] * 0x1000000 +
        (prefix[4] | (prefix[5] << 8) | (prefix[6] << 16)) * 0x100000000 +
        prefix[7] * 0x100000000000000;
      if (length > maxRecordBytes) {
        throw new StoreError(
          `${name}: record at byte offset ${offset} declares ${length} bytes, more than ` +
            `the maximum of ${maxRecordBytes}; the file is corrupt or not a Badger backup`,
        );
      }
      if (totalBytes !== undefined && offset + 8 + length > totalBytes) {
        throw pastEnd(name, offset, length, totalBytes - offset - 8);
      }
      if (!(await fill(length))) {
        throw pastEnd(name, offset, length, buffered);
      }
      yield { offset, body: take(length) };
      offset += 8 + length;
    }
    finished = true;
  } finally {
    if (!finished && !ended) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function pastEnd(
  name: string,
  offset: number,
  length: number,
  remaining: number,
): StoreError {
  const left = Math.max(remaining, 0);
  return new StoreError(
    `${name}: record at byte offset ${offset} declares ${length} bytes but only ${left} ` +
      "follow before the end of the input; the backup is truncated, take it again with " +
      "`badger backup`",
  );
}

/** A backup file opened for streaming. */
export interface OpenedBadgerBackup {
  /** The file's bytes, read in 1 MiB chunks; cancelling it closes the file. */
  stream: ReadableStream<Uint8Array>;
  /** File size in bytes. */
  size: number;
}

/**
 * Opens a backup file for {@linkcode readBadgerBackup}: a stream of its bytes and its
 * size. Throws {@linkcode StoreError} naming the path when it cannot be opened.
 *
 * @param path The file written by `badger backup -f`.
 * @returns The stream and the file size.
 *
 * @example
 * ```ts
 * import { openBadgerBackup, readBadgerBackup } from "./reader.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile({ suffix: ".bak" });
 * const { stream, size } = await openBadgerBackup(path);
 * assert.equal(size, 0);
 * for await (const _ of readBadgerBackup(stream)) throw new Error("empty file");
 * await Deno.remove(path);
 * ```
 */
export async function openBadgerBackup(
  path: string,
): Promise<OpenedBadgerBackup> {
  let file: Deno.FsFile;
  let size: number;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new StoreError(
      `cannot open Badger backup ${path}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  try {
    const info = await file.stat();
    if (!info.isFile) throw new Error("not a regular file");
    size = info.size;
  } catch (error) {
    file.close();
    throw new StoreError(
      `cannot read Badger backup ${path}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      file.close();
    }
  };
  // Big reads: fewer chunks and fewer records straddling two chunks than the default.
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buffer = new Uint8Array(1024 * 1024);
      let n: number | null;
      try {
        n = await file.read(buffer);
      } catch (error) {
        close();
        controller.error(
          new StoreError(
            `cannot read Badger backup ${path}: ${messageOf(error)}`,
            { cause: error },
          ),
        );
        return;
      }
      if (n === null) {
        close();
        controller.close();
      } else {
        controller.enqueue(buffer.subarray(0, n));
      }
    },
    cancel() {
      close();
    },
  });
  return { stream, size };
}

/**
 * Reads the backup file at `path` record by record: {@linkcode openBadgerBackup} plus
 * {@linkcode readBadgerBackup}, with the path in error messages and the file size as
 * the progress total. The file is closed when the loop ends, also on `break` or error.
 *
 * @param path The file written by `badger backup -f`.
 * @param options Maximum record size, progress callback.
 * @returns An async generator of records.
 *
 * @example
 * ```ts
 * import { readBadgerBackupFile } from "./reader.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".bak" });
 * for await (const record of readBadgerBackupFile(path)) console.log(record.offset);
 * await Deno.remove(path);
 * ```
 */
export async function* readBadgerBackupFile(
  path: string,
  options: Omit<ReadBadgerOptions, "name" | "totalBytes"> = {},
): AsyncGenerator<BadgerRecord, void, undefined> {
  const { stream, size } = await openBadgerBackup(path);
  yield* readBadgerBackup(stream, { ...options, name: path, totalBytes: size });
}

// ---------------------------------------------------------------------------------------
// KVList decoding. The cursor lives in module variables so the varint readers return
// plain numbers without allocating result objects.

let pos = 0;
let limit = 0;
let bigValue: bigint | undefined;

class WireError extends Error {}

function readVarint32(buf: Uint8Array): number {
  // Tags and lengths: at most 32 significant bits are accepted.
  let b = buf[pos++];
  if (b < 0x80) return b;
  let result = b & 0x7f;
  let shift = 7;
  for (let i = 1; i < 10; i++) {
    if (pos >= limit) throw new WireError("truncated varint");
    b = buf[pos++];
    if (shift < 35) result += (b & 0x7f) * 2 ** shift;
    else if ((b & 0x7f) !== 0) {
      throw new WireError("varint larger than 32 bits");
    }
    if (b < 0x80) {
      if (result > 0xffffffff) {
        throw new WireError("varint larger than 32 bits");
      }
      return result;
    }
    shift += 7;
  }
  throw new WireError("varint longer than 10 bytes");
}

/** Reads a uint64 varint: a number up to 2^53 - 1, else sets `bigValue` and returns -1. */
function readVarint64(buf: Uint8Array): number {
  let b = buf[pos++];
  if (b < 0x80) return b;
  let lo = b & 0x7f;
  let hi = 0;
  let shift = 7;
  for (let i = 1; i < 10; i++) {
    if (pos >= limit) throw new WireError("truncated varint");
    b = buf[pos++];
    const bits = b & 0x7f;
    if (shift < 28) {
      lo |= bits << shift;
    } else if (shift === 28) {
      lo |= (bits & 0x0f) << 28;
      hi = bits >>> 4;
    } else if (i === 9) {
      if (bits > 1) throw new WireError("varint larger than 64 bits");
      hi |= bits << 31;
    } else {
      hi |= bits << (shift - 32);
    }
    if (b < 0x80) {
      lo >>>= 0;
      hi >>>= 0;
      if (hi < 0x200000) return hi * 0x100000000 + lo;
      bigValue = (BigInt(hi) << 32n) | BigInt(lo);
      return -1;
    }
    shift += 7;
  }
  throw new WireError("varint longer than 10 bytes");
}

/** A uint64 varint field value: a number up to 2^53 - 1, else a bigint. */
function readUint64(buf: Uint8Array): number | bigint {
  if (pos >= limit) throw new WireError("truncated varint");
  const v = readVarint64(buf);
  return v < 0 ? bigValue! : v;
}

function readLength(buf: Uint8Array): number {
  if (pos >= limit) throw new WireError("truncated length");
  const n = readVarint32(buf);
  if (n > limit - pos) {
    throw new WireError(
      `length ${n} runs past the end of the enclosing message (${
        limit - pos
      } bytes left)`,
    );
  }
  return n;
}

const WIRE_NAMES = [
  "varint",
  "fixed64",
  "bytes",
  "start-group",
  "end-group",
  "fixed32",
];

/** Skips one unknown field whose tag was just read. Groups are skipped with a depth limit. */
function skipField(buf: Uint8Array, fieldNo: number, wireType: number): void {
  let depth = 0;
  const groupFields: number[] = [];
  while (true) {
    switch (wireType) {
      case 0:
        if (pos >= limit) throw new WireError("truncated varint");
        readVarint64(buf);
        break;
      case 1:
        if (limit - pos < 8) throw new WireError("truncated fixed64");
        pos += 8;
        break;
      case 2: {
        const n = readLength(buf); // not `pos += readLength()`: that adds to the old pos
        pos += n;
        break;
      }
      case 5:
        if (limit - pos < 4) throw new WireError("truncated fixed32");
        pos += 4;
        break;
      case 3:
        if (++depth > 64) throw new WireError("groups nested deeper than 64");
        groupFields.push(fieldNo);
        break;
      case 4:
        if (groupFields.pop() !== fieldNo) {
          throw new WireError(`unmatched end-group for field ${fieldNo}`);
        }
        depth--;
        break;
      default:
        throw new WireError(
          `invalid wire type ${wireType} for field ${fieldNo}`,
        );
    }
    if (depth === 0) return;
    if (pos >= limit) throw new WireError("unterminated group");
    const tag = readVarint32(buf);
    fieldNo = tag >>> 3;
    wireType = tag & 7;
    if (fieldNo === 0) throw new WireError("field number 0");
  }
}

function expectWireType(
  fieldNo: number,
  wireType: number,
  expected: number,
  fieldName: string,
): void {
  if (wireType !== expected) {
    throw new WireError(
      `field ${fieldNo} (${fieldName}) has wire type ${
        WIRE_NAMES[wireType] ?? wireType
      }, expected ${WIRE_NAMES[expected]}`,
    );
  }
}

const EMPTY = new Uint8Array(0);

/**
 * One KV during {@linkcode forEachKV}: the byte fields as offsets into `body`, so that
 * decoding allocates nothing. The same object is reused for every KV of a call: copy
 * what you keep.
 */
export interface BadgerKVView {
  /** The record body the offsets refer to. */
  body: Uint8Array;
  /** `body.subarray(keyStart, keyEnd)` is the key. */
  keyStart: number;
  /** End (exclusive) of the key in `body`. */
  keyEnd: number;
  /** `body.subarray(valueStart, valueEnd)` is the value (empty when absent). */
  valueStart: number;
  /** End (exclusive) of the value in `body`. */
  valueEnd: number;
  /** As {@linkcode BadgerKV.version}. */
  version: number | bigint;
  /** As {@linkcode BadgerKV.expiresAt}. */
  expiresAt: number | bigint;
  /** As {@linkcode BadgerKV.meta}. */
  meta: number;
  /** As {@linkcode BadgerKV.userMeta}. */
  userMeta: number;
  /** As {@linkcode BadgerKV.streamId}. */
  streamId: number;
  /** As {@linkcode BadgerKV.streamDone}. */
  streamDone: boolean;
}

function decodeKV(buf: Uint8Array, end: number, kv: BadgerKVView): void {
  kv.keyStart =
    kv.keyEnd =
    kv.valueStart =
    kv.valueEnd =
      0;
  kv.version = 0;
  kv.expiresAt = 0;
  kv.meta = 0;
  kv.userMeta = 0;
  kv.streamId = 0;
  kv.streamDone = false;
  const outerLimit = limit;
  limit = end;
  while (pos < end) {
    const tag = readVarint32(buf);
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    switch (fieldNo) {
      case 1: {
        expectWireType(1, wireType, 2, "key");
        const n = readLength(buf);
        kv.keyStart = pos;
        kv.keyEnd = pos += n;
        break;
      }
      case 2: {
        expectWireType(2, wireType, 2, "value");
        const n = readLength(buf);
        kv.valueStart = pos;
        kv.valueEnd = pos += n;
        break;
      }
      case 3: {
        expectWireType(3, wireType, 2, "user_meta");
        const n = readLength(buf);
        kv.userMeta = n > 0 ? buf[pos] : 0;
        pos += n;
        break;
      }
      case 4:
        expectWireType(4, wireType, 0, "version");
        kv.version = readUint64(buf);
        break;
      case 5:
        expectWireType(5, wireType, 0, "expires_at");
        kv.expiresAt = readUint64(buf);
        break;
      case 6: {
        expectWireType(6, wireType, 2, "meta");
        const n = readLength(buf);
        kv.meta = n > 0 ? buf[pos] : 0;
        pos += n;
        break;
      }
      case 10: {
        expectWireType(10, wireType, 0, "stream_id");
        // uint32 on the wire: keep the low 32 bits, as protobuf does.
        kv.streamId = Number(BigInt.asUintN(32, BigInt(readUint64(buf))));
        break;
      }
      case 11:
        expectWireType(11, wireType, 0, "stream_done");
        kv.streamDone = readUint64(buf) !== 0;
        break;
      case 0:
        throw new WireError("field number 0");
      default:
        skipField(buf, fieldNo, wireType);
    }
  }
  limit = outerLimit;
}

/**
 * Decodes one record body (a protobuf `KVList`) and calls `visit` for each KV in order,
 * with one reused {@linkcode BadgerKVView}: nothing is allocated per KV. Unknown fields
 * are skipped; a field of a known number with the wrong wire type, a truncated or
 * overlong varint or length, or field number 0 is an error: {@linkcode StoreError}
 * naming the record's byte offset and the file offset of the bad byte. KVs before a
 * malformed one have already been visited then.
 *
 * @param body The record body (without its length prefix).
 * @param visit Called for every KV; errors it throws propagate unchanged.
 * @param recordOffset The record's offset in the file, for error messages.
 * @param name Name of the source, for error messages.
 * @returns The number of KVs.
 *
 * @example
 * ```ts
 * import { forEachKV } from "./reader.ts";
 * import assert from "node:assert/strict";
 *
 * // KVList { kv: [{ key: "a/1", version: 7 }] }
 * const body = new Uint8Array([0x0a, 0x07, 0x0a, 0x03, 0x61, 0x2f, 0x31, 0x20, 0x07]);
 * const keys: string[] = [];
 * forEachKV(body, (kv) => {
 *   keys.push(new TextDecoder().decode(kv.body.subarray(kv.keyStart, kv.keyEnd)));
 * });
 * assert.deepEqual(keys, ["a/1"]);
 * ```
 */
export function forEachKV(
  body: Uint8Array,
  visit: (kv: BadgerKVView) => void,
  recordOffset = 0,
  name = "Badger backup",
): number {
  const kv: BadgerKVView = {
    body,
    keyStart: 0,
    keyEnd: 0,
    valueStart: 0,
    valueEnd: 0,
    version: 0,
    expiresAt: 0,
    meta: 0,
    userMeta: 0,
    streamId: 0,
    streamDone: false,
  };
  let count = 0;
  pos = 0;
  limit = body.length;
  try {
    while (pos < limit) {
      const tag = readVarint32(body);
      const fieldNo = tag >>> 3;
      const wireType = tag & 7;
      if (fieldNo === 1) {
        expectWireType(1, wireType, 2, "kv");
        const n = readLength(body);
        decodeKV(body, pos + n, kv);
        count++;
        // The cursor is module state: keep it safe from a visitor that decodes too.
        const resume = pos;
        visit(kv);
        pos = resume;
        limit = body.length;
      } else if (fieldNo === 0) {
        throw new WireError("field number 0");
      } else {
        skipField(body, fieldNo, wireType);
      }
    }
  } catch (error) {
    if (!(error instanceof WireError)) throw error;
    throw new StoreError(
      `${name}: record at byte offset ${recordOffset} is not a valid KVList: ` +
        `${error.message} (at byte offset ${
          recordOffset + 8 + Math.min(pos, body.length)
        }); ` +
        "the file is corrupt or not a Badger backup",
    );
  }
  return count;
}

/**
 * Decodes one record body (a protobuf `KVList`). Unknown fields are skipped; a field of a
 * known number with the wrong wire type, a truncated or overlong varint or length, or
 * field number 0 is an error. Throws {@linkcode StoreError} naming the record's byte
 * offset and the file offset of the bad byte.
 *
 * @param body The record body (without its length prefix).
 * @param recordOffset The record's offset in the file, for error messages.
 * @param name Name of the source, for error messages.
 * @returns The KVs in order; their byte fields are views into `body`.
 *
 * @example
 * ```ts
 * import { decodeKVList } from "./reader.ts";
 * import assert from "node:assert/strict";
 *
 * // KVList { kv: [{ key: "a/1", version: 7, meta: [0x01] }] }
 * const body = new Uint8Array([0x0a, 0x0a, 0x0a, 0x03, 0x61, 0x2f, 0x31, 0x20, 0x07, 0x32, 0x01, 0x01]);
 * const [kv] = decodeKVList(body);
 * assert.equal(kv.version, 7);
 * assert.equal(kv.meta & 0x01, 1);
 * ```
 */
export function decodeKVList(
  body: Uint8Array,
  recordOffset = 0,
  name = "Badger backup",
): BadgerKV[] {
  const kvs: BadgerKV[] = [];
  forEachKV(
    body,
    (kv) =>
      kvs.push({
        key: kv.keyEnd > kv.keyStart
          ? body.subarray(kv.keyStart, kv.keyEnd)
          : EMPTY,
        value: kv.valueEnd > kv.valueStart
          ? body.subarray(kv.valueStart, kv.valueEnd)
          : EMPTY,
        version: kv.version,
        expiresAt: kv.expiresAt,
        meta: kv.meta,
        userMeta: kv.userMeta,
        streamId: kv.streamId,
        streamDone: kv.streamDone,
      }),
    recordOffset,
    name,
  );
  return kvs;
}

// ---------------------------------------------------------------------------------------
// Key classification.

/** What a Badger key becomes in protostore. */
export type BadgerKeyClass =
  | { type: "resource"; kind: string; id: string }
  | {
    type: "audit";
    kind: string;
    resourceId: string;
    /** Milliseconds since the epoch: the key's nanoseconds divided by 10^6, truncated. */
    archivedAtMs: number;
  }
  | { type: "badger-internal" }
  | { type: "invalid"; reason: string };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// "!badger!"
const INTERNAL_PREFIX = [0x21, 0x62, 0x61, 0x64, 0x67, 0x65, 0x72, 0x21];

function decodeKey(key: Uint8Array): string | undefined {
  const n = key.length;
  // Short ASCII keys (the usual case) without a TextDecoder call.
  if (n <= 64) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (key[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      return String.fromCharCode.apply(null, key as unknown as number[]);
    }
  }
  try {
    return utf8.decode(key);
  } catch {
    return undefined;
  }
}

/**
 * Classifies a Badger key:
 * - `!badger!…`: Badger's own bookkeeping, `badger-internal`;
 * - not valid UTF-8, no `/`, empty kind or empty id: `invalid` with the reason;
 * - `<kind>/<kind>_audit/<resourceId>/<unixNanos>` (resourceId non-empty, may contain
 *   `/`; unixNanos 1 to 19 ASCII digits): `audit`, archived at the nanoseconds
 *   truncated to the millisecond;
 * - any other `<kind>/<id>`: `resource`.
 *
 * @param key The key bytes.
 * @returns The classification.
 *
 * @example
 * ```ts
 * import { classifyKey } from "./reader.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * assert.deepEqual(classifyKey(bytes("skill/s1")), { type: "resource", kind: "skill", id: "s1" });
 * assert.deepEqual(classifyKey(bytes("skill/skill_audit/s1/1700000000123456789")), {
 *   type: "audit",
 *   kind: "skill",
 *   resourceId: "s1",
 *   archivedAtMs: 1700000000123,
 * });
 * assert.equal(classifyKey(bytes("!badger!head")).type, "badger-internal");
 * assert.equal(classifyKey(bytes("no-slash")).type, "invalid");
 * ```
 */
export function classifyKey(key: Uint8Array): BadgerKeyClass {
  if (key.length >= 8) {
    let internal = true;
    for (let i = 0; i < 8; i++) {
      if (key[i] !== INTERNAL_PREFIX[i]) {
        internal = false;
        break;
      }
    }
    if (internal) return { type: "badger-internal" };
  }
  const text = decodeKey(key);
  if (text === undefined) {
    return { type: "invalid", reason: "key is not valid UTF-8" };
  }
  return classifyKeyText(text);
}

/**
 * {@linkcode classifyKey} for a key already decoded from UTF-8 (no `!badger!` check).
 *
 * @param text The key as text.
 * @returns The classification (never `badger-internal`).
 *
 * @example
 * ```ts
 * import { classifyKeyText } from "./reader.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(classifyKeyText("agent/a/b"), { type: "resource", kind: "agent", id: "a/b" });
 * ```
 */
export function classifyKeyText(text: string): BadgerKeyClass {
  const slash = text.indexOf("/");
  if (slash < 0) {
    return { type: "invalid", reason: "key has no '/' separating kind and id" };
  }
  if (slash === 0) {
    return {
      type: "invalid",
      reason: "key has an empty kind (starts with '/')",
    };
  }
  if (slash === text.length - 1) {
    return {
      type: "invalid",
      reason: "key has an empty id (ends with its first '/')",
    };
  }
  const kind = text.slice(0, slash);
  // rest = "<kind>_audit/<resourceId>/<digits>"
  const auditStart = slash + 1;
  const tailStart = auditStart + kind.length + 7;
  if (
    text.length > tailStart + 2 &&
    text.charCodeAt(tailStart - 1) === 0x2f &&
    text.startsWith("_audit", auditStart + kind.length) &&
    text.startsWith(kind, auditStart)
  ) {
    const lastSlash = text.lastIndexOf("/");
    const digits = text.length - lastSlash - 1;
    if (lastSlash > tailStart && digits >= 1 && digits <= 19) {
      let allDigits = true;
      for (let i = lastSlash + 1; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c < 0x30 || c > 0x39) {
          allDigits = false;
          break;
        }
      }
      if (allDigits) {
        // Integer division by 10^6 on the digit string: exact, no float rounding.
        const archivedAtMs = digits > 6
          ? Number(text.slice(lastSlash + 1, text.length - 6))
          : 0;
        return {
          type: "audit",
          kind,
          resourceId: text.slice(tailStart, lastSlash),
          archivedAtMs,
        };
      }
    }
  }
  return { type: "resource", kind, id: text.slice(slash + 1) };
}
