import assert from "node:assert/strict";
import {
  type BadgerRecord,
  readBadgerBackup,
  readBadgerBackupFile,
} from "../../src/badger/records.ts";
import type { BadgerKV } from "../../src/badger/kvlist.ts";
import { classifyKey } from "../../src/badger/keys.ts";
import { DecodeError, StoreError } from "../../src/errors.ts";
import {
  chunkedStream,
  concat,
  encodeBackup,
  encodeKVList,
  frame,
} from "../helpers/badger_writer.ts";
import { mutate, randomDump } from "../helpers/badger_fuzz.ts";
import { mulberry32 } from "../helpers/prng.ts";

const FIXTURES = new URL("../fixtures/badger/", import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;
const text = new TextDecoder();
const decodeBase64 = (b64: string) => Uint8Array.fromBase64(b64);
const hex = (b: Uint8Array) =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

async function readAll(
  source: Uint8Array | ReadableStream<Uint8Array>,
): Promise<BadgerRecord[]> {
  const stream = source instanceof Uint8Array
    ? ReadableStream.from([source])
    : source;
  const records: BadgerRecord[] = [];
  for await (const record of readBadgerBackup(stream)) records.push(record);
  return records;
}

/** Reads `input` expecting a DecodeError; returns it. */
async function readError(
  input: Uint8Array,
  maxRecordBytes?: number,
): Promise<DecodeError> {
  try {
    for await (
      const _ of readBadgerBackup(ReadableStream.from([input]), {
        maxRecordBytes,
      })
    ) {
      // drain
    }
  } catch (error) {
    assert.ok(error instanceof DecodeError, `not a DecodeError: ${error}`);
    return error;
  }
  assert.fail("expected a DecodeError");
}

interface DumpKV {
  key: string;
  value_b64: string | null;
  user_meta_hex: string;
  version: number;
  expires_at: number;
  meta_hex: string;
  stream_id: number;
}

Deno.test("the reader yields exactly the records and KVs of backup-dump.json", async () => {
  const dump = JSON.parse(
    await Deno.readTextFile(fixture("backup-dump.json")),
  ) as { records: { offset: number; length: number; kvs: DumpKV[] }[] };
  const records: BadgerRecord[] = [];
  for await (const record of readBadgerBackupFile(fixture("backup.bak"))) {
    records.push(record);
  }
  assert.equal(records.length, dump.records.length);
  for (const [i, expected] of dump.records.entries()) {
    const record = records[i];
    assert.equal(record.offset, expected.offset);
    assert.equal(record.length, expected.length);
    assert.deepEqual(
      record.kvs.map((kv) => ({
        key: text.decode(kv.key),
        value_b64: kv.value.length === 0 ? null : kv.value,
        user_meta: kv.userMeta,
        version: kv.version,
        expires_at: kv.expiresAt,
        meta: kv.meta,
        stream_id: kv.streamId,
        stream_done: kv.streamDone,
      })),
      expected.kvs.map((kv) => ({
        key: kv.key,
        value_b64: kv.value_b64 === null ? null : decodeBase64(kv.value_b64),
        user_meta: kv.user_meta_hex === "" ? 0 : parseInt(kv.user_meta_hex, 16),
        version: kv.version,
        expires_at: kv.expires_at,
        meta: parseInt(kv.meta_hex, 16),
        stream_id: kv.stream_id,
        stream_done: false,
      })),
    );
  }
});

Deno.test("badger-cli-backup.bak holds the manifest's live versions, newest first", async () => {
  const manifest = JSON.parse(
    await Deno.readTextFile(fixture("manifest.json")),
  ) as {
    live: {
      key: string;
      value_b64: string;
      version: number;
      expires_at: number;
    }[];
  };
  const newest = new Map<string, BadgerKV>();
  for await (
    const record of readBadgerBackupFile(fixture("badger-cli-backup.bak"))
  ) {
    for (const kv of record.kvs) {
      const key = text.decode(kv.key);
      if (!newest.has(key)) newest.set(key, kv);
    }
  }
  for (const live of manifest.live) {
    const kv = newest.get(live.key);
    assert.ok(kv, live.key);
    assert.equal(kv.version, live.version);
    assert.equal(kv.expiresAt, live.expires_at);
    assert.equal(kv.meta & 1, 0);
    assert.deepEqual(kv.value, decodeBase64(live.value_b64));
  }
});

Deno.test("records straddling stream chunks of any size decode the same", async () => {
  const file = await Deno.readFile(fixture("backup.bak"));
  const two = concat([file, file]);
  const expected = await readAll(two);
  for (const size of [1, 3, 8, 9, 100, 4097]) {
    assert.deepEqual(
      await readAll(chunkedStream(two, size)),
      expected,
      `chunk ${size}`,
    );
  }
});

Deno.test("an empty input has no records", async () => {
  assert.deepEqual(await readAll(new Uint8Array(0)), []);
  assert.deepEqual(await readAll(frame(new Uint8Array(0))), [
    { offset: 0, length: 0, kvs: [] },
  ]);
});

Deno.test("a truncated length prefix is an error naming its byte offset", async () => {
  const good = encodeBackup([[{ key: "a/1", value: "x", version: 1 }]]);
  const error = await readError(concat([good, new Uint8Array([5, 0, 0])]));
  assert.equal(error.offset, good.length);
  assert.match(error.message, /truncated record length/);
});

Deno.test("a record running past the end of the input is an error naming its offset", async () => {
  const good = encodeBackup([[{ key: "a/1", value: "x", version: 1 }]]);
  const second = frame(encodeKVList([{ key: "a/2", value: "y", version: 2 }]));
  const error = await readError(
    concat([good, second.subarray(0, second.length - 1)]),
  );
  assert.equal(error.offset, good.length);
  assert.match(error.message, /truncated/);
});

Deno.test("a length above the maximum fails before anything is buffered", async () => {
  const header = frame(new Uint8Array(0), 2n ** 40n);
  let pulls = 0;
  // An endless source: the length must be rejected from the prefix alone.
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(pulls++ === 0 ? header : new Uint8Array(1024));
    },
  });
  await assert.rejects(
    async () => {
      for await (const _ of readBadgerBackup(endless)) {
        // drain
      }
    },
    (error: Error) =>
      error instanceof DecodeError && error.offset === 0 &&
      /declares 1099511627776 bytes, more than the maximum/.test(error.message),
  );
  assert.ok(pulls <= 2);
  assert.match(
    (await readError(frame(new Uint8Array(100)), 99)).message,
    /more than the maximum of 99/,
  );
});

Deno.test("a known length with a record past the end fails without reading it", async () => {
  const path = await Deno.makeTempFile({ suffix: ".bak" });
  try {
    await Deno.writeFile(path, frame(new Uint8Array(10), 1_000_000));
    await assert.rejects(
      async () => {
        for await (const _ of readBadgerBackupFile(path)) {
          // drain
        }
      },
      (error: Error) =>
        error instanceof DecodeError && error.offset === 0 &&
        error.message.startsWith(
          `${path}: record declares 1000000 bytes but only 10 follow`,
        ),
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("malformed protobuf is a DecodeError at the offset of the bad byte", async () => {
  const first = encodeBackup([[{ key: "a/1", value: "x", version: 1 }]]);
  // [what the message says, body, offset of the bad byte in the body]
  const cases: [string, number[], number][] = [
    ["wire type varint, expected bytes", [0x08, 0x01], 1], // field 1 as varint
    ["truncated varint", [0x0a, 0x03, 0x20, 0x80, 0x80], 5], // version cut short
    ["varint longer than 10 bytes", [
      0x0a,
      0x0c,
      0x20,
      ...Array(10).fill(0x80),
      0x01,
    ], 13],
    ["varint larger than 64 bits", [
      0x0a,
      0x0b,
      0x20,
      ...Array(9).fill(0xff),
      0x02,
    ], 12],
    ["runs past the end", [0x0a, 0x05, 0x0a, 0x09, 0x61], 2], // KV of 5 bytes in 3
    ["runs past the end", [0x0a, 0x03, 0x0a, 0x09, 0x61], 4], // key of 9 bytes in a KV of 3
    ["runs past the end", [0x0a, 0x7f], 2], // KV length past the record
    ["varint larger than 32 bits", [0x0a, 0x80, 0x80, 0x80, 0x80, 0x10], 5],
    ["field number 0", [0x00], 1],
    ["invalid wire type 7 for field 2", [0x17], 1],
    ["field 1 \\(kv\\) has wire type 7", [0x0f], 1],
    ["unmatched end-group", [0x1b, 0x24], 2], // group 3 closed as 4
    ["unterminated group", [0x1b], 1],
    ["wire type bytes, expected varint", [0x0a, 0x02, 0x22, 0x00], 3], // version as bytes
  ];
  for (const [what, body, at] of cases) {
    const error = await readError(concat([first, frame(new Uint8Array(body))]));
    assert.equal(
      error.offset,
      first.length + 8 + at,
      `${what}: ${error.message}`,
    );
    assert.match(error.message, new RegExp(what), what);
  }
});

Deno.test("breaking out of the loop cancels the source stream", async () => {
  let cancelled = false;
  const data = encodeBackup([[{ key: "a/1", version: 1 }], [{
    key: "a/2",
    version: 2,
  }]]);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(data);
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const _ of readBadgerBackup(stream)) break;
  assert.ok(cancelled);
});

Deno.test("fuzz: 12,000 random and mutated dumps only ever throw StoreError", async () => {
  const rand = mulberry32(20260125);
  const seeds = [await Deno.readFile(fixture("backup.bak"))];
  let errors = 0;
  let records = 0;
  for (let i = 0; i < 12_000; i++) {
    let input: Uint8Array;
    const pick = rand() % 10;
    if (pick === 0) {
      input = new Uint8Array(rand() % 64).map(() => rand() & 0xff);
    } else if (pick < 4) input = randomDump(rand);
    else if (pick < 6) input = mutate(seeds[0], rand);
    else input = mutate(randomDump(rand), rand);
    try {
      const stream = i % 2
        ? chunkedStream(input, 1 + (rand() % 16))
        : ReadableStream.from([
          input,
        ]);
      for await (
        const record of readBadgerBackup(stream, { maxRecordBytes: 1 << 20 })
      ) {
        records++;
        for (const kv of record.kvs) classifyKey(kv.key);
      }
    } catch (error) {
      if (!(error instanceof StoreError)) {
        throw new Error(`case ${i} (${hex(input)}) threw a non-StoreError`, {
          cause: error,
        });
      }
      assert.ok(error instanceof DecodeError, String(error));
      assert.ok(error.offset >= 0 && error.offset <= input.length);
      errors++;
    }
  }
  // Both outcomes must be well represented for the fuzzing to mean anything.
  assert.ok(errors > 3000, `errors ${errors}`);
  assert.ok(records > 5000, `records ${records}`);
});
