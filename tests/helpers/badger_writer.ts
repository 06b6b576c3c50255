/**
 * An encoder of the `badger backup` format for tests and benchmarks, on protobuf-es's
 * `BinaryWriter`: records of `KVList` protobufs with arbitrary KVs (split versions,
 * unsorted ranges, tombstones, TTLs, big values, unknown fields), and a seeded
 * generator of large dumps.
 *
 * @module
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { mulberry32 } from "./prng.ts";

/** One KV to encode; absent fields are not written (proto3 defaults). */
export interface KVInit {
  key: string | Uint8Array;
  value?: string | Uint8Array;
  /** Written as a one-byte `user_meta` like Badger does; `null` omits the field. */
  userMeta?: number | Uint8Array | null;
  version: number | bigint;
  expiresAt?: number | bigint;
  /** Written as a one-byte `meta` like Badger does; `null` omits the field. */
  meta?: number | Uint8Array | null;
  streamId?: number;
  streamDone?: boolean;
  /** Raw bytes appended inside the KV message (e.g. unknown fields). */
  extra?: Uint8Array;
}

/** Appends one KV message's fields (without its own tag/length) to `w`, in field order. */
export function writeKVFields(w: BinaryWriter, kv: KVInit): BinaryWriter {
  w.tag(1, WireType.LengthDelimited);
  if (typeof kv.key === "string") w.string(kv.key);
  else w.bytes(kv.key);
  if (kv.value !== undefined && kv.value.length > 0) {
    w.tag(2, WireType.LengthDelimited);
    if (typeof kv.value === "string") w.string(kv.value);
    else w.bytes(kv.value);
  }
  const userMeta = kv.userMeta === undefined ? 0 : kv.userMeta;
  if (userMeta !== null) {
    w.tag(3, WireType.LengthDelimited).bytes(oneByte(userMeta));
  }
  if (kv.version !== 0 && kv.version !== 0n) {
    w.tag(4, WireType.Varint).uint64(kv.version);
  }
  if (kv.expiresAt !== undefined && kv.expiresAt !== 0 && kv.expiresAt !== 0n) {
    w.tag(5, WireType.Varint).uint64(kv.expiresAt);
  }
  const meta = kv.meta === undefined ? 0 : kv.meta;
  if (meta !== null) w.tag(6, WireType.LengthDelimited).bytes(oneByte(meta));
  if (kv.streamId) w.tag(10, WireType.Varint).uint32(kv.streamId);
  if (kv.streamDone) w.tag(11, WireType.Varint).bool(true);
  if (kv.extra) w.raw(kv.extra);
  return w;
}

function oneByte(value: number | Uint8Array): Uint8Array {
  return typeof value === "number" ? new Uint8Array([value]) : value;
}

/** Encodes one KV message. */
export function encodeKV(kv: KVInit): Uint8Array {
  return writeKVFields(new BinaryWriter(), kv).finish();
}

/** Encodes a `KVList` body; `extra` raw bytes (unknown fields) are appended. */
export function encodeKVList(kvs: KVInit[], extra?: Uint8Array): Uint8Array {
  const w = new BinaryWriter();
  for (const kv of kvs) {
    writeKVFields(w.tag(1, WireType.LengthDelimited).fork(), kv).join();
  }
  if (extra) w.raw(extra);
  return w.finish();
}

/** Prefixes a record body with its 8-byte little-endian length. */
export function frame(
  body: Uint8Array,
  declaredLength?: number | bigint,
): Uint8Array {
  // The prefix is a little-endian uint64: what protobuf's fixed64 is.
  return new BinaryWriter().fixed64(declaredLength ?? body.length).raw(body)
    .finish();
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Encodes a whole backup: one record per element of `records`. */
export function encodeBackup(records: KVInit[][]): Uint8Array {
  return concat(records.map((kvs) => frame(encodeKVList(kvs))));
}

/** A stream delivering `bytes` in chunks of `chunkSize` (to exercise chunk boundaries). */
export function chunkedStream(
  bytes: Uint8Array,
  chunkSize = 7,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(at, at + chunkSize));
      at += chunkSize;
    },
  });
}

/** Options of {@linkcode writeGeneratedDump}. */
export interface GeneratedDumpOptions {
  /** Distinct keys in the dump (resources + audit snapshots). Default 1,000,000. */
  keys?: number;
  /** PRNG seed. Default 1. */
  seed?: number;
  /** Kinds, in Badger (sorted) order. Default ["agent", "skill", "workflow"]. */
  kinds?: string[];
  /** Share of keys that are audit snapshots. Default 0.05. */
  auditFraction?: number;
  /** Share of audit snapshots whose resource is not in the dump. Default 0.1. */
  orphanFraction?: number;
  /** Share of resource keys whose newest version is a tombstone. Default 0.03. */
  tombstoneFraction?: number;
  /** Share of live resource keys that also carry an older version. Default 0.1. */
  olderVersionFraction?: number;
  /** Mean value size in bytes (uniform in ±20%). Default 100. */
  valueSize?: number;
  /** Approximate record body size in bytes. Default 256 KiB. */
  recordBytes?: number;
}

/** What a generated dump holds, for asserting an import. */
export interface GeneratedDumpStats {
  keys: number;
  kvs: number;
  records: number;
  bytes: number;
  liveResources: number;
  tombstones: number;
  auditRecords: number;
  orphanAuditRecords: number;
  kinds: Record<string, number>;
}

const HEX = "0123456789abcdef";

function hex(value: number, digits: number): string {
  let s = "";
  for (let i = digits - 1; i >= 0; i--) s += HEX[(value >>> (i * 4)) & 15];
  return s;
}

/**
 * Writes a deterministic dump of `keys` keys to `path`, in Badger's order (kinds sorted;
 * within a kind, resources by id then the kind's audit snapshots), versions newest first,
 * record boundaries every ~`recordBytes` regardless of keys (so versions of a key split
 * across records). Ids look like UUIDs with a sortable counter prefix.
 */
export async function writeGeneratedDump(
  path: string,
  options: GeneratedDumpOptions = {},
): Promise<GeneratedDumpStats> {
  const total = options.keys ?? 1_000_000;
  const rand = mulberry32(options.seed ?? 1);
  const kinds = [...(options.kinds ?? ["agent", "skill", "workflow"])].sort();
  const auditFraction = options.auditFraction ?? 0.05;
  const orphanFraction = options.orphanFraction ?? 0.1;
  const tombstoneFraction = options.tombstoneFraction ?? 0.03;
  const olderFraction = options.olderVersionFraction ?? 0.1;
  const valueSize = options.valueSize ?? 100;
  const recordBytes = options.recordBytes ?? 256 * 1024;
  const u32 = 2 ** 32;

  const stats: GeneratedDumpStats = {
    keys: 0,
    kvs: 0,
    records: 0,
    bytes: 0,
    liveResources: 0,
    tombstones: 0,
    auditRecords: 0,
    orphanAuditRecords: 0,
    kinds: {},
  };
  const file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  let record = new BinaryWriter();
  // Bytes written to `record` so far, approximately (the flush point need not be exact).
  let recordLen = 0;
  const value = new Uint8Array(Math.ceil(valueSize * 1.2) + 8);
  let version = 1;

  const flush = async () => {
    if (recordLen === 0) return;
    const framed = frame(record.finish());
    let at = 0;
    while (at < framed.length) at += await file.write(framed.subarray(at));
    stats.records++;
    stats.bytes += framed.length;
    record = new BinaryWriter();
    recordLen = 0;
  };

  const randomValue = (): Uint8Array => {
    const n = valueSize - Math.floor(valueSize / 5) +
      (rand() % (Math.floor((valueSize * 2) / 5) + 1));
    for (let i = 0; i < n; i += 4) {
      const r = rand();
      value[i] = r;
      value[i + 1] = r >>> 8;
      value[i + 2] = r >>> 16;
      value[i + 3] = r >>> 24;
    }
    return value.subarray(0, n);
  };

  const emit = async (
    key: string,
    val: Uint8Array | undefined,
    ver: number,
    meta: number,
  ) => {
    writeKVFields(record.tag(1, WireType.LengthDelimited).fork(), {
      key,
      value: val,
      version: ver,
      meta,
      streamId: 1,
    }).join();
    recordLen += key.length + (val?.length ?? 0) + 24;
    stats.kvs++;
    if (recordLen >= recordBytes) await flush();
  };

  const uuid = (counter: number): string => {
    const a = rand();
    const b = rand();
    const c = rand();
    return `${hex(counter, 8)}-${hex(a >>> 16, 4)}-4${hex(a, 3)}-${
      HEX[8 + (b & 3)]
    }${hex(b >>> 4, 3)}-${hex(c, 8)}${hex(b >>> 16, 4)}`;
  };

  try {
    const auditTotal = Math.round(total * auditFraction);
    const resourceTotal = total - auditTotal;
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[k];
      const resources = Math.floor(resourceTotal / kinds.length) +
        (k < resourceTotal % kinds.length ? 1 : 0);
      const audits = Math.floor(auditTotal / kinds.length) +
        (k < auditTotal % kinds.length ? 1 : 0);
      const liveIds: string[] = [];
      // Which live resources get audit snapshots is decided as they are written.
      const auditChance = resources > 0
        ? Math.min(1, (audits * 1.5) / resources)
        : 0;
      for (let i = 0; i < resources; i++) {
        const id = uuid(i);
        const key = `${kind}/${id}`;
        const v = version;
        version += 2;
        if (rand() / u32 < tombstoneFraction) {
          await emit(key, undefined, v + 1, 1);
          stats.tombstones++;
        } else {
          await emit(key, randomValue(), v + 1, 0);
          if (rand() / u32 < olderFraction) {
            await emit(key, randomValue(), v, 0);
          }
          stats.liveResources++;
          stats.kinds[kind] = (stats.kinds[kind] ?? 0) + 1;
          if (liveIds.length < audits && rand() / u32 < auditChance) {
            liveIds.push(id);
          }
        }
        stats.keys++;
      }
      // Audit snapshots: of live resources in id order, then orphans whose ids sort
      // after every real one (Badger's key order).
      const wantedOrphans = Math.round(audits * orphanFraction);
      const attached = Math.min(liveIds.length, audits - wantedOrphans);
      let orphanCounter = 0xf0000000;
      for (let a = 0; a < audits; a++) {
        const orphan = a >= attached;
        const resourceId = orphan ? uuid(orphanCounter++) : liveIds[a];
        const nanos = 1_700_000_000_000_000_000n + BigInt(a) * 1_000_123n;
        const v = version;
        version += 2;
        await emit(
          `${kind}/${kind}_audit/${resourceId}/${nanos}`,
          randomValue(),
          v,
          0,
        );
        stats.keys++;
        if (orphan) stats.orphanAuditRecords++;
        else stats.auditRecords++;
      }
    }
    await flush();
  } finally {
    file.close();
  }
  return stats;
}
