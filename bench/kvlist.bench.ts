/**
 * `deno bench` suite for the KVList decoder (`src/badger/kvlist.ts`): one record body of
 * 5,000 small KVs (Badger's usual shape: short keys, ~100-byte values, versions of a few
 * bytes) and one of 200 KVs with 4 KiB values, decoded without per-KV objects.
 *
 * @module
 */
import { forEachKV } from "../src/badger/kvlist.ts";
import { encodeKVList } from "../tests/helpers/badger_writer.ts";

const value = new Uint8Array(100).fill(7);
const small = encodeKVList(
  Array.from({ length: 5000 }, (_, i) => ({
    key: `skill/s-${i}`,
    value,
    version: 1_000_000 + i,
    meta: i % 50 === 0 ? 1 : 0,
  })),
);
const bigValue = new Uint8Array(4096).fill(9);
const big = encodeKVList(
  Array.from({ length: 200 }, (_, i) => ({
    key: `agent/a-${i}`,
    value: bigValue,
    version: 70_000 + i,
  })),
);

let sink = 0;
const visit = (kv: { keyEnd: number; version: number | bigint }) => {
  sink += kv.keyEnd;
};
Deno.bench({
  name: "forEachKV: 5,000 KVs of 100 bytes",
  group: "small",
  fn() {
    forEachKV(small, visit);
  },
});
Deno.bench({
  name: "forEachKV: 200 KVs of 4 KiB",
  group: "big",
  fn() {
    forEachKV(big, visit);
  },
});
globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
