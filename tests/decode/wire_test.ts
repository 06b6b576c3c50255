import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { DecodeError, StoreError } from "../../src/errors.ts";
import { cases } from "../helpers/reliability_common.ts";
import { Rng } from "../helpers/prng.ts";
import {
  decodeWire,
  DEFAULT_WIRE_MAX_DEPTH,
  DEFAULT_WIRE_MAX_FIELDS,
  MAX_WIRE_MAX_DEPTH,
  type WireField,
  type WireJsonField,
  wireToJson,
} from "../../src/decode/wire.ts";
import {
  LimitsSchema,
  SkillSchema,
  Visibility,
} from "../fixtures/gen/example/v1/example_pb.ts";

const encoder = new TextEncoder();

function bytes(...parts: (number | number[] | Uint8Array | string)[]) {
  const out: number[] = [];
  for (const part of parts) {
    if (typeof part === "number") out.push(part);
    else if (typeof part === "string") out.push(...encoder.encode(part));
    else out.push(...part);
  }
  return new Uint8Array(out);
}

/** The bytes of a uint64 varint, as protobuf-es writes them. */
function varint(value: bigint | number): number[] {
  return [...new BinaryWriter().uint64(value).finish()];
}

/** A length-delimited field: tag, length, contents. */
function lenField(field: number, contents: Uint8Array): Uint8Array {
  return new BinaryWriter().tag(field, WireType.LengthDelimited).bytes(contents)
    .finish();
}

function sampleSkill() {
  return create(SkillSchema, {
    name: "summarise",
    versionHash: "abc123",
    tools: ["search", "fetch"],
    labels: { "team": "core", "a.b": "dotted" },
    visibility: Visibility.PUBLIC,
    createdAt: timestampFromDate(new Date("2026-01-25T10:00:00.000Z")),
    limits: { maxTokens: 4096, temperature: 0.25, timeoutMs: -1n },
    payload: new Uint8Array([0xff, 0x00, 0x10, 0x80]),
  });
}

function expectWireError(input: Uint8Array, offset: number, detail: RegExp) {
  assert.throws(() => decodeWire(input), (error: unknown) => {
    assert.ok(error instanceof DecodeError, `not a DecodeError: ${error}`);
    assert.equal(error.offset, offset);
    assert.match(error.message, detail);
    return true;
  });
}

Deno.test("a Skill dumps with nested messages, strings and bytes", () => {
  const json = wireToJson(decodeWire(toBinary(SkillSchema, sampleSkill())));
  assert.deepEqual(json, [
    { field: 1, wireType: "len", string: "summarise" },
    { field: 2, wireType: "len", string: "abc123" },
    { field: 5, wireType: "len", string: "search" },
    { field: 5, wireType: "len", string: "fetch" },
    {
      field: 6,
      wireType: "len",
      message: [
        { field: 1, wireType: "len", string: "team" },
        { field: 2, wireType: "len", string: "core" },
      ],
    },
    {
      field: 6,
      wireType: "len",
      message: [
        { field: 1, wireType: "len", string: "a.b" },
        { field: 2, wireType: "len", string: "dotted" },
      ],
    },
    { field: 7, wireType: "varint", value: "2", zigzag: "1" },
    {
      field: 8,
      wireType: "len",
      message: [{
        field: 1,
        wireType: "varint",
        value: "1769335200",
        zigzag: "884667600",
      }],
    },
    {
      field: 9,
      wireType: "len",
      message: [
        { field: 1, wireType: "varint", value: "4096", zigzag: "2048" },
        {
          field: 2,
          wireType: "i64",
          hex: "0x3fd0000000000000",
          value: "4598175219545276416",
          double: 0.25,
        },
        {
          field: 3,
          wireType: "varint",
          value: "18446744073709551615",
          signed: "-1",
          zigzag: "-9223372036854775808",
        },
      ],
    },
    { field: 10, wireType: "len", bytes: "/wAQgA==" },
  ]);
});

Deno.test("offsets of nested fields count from the start of the input", () => {
  const limits = toBinary(LimitsSchema, create(LimitsSchema, { maxTokens: 7 }));
  const input = bytes(0x08, 0x01, lenField(9, limits));
  const fields = decodeWire(input);
  assert.equal(fields[1].offset, 2);
  const nested = fields[1];
  assert.ok(nested.wireType === "len" && "message" in nested);
  assert.equal(nested.length, 2);
  assert.equal(nested.message[0].offset, 4);
  assert.deepEqual(wireToJson(fields, { positions: true })[1], {
    field: 9,
    wireType: "len",
    offset: 2,
    length: 2,
    message: [{
      field: 1,
      wireType: "varint",
      offset: 4,
      value: "7",
      zigzag: "-4",
    }],
  });
});

Deno.test("length-delimited contents show as text, bytes or message by what they hold", () => {
  const cases: [Uint8Array, WireJsonField][] = [
    [encoder.encode("grüße, 世界"), {
      field: 1,
      wireType: "len",
      string: "grüße, 世界",
    }],
    [encoder.encode("tab\tnew\nline\r"), {
      field: 1,
      wireType: "len",
      string: "tab\tnew\nline\r",
    }],
    [new Uint8Array(), { field: 1, wireType: "len", string: "" }],
    // short text that also parses as numeric fields ("hi" = field 13, varint 105)
    [encoder.encode("hi"), { field: 1, wireType: "len", string: "hi" }],
    [encoder.encode("abcdefghi"), {
      field: 1,
      wireType: "len",
      string: "abcdefghi",
    }],
    // control characters, DEL, C1 controls and invalid UTF-8 are not text
    [encoder.encode("\x1b[31m"), {
      field: 1,
      wireType: "len",
      bytes: "G1szMW0=",
    }],
    [encoder.encode("a\x7f"), { field: 1, wireType: "len", bytes: "YX8=" }],
    [encoder.encode("a\u009b"), { field: 1, wireType: "len", bytes: "YcKb" }],
    [new Uint8Array([0xc3, 0x28]), {
      field: 1,
      wireType: "len",
      bytes: "wyg=",
    }],
  ];
  for (const [contents, expected] of cases) {
    assert.deepEqual(
      wireToJson(decodeWire(lenField(1, contents)))[0],
      expected,
      `contents ${JSON.stringify([...contents])}`,
    );
  }
});

Deno.test("bytes that parse completely as a message are shown as one, even when printable", () => {
  // field 1 = a 40-character string: every byte is printable, but the tag and length
  // make a message with a length-delimited field, which is the likelier reading
  const inner = lenField(1, encoder.encode("x".repeat(40)));
  assert.ok([...inner].every((b) => b >= 0x0a && b < 0x7f));
  const [field] = decodeWire(lenField(3, inner));
  assert.ok(field.wireType === "len" && "message" in field);
  assert.deepEqual(wireToJson(field.message), [
    { field: 1, wireType: "len", string: "x".repeat(40) },
  ]);
});

Deno.test("bytes that only partly parse as a message, or use reserved field numbers, stay bytes", () => {
  // a valid varint field followed by a truncated one
  const partial = bytes(0x08, 0x01, 0x10);
  const reserved = bytes(varint((19500 << 3) | 0), 0x01);
  for (const contents of [partial, reserved]) {
    const [field] = decodeWire(lenField(2, contents));
    assert.ok(field.wireType === "len" && "bytes" in field);
    assert.deepEqual([...field.bytes], [...contents]);
  }
  // at the top level the reserved range is still well-formed wire data
  assert.equal(decodeWire(reserved)[0].field, 19500);
});

Deno.test("varint, i64 and i32 values are shown unsigned, signed, zigzag and as floats", () => {
  const input = bytes(
    0x08,
    varint(2n ** 64n - 2n), // field 1
    0x10,
    varint(2n ** 53n + 1n), // field 2
    0x19, // field 3, i64: -2 as sfixed64
    [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    0x25, // field 4, i32: 1.5f
    [0x00, 0x00, 0xc0, 0x3f],
    0x2d, // field 5, i32: 0xffffffff (a NaN as float)
    [0xff, 0xff, 0xff, 0xff],
    0x31, // field 6, i64: +Infinity
    [0, 0, 0, 0, 0, 0, 0xf0, 0x7f],
  );
  assert.deepEqual(wireToJson(decodeWire(input)), [
    {
      field: 1,
      wireType: "varint",
      value: "18446744073709551614",
      signed: "-2",
      zigzag: "9223372036854775807",
    },
    {
      field: 2,
      wireType: "varint",
      value: "9007199254740993",
      zigzag: "-4503599627370497",
    },
    {
      field: 3,
      wireType: "i64",
      hex: "0xfffffffffffffffe",
      value: "18446744073709551614",
      signed: "-2",
      double: "NaN",
    },
    {
      field: 4,
      wireType: "i32",
      hex: "0x3fc00000",
      value: 1069547520,
      float: 1.5,
    },
    {
      field: 5,
      wireType: "i32",
      hex: "0xffffffff",
      value: 4294967295,
      signed: -1,
      float: "NaN",
    },
    {
      field: 6,
      wireType: "i64",
      hex: "0x7ff0000000000000",
      value: "9218868437227405312",
      double: "Infinity",
    },
  ]);
  // the typed result keeps numbers as numbers
  const fields = decodeWire(input);
  assert.ok(fields[3].wireType === "i32" && fields[3].float === 1.5);
});

Deno.test("groups are read as nested fields up to the matching end tag", () => {
  // field 1 = group { field 2 = 5, field 3 = group { field 4 = "x" } }, field 5 = 1
  const input = bytes(
    0x0b,
    0x10,
    0x05,
    0x1b,
    lenField(4, encoder.encode("x")),
    0x1c,
    0x0c,
    0x28,
    0x01,
  );
  assert.deepEqual(wireToJson(decodeWire(input)), [
    {
      field: 1,
      wireType: "group",
      group: [
        { field: 2, wireType: "varint", value: "5", zigzag: "-3" },
        {
          field: 3,
          wireType: "group",
          group: [{ field: 4, wireType: "len", string: "x" }],
        },
      ],
    },
    { field: 5, wireType: "varint", value: "1", zigzag: "-1" },
  ]);
});

Deno.test("malformed input throws a DecodeError with the byte offset", () => {
  expectWireError(bytes(0x08), 1, /varint is cut off/);
  expectWireError(bytes(0x08, 0x01, 0x10, 0x96), 3, /varint is cut off/);
  expectWireError(bytes(0x80), 0, /varint is cut off/);
  expectWireError(
    bytes(0x08, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
    1,
    /longer than 64 bits/,
  );
  expectWireError(bytes(0x08, 0x01, 0x00, 0x01), 2, /field number 0/);
  expectWireError(bytes(0x08, 0x01, 0x0e), 2, /wire type 6 of field 1/);
  expectWireError(bytes(0x0f), 0, /wire type 7 of field 1/);
  expectWireError(
    bytes(varint(2n ** 35n)),
    0,
    /field number is larger than 536870911/,
  );
  expectWireError(
    bytes(0x0a, 0x05, 0x61),
    1,
    /length 5 runs past the end \(only 1 byte left/,
  );
  expectWireError(
    bytes(0x0a, varint(2n ** 63n)),
    1,
    /length of 4 GiB or more runs past the end/,
  );
  expectWireError(bytes(0x09, 1, 2, 3), 1, /needs 8 bytes but only 3 bytes/);
  expectWireError(
    bytes(0x08, 0x01, 0x0d, 1),
    3,
    /needs 4 bytes but only 1 byte/,
  );
  expectWireError(bytes(0x0c), 0, /end-group tag of field 1 has no matching/);
  expectWireError(
    bytes(0x0b, 0x14),
    1,
    /end-group tag of field 2 has no matching/,
  );
  expectWireError(
    bytes(0x08, 0x01, 0x0b, 0x10, 0x01),
    2,
    /group of field 1 .* no end-group/,
  );
});

Deno.test("every truncation of a valid message either reads or names an offset inside it", () => {
  const full = toBinary(SkillSchema, sampleSkill());
  let failures = 0;
  for (let cut = 0; cut < full.length; cut++) {
    const input = full.subarray(0, cut);
    try {
      decodeWire(input);
    } catch (error) {
      assert.ok(error instanceof DecodeError);
      const offset = error.offset;
      assert.ok(offset >= 0 && offset <= cut, `offset ${offset} of ${cut}`);
      failures++;
    }
  }
  assert.ok(failures > full.length / 2);
});

/**
 * `levels` messages nested in field 1 of each other around `inner`; level i (1 is the
 * innermost) ends with `trailer(i)`. Built in one buffer: wrapping repeatedly would
 * copy quadratically.
 */
function chain(
  levels: number,
  inner: number[],
  trailer: (level: number) => number[] = () => [],
): Uint8Array {
  const sizes = [inner.length];
  for (let i = 1; i <= levels; i++) {
    const size = sizes[i - 1];
    sizes.push(1 + varint(size).length + size + trailer(i).length);
  }
  const out = new Uint8Array(sizes[levels]);
  let pos = 0;
  for (let i = levels; i >= 1; i--) {
    out[pos++] = 0x0a;
    for (const b of varint(sizes[i - 1])) out[pos++] = b;
  }
  out.set(inner, pos);
  pos += inner.length;
  for (let i = 1; i <= levels; i++) {
    const tail = trailer(i);
    out.set(tail, pos);
    pos += tail.length;
  }
  assert.equal(pos, out.length);
  return out;
}

/** `levels` messages nested in field 1 of each other, innermost holding field 2 = 1. */
function nestedChain(levels: number): Uint8Array {
  return chain(levels, [0x10, 0x01]);
}

function depthOf(fields: WireField[]): number {
  let depth = 0;
  for (const field of fields) {
    if (field.wireType === "len" && "message" in field) {
      depth = Math.max(depth, 1 + depthOf(field.message));
    }
  }
  return depth;
}

Deno.test("nested messages are expanded down to maxDepth, deeper ones stay bytes", () => {
  assert.equal(DEFAULT_WIRE_MAX_DEPTH, 16);
  const chain = nestedChain(30);
  assert.equal(depthOf(decodeWire(chain)), 16);
  assert.equal(depthOf(decodeWire(chain, { maxDepth: 3 })), 3);
  assert.equal(depthOf(decodeWire(nestedChain(5), { maxDepth: 16 })), 5);
  const [top] = decodeWire(chain, { maxDepth: 0 });
  assert.ok(top.wireType === "len" && "bytes" in top);
  // a chain 100,000 levels deep (about 300 KB) reads without deep recursion
  const deep = nestedChain(100_000);
  assert.equal(depthOf(decodeWire(deep)), 16);
});

Deno.test("groups nested deeper than maxDepth are an error, and maxDepth is checked", () => {
  const groups = bytes(0x0b, 0x0b, 0x08, 0x01, 0x0c, 0x0c); // group 1 { group 1 { 1: 1 } }
  assert.equal(decodeWire(groups, { maxDepth: 2 }).length, 1);
  assert.throws(
    () => decodeWire(groups, { maxDepth: 1 }),
    (error: unknown) =>
      error instanceof DecodeError && error.offset === 1 &&
      /nested deeper than maxDepth 1/.test(error.message),
  );
  for (const maxDepth of [-1, 1.5, MAX_WIRE_MAX_DEPTH + 1, NaN]) {
    assert.throws(() => decodeWire(groups, { maxDepth }), StoreError);
  }
  assert.equal(
    decodeWire(new Uint8Array(), { maxDepth: MAX_WIRE_MAX_DEPTH }).length,
    0,
  );
});

Deno.test("an input of many length-delimited fields within each other reads in linear work", () => {
  // Each level ends in a cut-off varint, so every nested parse fails only at its last
  // byte: the worst case for guessing messages. The outermost level is well-formed.
  const levels = 500_000;
  const blob = chain(levels, [0x08, 0x01], (i) => i === levels ? [] : [0x08]);
  assert.ok(blob.length > 2_000_000);
  const fields = decodeWire(blob);
  assert.equal(fields.length, 1);
  assert.ok(fields[0].wireType === "len" && "bytes" in fields[0]);
});

Deno.test("the number of fields in a dump is limited, so memory stays bounded", () => {
  const many = new Uint8Array(2 * 200_000);
  for (let i = 0; i < many.length; i += 2) many[i] = 0x08; // field 1 = 0, 200,000 times
  assert.throws(
    () => decodeWire(many),
    (error: unknown) =>
      error instanceof DecodeError && error.offset === 200_000 &&
      /more than 100000 fields/.test(error.message),
  );
  assert.equal(decodeWire(many, { maxFields: 200_000 }).length, 200_000);
  assert.equal(DEFAULT_WIRE_MAX_FIELDS, 100_000);
  for (const maxFields of [0, -1, 2.5]) {
    assert.throws(() => decodeWire(many, { maxFields }), StoreError);
  }
});

Deno.test("a large text field that also parses as numeric fields is one string", () => {
  // 16 MB of "a": as a message that is 2 million i64 fields (field 12), which are only
  // checked, never built, before the bytes are shown as text
  const text = "a".repeat(16 * 1024 * 1024);
  const [field] = decodeWire(lenField(1, encoder.encode(text)));
  assert.ok(field.wireType === "len" && "string" in field);
  assert.equal(field.string.length, text.length);
});

// --- fuzzing ---------------------------------------------------------------------

type Random = Rng;

function randomText(random: Random): string {
  const alphabet = [
    "a",
    "Z",
    "0",
    " ",
    ".",
    "é",
    "世",
    "\n",
    "\x1b",
    "\u202e",
    "😀",
  ];
  let text = "";
  const length = random.int(12);
  for (let i = 0; i < length; i++) {
    text += alphabet[random.int(alphabet.length)];
  }
  return text;
}

function randomSkill(random: Random): Uint8Array {
  const labels: Record<string, string> = {};
  for (let i = random.int(4); i > 0; i--) {
    labels[randomText(random)] = randomText(random);
  }
  return toBinary(
    SkillSchema,
    create(SkillSchema, {
      name: randomText(random),
      description: randomText(random),
      tools: Array.from({ length: random.int(4) }, () => randomText(random)),
      labels,
      visibility: random.int(3),
      createdAt: random.int(2)
        ? timestampFromDate(new Date(random.u32() * 1000))
        : undefined,
      limits: random.int(2)
        ? {
          maxTokens: random.u32() | 0,
          temperature: random.u32() / 1000,
          timeoutMs: BigInt.asIntN(
            64,
            BigInt(random.u32()) * BigInt(random.u32()),
          ),
        }
        : undefined,
      payload: random.bytes(random.int(16)),
    }),
  );
}

/** Random well-formed wire data of every wire type, groups and nesting included. */
function randomWire(random: Random, depth: number): Uint8Array {
  const parts: (number | number[] | Uint8Array)[] = [];
  for (let n = random.int(5); n > 0; n--) {
    const field = 1 + random.int(random.int(2) ? 20 : 0x1fffffff);
    switch (random.int(depth > 0 ? 6 : 4)) {
      case 0:
        parts.push(
          varint(field * 8),
          varint(BigInt(random.u32()) << BigInt(random.int(33))),
        );
        break;
      case 1:
        parts.push(varint(field * 8 + 1), random.bytes(8));
        break;
      case 2:
        parts.push(varint(field * 8 + 5), random.bytes(4));
        break;
      case 3:
        parts.push(lenField(field, encoder.encode(randomText(random))));
        break;
      case 4:
        parts.push(lenField(field, randomWire(random, depth - 1)));
        break;
      case 5:
        parts.push(
          varint(field * 8 + 3),
          randomWire(random, depth - 1),
          varint(field * 8 + 4),
        );
        break;
    }
  }
  return bytes(...parts);
}

function mutate(random: Random, input: Uint8Array): Uint8Array {
  const out = [...input];
  for (let n = 1 + random.int(4); n > 0; n--) {
    const at = out.length === 0 ? 0 : random.int(out.length);
    switch (random.int(6)) {
      case 0: // flip a bit
        if (out.length > 0) out[at] ^= 1 << random.int(8);
        break;
      case 1: // set an interesting byte
        if (out.length > 0) {
          out[at] = [
            0x00,
            0x01,
            0x7f,
            0x80,
            0xff,
            0x0b,
            0x0c,
            0x0e,
            0x0f,
          ][random.int(9)];
        }
        break;
      case 2: // insert a random byte
        out.splice(at, 0, random.u32() & 0xff);
        break;
      case 3: // delete a run
        out.splice(at, 1 + random.int(4));
        break;
      case 4: // truncate
        out.length = at;
        break;
      case 5: // duplicate a slice somewhere else
        out.splice(
          random.int(out.length + 1),
          0,
          ...out.slice(at, at + random.int(8)),
        );
        break;
    }
  }
  return new Uint8Array(out);
}

function checkOne(input: Uint8Array, maxDepth: number): "ok" | "error" {
  let fields: WireField[];
  try {
    fields = decodeWire(input, { maxDepth });
  } catch (error) {
    if (!(error instanceof DecodeError)) {
      throw new Error(`non-DecodeError for ${JSON.stringify([...input])}`, {
        cause: error,
      });
    }
    assert.ok(error.offset >= 0 && error.offset <= input.length);
    return "error";
  }
  const walk = (list: WireField[]) => {
    for (const field of list) {
      assert.ok(field.field >= 1 && field.field <= 0x1fffffff);
      assert.ok(field.offset >= 0 && field.offset < input.length);
      if (field.wireType === "len" && "message" in field) walk(field.message);
      if (field.wireType === "group") walk(field.group);
    }
  };
  walk(fields);
  JSON.stringify(wireToJson(fields, { positions: true }));
  return "ok";
}

const WIRE_FUZZ_CASES = cases(30_000, 1_000_000);

Deno.test(`fuzz: ${WIRE_FUZZ_CASES} random and mutated inputs only ever throw StoreError`, () => {
  const random = new Rng(0x5eed1234);
  const seeds = [
    ...Array.from({ length: 50 }, () => randomSkill(random)),
    ...Array.from({ length: 50 }, () => randomWire(random, 6)),
  ];
  const counts = { ok: 0, error: 0 };
  for (let i = 0; i < WIRE_FUZZ_CASES; i++) {
    let input: Uint8Array;
    if (i % 3 === 0) {
      input = random.bytes(random.int(64));
    } else {
      input = mutate(random, seeds[random.int(seeds.length)]);
      // sometimes wrap the mutant so it is tried as a nested message
      if (i % 3 === 2) input = lenField(1 + random.int(20), input);
    }
    counts[checkOne(input, random.int(DEFAULT_WIRE_MAX_DEPTH + 1))]++;
  }
  // both outcomes are exercised, so the fuzzing reaches past the first bytes
  assert.ok(counts.ok > 3000, `ok: ${counts.ok}`);
  assert.ok(counts.error > 3000, `error: ${counts.error}`);
});
