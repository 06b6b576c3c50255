import assert from "node:assert/strict";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { type BadgerKV, decodeKVList } from "../../src/badger/kvlist.ts";
import { DecodeError } from "../../src/errors.ts";
import { concat, encodeKV, encodeKVList } from "../helpers/badger_writer.ts";
import { mutate, randomDump } from "../helpers/badger_fuzz.ts";
import { mulberry32 } from "../helpers/prng.ts";

const text = new TextDecoder();
const bytes = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("uint64 versions and expiry times above 2^53 come back as exact bigints", () => {
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
  const kvs = decodeKVList(
    encodeKVList(
      cases.map((v, i) => ({ key: `k/${i}`, version: v, expiresAt: v })),
    ),
  );
  assert.deepEqual(kvs.map((kv) => kv.version), cases);
  assert.deepEqual(kvs.map((kv) => kv.expiresAt), cases);
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
