/**
 * The framing of a `badger backup` stream (BadgerDB v2, v3 and v4 write the same bytes):
 * a sequence of records, each an 8-byte little-endian length and that many bytes of a
 * protobuf `KVList` (decoded by `kvlist.ts`). Also opens a backup file as a stream.
 * Memory stays bounded by the largest record, never the file.
 *
 * @module
 */
import { DecodeError, messageOf, StoreError } from "../errors.ts";

/** Largest record accepted by default (1 GiB); Badger writes records of a few MiB. */
export const MAX_RECORD_BYTES = 1024 * 1024 * 1024;

const EMPTY = new Uint8Array(0);
/** Options of {@linkcode readBadgerRecordBodies} (and `readBadgerBackup`). */
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
 * Yields each record's offset and undecoded body, for decoding with `forEachKV` without
 * per-KV objects. A truncated length prefix, a record longer than the maximum or than
 * the rest of the input is a {@linkcode DecodeError} whose `offset` is the record's
 * offset (of its length prefix); the body is not checked. Breaking out of the loop
 * cancels the stream. The body is a view into the stream's chunk when it lies in one.
 *
 * @param source The backup bytes.
 * @param options Name for messages, total size, maximum record size, progress callback.
 * @returns An async generator of record bodies.
 *
 * @example
 * ```ts
 * import { readBadgerRecordBodies } from "./framing.ts";
 * import { forEachKV } from "./kvlist.ts";
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
        throw new DecodeError(
          `${name}: truncated record length (${buffered} of 8 bytes before the end of ` +
            "the input; the backup is incomplete, take it again with `badger backup`)",
          offset,
        );
      }
      const prefix = take(8);
      const length = (prefix[0] | (prefix[1] << 8) | (prefix[2] << 16)) +
        prefix[3] * 0x1000000 +
        (prefix[4] | (prefix[5] << 8) | (prefix[6] << 16)) * 0x100000000 +
        prefix[7] * 0x100000000000000;
      if (length > maxRecordBytes) {
        throw new DecodeError(
          `${name}: record declares ${length} bytes, more than the maximum of ` +
            `${maxRecordBytes} (the file is corrupt or not a Badger backup)`,
          offset,
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
): DecodeError {
  const left = Math.max(remaining, 0);
  return new DecodeError(
    `${name}: record declares ${length} bytes but only ${left} follow before the end ` +
      "of the input (the backup is truncated, take it again with `badger backup`)",
    offset,
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
 * Opens a backup file for `readBadgerRecordBodies`: a stream of its bytes and its
 * size. Throws {@linkcode StoreError} naming the path when it cannot be opened.
 *
 * @param path The file written by `badger backup -f`.
 * @returns The stream and the file size.
 *
 * @example
 * ```ts
 * import { openBadgerBackup } from "./framing.ts";
 * import { readBadgerBackup } from "./records.ts";
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
