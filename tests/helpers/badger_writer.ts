/**
 * An encoder of the `badger backup` format for tests and benchmarks: records of
 * `KVList` protobufs with arbitrary KVs (split versions, unsorted ranges, tombstones,
 * TTLs, big values, unknown fields), and a fast seeded generator of large dumps.
 *
 * @module
 */
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

const encoder = new TextEncoder();

/** A growable byte buffer with protobuf primitives. */
export class ByteWriter {
  buf: Uint8Array;
  len = 0;

  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity);
  }

  ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(value: number | bigint): void {
    this.ensure(10);
    if (typeof value === "number" && value < 0x80000000) {
      let v = value;
      while (v >= 0x80) {
        this.buf[this.len++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.len++] = v;
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** Length-delimited field. */
  bytesField(field: number, bytes: Uint8Array): void {
    this.varint((field << 3) | 2);
    this.varint(bytes.length);
    this.raw(bytes);
  }

  /** Length-delimited field from an ASCII/UTF-8 string without a temporary array. */
  stringField(field: number, text: string): void {
    this.varint((field << 3) | 2);
    if (text.length < 128) {
      // One length byte is reserved; fixed up below if the UTF-8 is longer.
      this.ensure(1 + text.length * 3);
      const start = this.len + 1;
      const { written } = encoder.encodeInto(
        text,
        this.buf.subarray(start),
      );
      if (written < 128) {
        this.buf[this.len] = written;
        this.len = start + written;
        return;
      }
    }
    const bytes = encoder.encode(text);
    this.varint(bytes.length);
    this.raw(bytes);
  }

  varintField(field: number, value: number | bigint): void {
    this.varint(field << 3);
    this.varint(value);
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

function oneByte(value: number | Uint8Array): Uint8Array {
  return typeof value === "number" ? new Uint8Array([value]) : value;
}

/**
 * Appends one KV message's fields (without its own tag/length) to `w`, field order as
 * Go's protobuf writes them.
 */
export function writeKVFields(w: ByteWriter, kv: KVInit): void {
  if (typeof kv.key === "string") w.stringField(1, kv.key);
  else w.bytesField(1, kv.key);
  if (kv.value !== undefined && kv.value.length > 0) {
    if (typeof kv.value === "string") w.stringField(2, kv.value);
    else w.bytesField(2, kv.value);
  }
  const userMeta = kv.userMeta === undefined ? 0 : kv.userMeta;
  if (userMeta !== null) w.bytesField(3, oneByte(userMeta));
  if (kv.version !== 0 && kv.version !== 0n) w.varintField(4, kv.version);
  if (kv.expiresAt !== undefined && kv.expiresAt !== 0 && kv.expiresAt !== 0n) {
    w.varintField(5, kv.expiresAt);
  }
  const meta = kv.meta === undefined ? 0 : kv.meta;
  if (meta !== null) w.bytesField(6, oneByte(meta));
  if (kv.streamId) w.varintField(10, kv.streamId);
  if (kv.streamDone) w.varintField(11, 1);
  if (kv.extra) w.raw(kv.extra);
}

/** Encodes one KV message. */
export function encodeKV(kv: KVInit): Uint8Array {
  const w = new ByteWriter();
  writeKVFields(w, kv);
  return w.bytes().slice();
}

/** Encodes a `KVList` body; `extra` raw bytes (unknown fields) are appended. */
export function encodeKVList(kvs: KVInit[], extra?: Uint8Array): Uint8Array {
  const w = new ByteWriter();
  for (const kv of kvs) w.bytesField(1, encodeKV(kv));
  if (extra) w.raw(extra);
  return w.bytes().slice();
}

/** Prefixes a record body with its 8-byte little-endian length. */
export function frame(
  body: Uint8Array,
  declaredLength?: number | bigint,
): Uint8Array {
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(
    0,
    BigInt(declaredLength ?? body.length),
    true,
  );
  out.set(body, 8);
  return out;
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
  const record = new ByteWriter(recordBytes + 64 * 1024);
  const kv = new ByteWriter(4096);
  const value = new Uint8Array(Math.ceil(valueSize * 1.2) + 8);
  let version = 1;

  const flush = async () => {
    if (record.len === 0) return;
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, record.len, true);
    await file.write(header);
    let at = 0;
    const body = record.bytes();
    while (at < body.length) at += await file.write(body.subarray(at));
    stats.records++;
    stats.bytes += 8 + record.len;
    record.len = 0;
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
    kv.len = 0;
    kv.stringField(1, key);
    if (val) kv.bytesField(2, val);
    kv.raw(USER_META_ZERO);
    kv.varintField(4, ver);
    kv.raw(meta === 0 ? META_ZERO : META_DELETE);
    kv.varintField(10, 1);
    record.bytesField(1, kv.bytes());
    stats.kvs++;
    if (record.len >= recordBytes) await flush();
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

const USER_META_ZERO = new Uint8Array([(3 << 3) | 2, 1, 0]);
const META_ZERO = new Uint8Array([(6 << 3) | 2, 1, 0]);
const META_DELETE = new Uint8Array([(6 << 3) | 2, 1, 1]);
