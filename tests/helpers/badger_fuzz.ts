/**
 * Random and mutated Badger dumps for fuzz tests, built with `badger_writer.ts`.
 *
 * @module
 */
import { concat, encodeBackup } from "./badger_writer.ts";

/** `input` with one to three random edits: bit flips, truncation, inserts, deletes. */
export function mutate(input: Uint8Array, rand: () => number): Uint8Array {
  let out: Uint8Array = input.slice();
  const edits = 1 + (rand() % 4);
  for (let e = 0; e < edits; e++) {
    const at = out.length === 0 ? 0 : rand() % out.length;
    switch (rand() % 6) {
      case 0: // flip a bit
        if (out.length) out[at] ^= 1 << (rand() % 8);
        break;
      case 1: // random byte
        if (out.length) out[at] = rand() & 0xff;
        break;
      case 2: // truncate
        out = out.slice(0, at);
        break;
      case 3: { // insert random bytes
        const extra = new Uint8Array(1 + (rand() % 8)).map(() => rand() & 0xff);
        out = concat([out.subarray(0, at), extra, out.subarray(at)]);
        break;
      }
      case 4: // delete a range
        out = concat([
          out.subarray(0, at),
          out.subarray(at + 1 + (rand() % 8)),
        ]);
        break;
      case 5: // a huge or odd length prefix at the start
        if (out.length >= 8) {
          new DataView(out.buffer, out.byteOffset).setUint32(
            rand() % 5,
            rand(),
            true,
          );
        }
        break;
    }
  }
  return out;
}

/** A dump of 0-3 records of 0-4 random KVs (odd keys, big versions, TTLs, meta). */
export function randomDump(rand: () => number): Uint8Array {
  const records = [];
  const count = rand() % 4;
  for (let r = 0; r < count; r++) {
    const kvs = [];
    const n = rand() % 5;
    for (let i = 0; i < n; i++) {
      kvs.push({
        key: rand() % 10 === 0
          ? new Uint8Array(rand() % 6).map(() => rand() & 0xff)
          : `k${rand() % 3}/id${rand() % 5}`,
        value: new Uint8Array(rand() % 20).map(() => rand() & 0xff),
        version: rand() % 3 === 0
          ? BigInt(rand()) << 32n | BigInt(rand())
          : rand() % 100,
        expiresAt: rand() % 4 === 0 ? rand() : 0,
        meta: rand() % 4,
        userMeta: rand() % 3 === 0 ? null : rand() & 0xff,
        streamId: rand() % 3,
      });
    }
    records.push(kvs);
  }
  return encodeBackup(records);
}
