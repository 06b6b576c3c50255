import assert from "node:assert/strict";
import {
  type BadgerRecord,
  readBadgerBackup,
  readBadgerBackupFile,
} from "../../src/badger/records.ts";
import { type BadgerKV, decodeKVList } from "../../src/badger/kvlist.ts";
import { classifyKey } from "../../src/badger/keys.ts";
import { DecodeError, StoreError } from "../../src/errors.ts";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  chunkedStream,
  concat,
  encodeBackup,
  encodeKV,
  encodeKVList,
  frame,
} from "../helpers/badger_writer.ts";
import { mulberry32 } from "../helpers/prng.ts";
import { fromBinary } from "@bufbuild/protobuf";
import { createFileRegistry } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

const FIXTURES = new URL("../fixtures/badger/", import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;
const text = new TextDecoder();
const decodeBase64 = (b64: string) => Uint8Array.fromBase64(b64);
const bytes = (s: string) => new TextEncoder().encode(s);
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

Deno.test("uint64 versions and expiry times above 2^53 come back as exact bigints", async () => {
  const cases: (number | bigint)[] = [
    0,
    1,
    127,
    128,
    2 ** 31,
    2 ** 32 + 5,
    Number.MAX_SAFE_INTEGER,
    2n ** 53n,
    2n ** 63n - 1n,
    2n ** 63n,
    2n ** 64n - 1n,
  ];
  const [record] = await readAll(
    encodeBackup([
      cases.map((v, i) => ({ key: `k/${i}`, version: v, expiresAt: v })),
    ]),
  );
  assert.deepEqual(record.kvs.map((kv) => kv.version), cases);
  assert.deepEqual(record.kvs.map((kv) => kv.expiresAt), cases);
});

Deno.test("unknown fields and groups are skipped, alloc_ref and stream markers read", () => {
  const extra = new BinaryWriter()
    .tag(7, WireType.Varint).uint32(300)
    .tag(8, WireType.Bit64).fixed64(0)
    .tag(9, WireType.Bit32).fixed32(0)
    .tag(12, WireType.LengthDelimited).bytes(bytes("unknown"))
    .tag(13, WireType.StartGroup) // a group with a nested group and a field
    .tag(14, WireType.StartGroup)
    .tag(1, WireType.Varint).uint32(5)
    .tag(14, WireType.EndGroup)
    .tag(13, WireType.EndGroup)
    .finish();
  const allocRef = new BinaryWriter().tag(10, WireType.Varint).uint32(12345);
  const body = encodeKVList(
    [
      { key: "a/1", value: "x", version: 3, extra },
      {
        key: "",
        version: 0,
        streamId: 7,
        streamDone: true,
        meta: null,
        userMeta: null,
      },
    ],
    concat([allocRef.finish(), extra]),
  );
  const kvs = decodeKVList(body);
  assert.equal(kvs.length, 2);
  assert.equal(text.decode(kvs[0].key), "a/1");
  assert.equal(text.decode(kvs[0].value), "x");
  assert.equal(kvs[0].version, 3);
  assert.deepEqual(
    {
      streamId: kvs[1].streamId,
      streamDone: kvs[1].streamDone,
      meta: kvs[1].meta,
    },
    { streamId: 7, streamDone: true, meta: 0 },
  );
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

Deno.test("keys are classified as resource, audit, badger-internal or invalid", () => {
  const cases: [string | Uint8Array, ReturnType<typeof classifyKey>][] = [
    ["skill/s1", { type: "resource", kind: "skill", id: "s1" }],
    ["skill/a/b/c", { type: "resource", kind: "skill", id: "a/b/c" }],
    [
      "skill/skill_audit/s1/1700000300123456789",
      {
        type: "audit",
        kind: "skill",
        resourceId: "s1",
        archivedAtMs: 1700000300123,
      },
    ],
    [
      "skill/skill_audit/a/b/12/1700000000999999999",
      {
        type: "audit",
        kind: "skill",
        resourceId: "a/b/12",
        archivedAtMs: 1700000000999,
      },
    ],
    ["skill/skill_audit/s1/999999", {
      type: "audit",
      kind: "skill",
      resourceId: "s1",
      archivedAtMs: 0,
    }],
    ["skill/skill_audit/s1/9999999999999999999", {
      type: "audit",
      kind: "skill",
      resourceId: "s1",
      archivedAtMs: 9999999999999,
    }],
    // Not audits: 20 digits, non-digit tail, empty resource id, too few segments, other
    // kind's audit prefix, `_` not a wildcard.
    ["skill/skill_audit/s1/12345678901234567890", {
      type: "resource",
      kind: "skill",
      id: "skill_audit/s1/12345678901234567890",
    }],
    ["skill/skill_audit/s1/12a", {
      type: "resource",
      kind: "skill",
      id: "skill_audit/s1/12a",
    }],
    ["skill/skill_audit/s1/", {
      type: "resource",
      kind: "skill",
      id: "skill_audit/s1/",
    }],
    ["skill/skill_audit//123", {
      type: "resource",
      kind: "skill",
      id: "skill_audit//123",
    }],
    ["skill/skill_audit/123", {
      type: "resource",
      kind: "skill",
      id: "skill_audit/123",
    }],
    ["skill/agent_audit/a1/123", {
      type: "resource",
      kind: "skill",
      id: "agent_audit/a1/123",
    }],
    ["skill/skillxaudit/s1/123", {
      type: "resource",
      kind: "skill",
      id: "skillxaudit/s1/123",
    }],
    ["x/xaudit/s1/123", { type: "resource", kind: "x", id: "xaudit/s1/123" }],
    ["!badger!head", { type: "badger-internal" }],
    ["!badger!", { type: "badger-internal" }],
    ["!badger", {
      type: "invalid",
      reason: "key has no '/' separating kind and id",
    }],
    ["noslash", {
      type: "invalid",
      reason: "key has no '/' separating kind and id",
    }],
    ["", { type: "invalid", reason: "key has no '/' separating kind and id" }],
    ["/id", {
      type: "invalid",
      reason: "key has an empty kind (starts with '/')",
    }],
    ["kind/", {
      type: "invalid",
      reason: "key has an empty id (ends with its first '/')",
    }],
    [new Uint8Array([0x61, 0x2f, 0xff]), {
      type: "invalid",
      reason: "key is not valid UTF-8",
    }],
    [new Uint8Array([0x61, 0x2f, 0xc3]), {
      type: "invalid",
      reason: "key is not valid UTF-8",
    }],
    [
      new Uint8Array([0x61, 0x2f, 0xed, 0xa0, 0x80]), // an encoded surrogate
      { type: "invalid", reason: "key is not valid UTF-8" },
    ],
    ["\uFEFFkind/id", { type: "resource", kind: "\uFEFFkind", id: "id" }],
    ["grüße/ünï\u0000cødé", {
      type: "resource",
      kind: "grüße",
      id: "ünï\u0000cødé",
    }],
    [
      `k/${"é".repeat(40)}`, // longer than the ASCII fast path
      { type: "resource", kind: "k", id: "é".repeat(40) },
    ],
    [`k/${"x".repeat(100)}`, {
      type: "resource",
      kind: "k",
      id: "x".repeat(100),
    }],
  ];
  for (const [key, expected] of cases) {
    const raw = typeof key === "string" ? bytes(key) : key;
    assert.deepEqual(classifyKey(raw), expected, hex(raw));
  }
});

function mutate(input: Uint8Array, rand: () => number): Uint8Array {
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

function randomDump(rand: () => number): Uint8Array {
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

Deno.test("fuzz: classifyKey accepts any bytes", () => {
  const rand = mulberry32(7);
  for (let i = 0; i < 20_000; i++) {
    const key = new Uint8Array(rand() % 80).map(() =>
      rand() % 3 === 0
        ? 0x2f
        : rand() % 2
        ? 0x30 + (rand() % 10)
        : rand() & 0xff
    );
    const result = classifyKey(key);
    assert.ok(
      ["resource", "audit", "badger-internal", "invalid"].includes(result.type),
    );
  }
});

Deno.test("encodeKV output decodes back to the same fields", () => {
  const kv = encodeKV({
    key: "a/b",
    value: "v",
    version: 9n,
    expiresAt: 10,
    meta: 0x42,
    userMeta: 3,
    streamId: 4,
  });
  const list = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(kv)
    .finish();
  const [decoded] = decodeKVList(list);
  assert.deepEqual(
    {
      ...decoded,
      key: text.decode(decoded.key),
      value: text.decode(decoded.value),
    },
    {
      key: "a/b",
      value: "v",
      version: 9,
      expiresAt: 10,
      meta: 0x42,
      userMeta: 3,
      streamId: 4,
      streamDone: false,
    },
  );
});

/**
 * Badger's `KVList` (badger/pb/badgerpb4.proto), built at runtime from a descriptor so
 * that protobuf-es's own decoder can serve as an independent oracle.
 */
function kvListSchema() {
  const { BYTES, UINT64, UINT32, BOOL, MESSAGE } = FieldDescriptorProto_Type;
  const optional = FieldDescriptorProto_Label.OPTIONAL;
  const field = (
    name: string,
    number: number,
    type: FieldDescriptorProto_Type,
  ) => ({
    name,
    number,
    type,
    label: optional,
    jsonName: name,
  });
  const file = create(FileDescriptorProtoSchema, {
    name: "badgerpb4.proto",
    package: "badgerpb4",
    syntax: "proto3",
    messageType: [
      {
        name: "KV",
        field: [
          field("key", 1, BYTES),
          field("value", 2, BYTES),
          field("user_meta", 3, BYTES),
          field("version", 4, UINT64),
          field("expires_at", 5, UINT64),
          field("meta", 6, BYTES),
          field("stream_id", 10, UINT32),
          field("stream_done", 11, BOOL),
        ],
      },
      {
        name: "KVList",
        field: [{
          ...field("kv", 1, MESSAGE),
          label: FieldDescriptorProto_Label.REPEATED,
          typeName: ".badgerpb4.KV",
        }],
      },
    ],
  });
  return createFileRegistry(file, () => undefined).getMessage(
    "badgerpb4.KVList",
  )!;
}

Deno.test("fuzz: the KVList decoder agrees with protobuf-es fromBinary on 20,000 bodies", () => {
  const KVList = kvListSchema();
  const rand = mulberry32(20260310);
  let agreed = 0;
  let bothRejected = 0;
  let stricter = 0;
  for (let i = 0; i < 20_000; i++) {
    const dump = randomDump(rand);
    // The bodies of a random dump, some mutated: strip the 8-byte prefixes.
    let body = dump.length > 8 ? dump.subarray(8) : new Uint8Array(0);
    if (rand() % 2) body = mutate(body, rand);
    let ours: BadgerKV[] | DecodeError;
    try {
      ours = decodeKVList(body);
    } catch (error) {
      assert.ok(error instanceof DecodeError, String(error));
      ours = error;
    }
    let theirs;
    try {
      theirs = fromBinary(KVList, body);
    } catch {
      theirs = undefined;
    }
    if (ours instanceof DecodeError) {
      // Stricter than protobuf-es is allowed (a varint over 64 bits, a group deeper
      // than 64); the reverse is not.
      if (theirs === undefined) bothRejected++;
      else stricter++;
      continue;
    }
    assert.ok(
      theirs !== undefined,
      `case ${i} (${hex(body)}): only fromBinary fails`,
    );
    const kvs = (theirs as unknown as { kv: Record<string, unknown>[] }).kv;
    assert.deepEqual(
      ours.map((kv) => ({
        key: hex(kv.key),
        value: hex(kv.value),
        version: BigInt(kv.version),
        expiresAt: BigInt(kv.expiresAt),
        meta: kv.meta,
        userMeta: kv.userMeta,
        streamId: kv.streamId,
        streamDone: kv.streamDone,
      })),
      kvs.map((kv) => ({
        key: hex(kv.key as Uint8Array),
        value: hex(kv.value as Uint8Array),
        version: kv.version,
        expiresAt: kv.expiresAt,
        meta: (kv.meta as Uint8Array)[0] ?? 0,
        userMeta: (kv.userMeta as Uint8Array)[0] ?? 0,
        streamId: kv.streamId,
        streamDone: kv.streamDone,
      })),
      `case ${i} (${hex(body)})`,
    );
    agreed++;
  }
  // Both outcomes must be well represented for the comparison to mean anything.
  assert.ok(agreed > 5000, `agreed ${agreed}`);
  assert.ok(bothRejected > 2000, `both rejected ${bothRejected}`);
  assert.ok(stricter < bothRejected / 10, `stricter ${stricter}`);
});
