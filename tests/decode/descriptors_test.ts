import assert from "node:assert/strict";
import {
  create,
  createRegistry,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import {
  anyPack,
  AnySchema,
  file_google_protobuf_any,
  FileDescriptorSetSchema,
  timestampFromDate,
} from "@bufbuild/protobuf/wkt";
import {
  decodeBlob,
  decodeMessageToJson,
  RegistryCache,
  registryFromDescriptorSet,
} from "../../src/decode/descriptors.ts";
import { StoreError } from "../../src/errors.ts";
import { cases } from "../helpers/reliability_common.ts";
import { Rng } from "../helpers/prng.ts";
import {
  LimitsSchema,
  SkillSchema,
  Visibility,
} from "../fixtures/gen/example/v1/example_pb.ts";

const descriptorSet = Deno.readFileSync(
  new URL("../fixtures/example.binpb", import.meta.url),
);

const skill = create(SkillSchema, {
  name: "summarise",
  versionHash: "abc123",
  tools: ["search", "fetch"],
  labels: { team: "core", "a.b": "dotted" },
  visibility: Visibility.PUBLIC,
  createdAt: timestampFromDate(new Date("2026-01-25T10:00:00.000Z")),
  limits: { maxTokens: 4096, temperature: 0.25, timeoutMs: 30000n },
  payload: new Uint8Array([1, 2, 3]),
});
const skillBytes = toBinary(SkillSchema, skill);
const skillJson = {
  name: "summarise",
  versionHash: "abc123",
  tools: ["search", "fetch"],
  labels: { team: "core", "a.b": "dotted" },
  visibility: "VISIBILITY_PUBLIC",
  createdAt: "2026-01-25T10:00:00Z",
  limits: { maxTokens: 4096, temperature: 0.25, timeoutMs: "30000" },
  payload: "AQID",
};

/** The example descriptor set without google/protobuf/timestamp.proto. */
function setWithoutImports(): Uint8Array {
  const set = fromBinary(FileDescriptorSetSchema, descriptorSet);
  set.file = set.file.filter((file) =>
    file.name === "example/v1/example.proto"
  );
  return toBinary(FileDescriptorSetSchema, set);
}

Deno.test("a descriptor set from buf build gives a registry of its types", () => {
  const registry = registryFromDescriptorSet(descriptorSet);
  for (
    const name of [
      "example.v1.Skill",
      "example.v1.Agent",
      "example.v1.Limits",
      "google.protobuf.Timestamp",
    ]
  ) {
    assert.equal(registry.getMessage(name)?.typeName, name);
  }
  assert.equal(registry.getEnum("example.v1.Visibility")?.values.length, 3);
});

Deno.test("a bad descriptor set is a StoreError that says what to do", () => {
  assert.throws(
    () => registryFromDescriptorSet(new Uint8Array([0x0a, 0x05, 0x01])),
    (error: unknown) =>
      error instanceof StoreError &&
      /Cannot read the descriptor set \(3 bytes\)/.test(error.message) &&
      /buf build -o FILE/.test(error.message),
  );
  assert.throws(
    () => registryFromDescriptorSet(setWithoutImports()),
    (error: unknown) =>
      error instanceof StoreError &&
      /every imported file/.test(error.message),
  );
});

Deno.test("a Skill with a Timestamp and a map decodes to protobuf JSON", () => {
  const registry = registryFromDescriptorSet(descriptorSet);
  assert.deepEqual(
    decodeMessageToJson(registry, "example.v1.Skill", skillBytes),
    skillJson,
  );
  // the leading dot of descriptor type references is accepted too
  assert.deepEqual(
    decodeMessageToJson(registry, ".example.v1.Skill", skillBytes),
    skillJson,
  );
  // default values are left out
  assert.deepEqual(
    decodeMessageToJson(registry, "example.v1.Skill", new Uint8Array()),
    {},
  );
});

Deno.test("an Any field is resolved through the registry", () => {
  const registry = createRegistry(
    file_google_protobuf_any,
    registryFromDescriptorSet(descriptorSet),
  );
  const any = anyPack(
    LimitsSchema,
    create(LimitsSchema, { maxTokens: 5 }),
  );
  assert.deepEqual(
    decodeMessageToJson(
      registry,
      "google.protobuf.Any",
      toBinary(AnySchema, any),
    ),
    { "@type": "type.googleapis.com/example.v1.Limits", maxTokens: 5 },
  );
});

Deno.test("an unknown type or bytes that are not the type are StoreErrors", () => {
  const registry = registryFromDescriptorSet(descriptorSet);
  assert.throws(
    () => decodeMessageToJson(registry, "example.v1.Nope", skillBytes),
    (error: unknown) =>
      error instanceof StoreError &&
      /"example\.v1\.Nope" is not in the descriptors/.test(error.message) &&
      /example\.v1\.Skill/.test(error.message),
  );
  // field 1 of Skill is a string: a varint there cannot be a Skill
  assert.throws(
    () =>
      decodeMessageToJson(
        registry,
        "example.v1.Skill",
        new Uint8Array([0x08, 0x01]),
      ),
    (error: unknown) =>
      error instanceof StoreError &&
      /Cannot decode 2 bytes as example\.v1\.Skill/.test(error.message),
  );
  assert.throws(
    () =>
      decodeMessageToJson(
        registry,
        "example.v1.Skill",
        skillBytes.subarray(0, skillBytes.length - 1),
      ),
    StoreError,
  );
});

Deno.test("decodeBlob prefers the stored descriptors", () => {
  const cache = new RegistryCache();
  const given = {
    registry: registryFromDescriptorSet(descriptorSet),
    typeName: "example.v1.Limits",
  };
  assert.deepEqual(
    decodeBlob(skillBytes, {
      stored: { typeName: "example.v1.Skill", descriptorSet, key: "1" },
      descriptors: given,
      cache,
    }),
    {
      decodedWith: "stored-descriptors",
      type: "example.v1.Skill",
      message: skillJson,
    },
  );
});

Deno.test("decodeBlob falls back to the given descriptors, saying why", () => {
  const result = decodeBlob(skillBytes, {
    stored: { typeName: "example.v1.Missing", descriptorSet, key: "1" },
    descriptors: {
      registry: registryFromDescriptorSet(descriptorSet),
      typeName: "example.v1.Skill",
    },
    cache: new RegistryCache(),
  });
  assert.equal(result.decodedWith, "descriptors");
  assert.equal(result.type, "example.v1.Skill");
  assert.deepEqual(result.message, skillJson);
  assert.match(
    result.reason!,
    /^stored descriptors \(example\.v1\.Missing\): Message type "example\.v1\.Missing"/,
  );
});

Deno.test("decodeBlob falls back to the wire dump, then to base64 with every reason", () => {
  const corrupt = new Uint8Array([0x08, 0x01, 0x0a, 0x09, 0x01]);
  const wrongShape = new Uint8Array([0x08, 0x01]); // a varint in Skill's string field 1
  const registry = registryFromDescriptorSet(descriptorSet);
  const sources = {
    stored: {
      typeName: "example.v1.Skill",
      descriptorSet: new Uint8Array([0xff]),
      key: "broken",
    },
    descriptors: { registry, typeName: "example.v1.Skill" },
    cache: new RegistryCache(),
  };

  const wire = decodeBlob(wrongShape, sources);
  assert.equal(wire.decodedWith, "wire");
  assert.equal(wire.type, undefined);
  assert.deepEqual(wire.message, [
    { field: 1, wireType: "varint", value: "1", zigzag: "-1" },
  ]);
  const [stored, given] = wire.reason!.split("; ");
  assert.match(
    stored,
    /^stored descriptors \(example\.v1\.Skill\): Cannot read the descriptor set/,
  );
  assert.match(
    given,
    /^given descriptors \(example\.v1\.Skill\): Cannot decode 2 bytes/,
  );

  const base64 = decodeBlob(corrupt, sources);
  assert.equal(base64.decodedWith, "base64");
  assert.deepEqual(base64.message, { $base64: true, encoded: "CAEKCQE=" });
  const reasons = base64.reason!.split("; ");
  assert.equal(reasons.length, 3);
  assert.match(
    reasons[2],
    /^wire format: .* of 5 bytes .*: length 9 runs past the end .* at byte offset 3$/,
  );
});

Deno.test("decodeBlob without descriptors dumps the wire format without a reason", () => {
  const result = decodeBlob(
    toBinary(LimitsSchema, create(LimitsSchema, { maxTokens: 3 })),
    {},
  );
  assert.deepEqual(result, {
    decodedWith: "wire",
    message: [{ field: 1, wireType: "varint", value: "3", zigzag: "-2" }],
  });
  const shallow = decodeBlob(skillBytes, { wireMaxDepth: 0 });
  const limits = (shallow.message as { field: number; bytes?: string }[])
    .find((field) => field.field === 9);
  assert.equal(typeof limits?.bytes, "string");
});

Deno.test("the registry cache builds each descriptor set once and remembers failures", () => {
  const cache = new RegistryCache(2);
  const first = cache.get(descriptorSet, "7");
  assert.equal(cache.get(descriptorSet, "7"), first);
  // without a key, equal bytes in different arrays share an entry (by SHA-256)
  const byHash = cache.get(descriptorSet.slice());
  assert.equal(cache.get(descriptorSet.slice()), byHash);
  assert.notEqual(byHash, first);
  assert.equal(cache.size, 2);

  const broken = new Uint8Array([0xff]);
  let firstError: unknown;
  try {
    cache.get(broken, "bad");
  } catch (error) {
    firstError = error;
  }
  assert.ok(firstError instanceof StoreError);
  assert.throws(
    () => cache.get(broken, "bad"),
    (error) => error === firstError,
  );
  // bounded: the oldest entry made room
  assert.equal(cache.size, 2);
  assert.notEqual(cache.get(descriptorSet, "7"), first);
});

Deno.test("decoding 10,000 rows with one schema builds its registry once", () => {
  const cache = new RegistryCache();
  const registry = cache.get(descriptorSet, "1");
  for (let i = 0; i < 10_000; i++) {
    const result = decodeBlob(skillBytes, {
      stored: { typeName: "example.v1.Skill", descriptorSet, key: "1" },
      cache,
    });
    assert.equal(result.decodedWith, "stored-descriptors");
  }
  assert.equal(cache.size, 1);
  assert.equal(cache.get(descriptorSet, "1"), registry);
});

const BLOB_FUZZ_CASES = cases(5_000, 200_000);

Deno.test(`fuzz: ${BLOB_FUZZ_CASES} corrupted Skill blobs decode one way or another and never throw`, () => {
  const random = new Rng(0xdec0de);
  const cache = new RegistryCache();
  const sources = {
    stored: { typeName: "example.v1.Skill", descriptorSet, key: "1" },
    cache,
  };
  const seen = new Set<string>();
  for (let i = 0; i < BLOB_FUZZ_CASES; i++) {
    const blob = [...skillBytes];
    for (let n = 1 + random.int(3); n > 0 && blob.length > 0; n--) {
      const at = random.int(blob.length);
      if (random.chance(0.5)) blob[at] = random.int(256);
      else blob.length = at;
    }
    const result = decodeBlob(new Uint8Array(blob), sources);
    seen.add(result.decodedWith);
    JSON.stringify(result);
    if (result.decodedWith !== "stored-descriptors") assert.ok(result.reason);
  }
  assert.deepEqual([...seen].sort(), ["base64", "stored-descriptors", "wire"]);
});
