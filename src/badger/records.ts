/**
 * Reading a Badger backup record by record, each decoded into {@linkcode BadgerKV}
 * objects: the framing of `framing.ts` plus the decoding of `kvlist.ts`. The importer
 * uses the two layers directly (no per-KV objects); this is the convenient form.
 *
 * @module
 */
import { type BadgerKV, decodeKVList } from "./kvlist.ts";
import {
  openBadgerBackup,
  type ReadBadgerOptions,
  readBadgerRecordBodies,
} from "./framing.ts";

/** One length-prefixed record of a Badger backup. */
export interface BadgerRecord {
  /** Byte offset of the record's 8-byte length prefix in the file. */
  offset: number;
  /** Length of the protobuf body (without the 8-byte prefix). */
  length: number;
  /** The decoded key versions, in file order. */
  kvs: BadgerKV[];
}

/**
 * Reads a Badger backup stream record by record. Each record is decoded completely
 * before it is yielded, so a corrupt record is an error before any of its KVs is seen.
 * Throws `DecodeError` on a truncated length prefix, a record longer than the maximum
 * or than the rest of the input (`offset`: the record's), or a body that is not a
 * valid `KVList` (`offset`: the bad byte's). Breaking out of the loop cancels the stream.
 *
 * @param source The backup bytes, e.g. `(await Deno.open(path)).readable`.
 * @param options Name for messages, total size, maximum record size, progress callback.
 * @returns An async generator of records.
 *
 * @example Count the KVs of a backup
 * ```ts
 * import { readBadgerBackup } from "./records.ts";
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
 * import assert from "node:assert/strict";
 * import { readBadgerBackupFile } from "./records.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".bak" });
 * const records = [];
 * for await (const record of readBadgerBackupFile(path)) records.push(record);
 * assert.equal(records.length, 0); // an empty dump has no records
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
