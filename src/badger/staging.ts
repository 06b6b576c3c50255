/**
 * Phase 1 of an import: every KV of the dump into a private staging SQLite file, keeping
 * only the newest version of each key. Badger writes every version of a key, split
 * across records and key ranges, so the newest one is only known at the end of the
 * file. The whole dump is read and validated here, before the target is opened for
 * writing. The staging file needs about the dump's size on disk.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { messageOf, StoreError } from "../errors.ts";
import { sqliteErrorCode, sqliteFailure } from "../sqlite/errors.ts";
import { openScratchDatabase } from "../sqlite/scratch.ts";
import { readBadgerRecordBodies } from "./framing.ts";
import { BADGER_BIT_DELETE, type BadgerKVView, forEachKV } from "./kvlist.ts";
import { type BadgerKeyClass, classifyKey } from "./keys.ts";
import type { ImportSummary } from "./summary.ts";

/** The schema name the staging file is attached under in the target connection. */
export const STAGING = "protostore_badger_staging";
/** Staged state of a key's newest version: live. */
export const STATE_LIVE = 0;
/** Staged state of a key's newest version: a tombstone. */
export const STATE_DELETED = 1;
/** Staged state of a key's newest version: expired at the import's `now`. */
export const STATE_EXPIRED = 2;
/** Class of a key in the `other` staging table: Badger's own `!badger!` key. */
export const CLASS_INTERNAL = 2;
/** Class of a key in the `other` staging table: not mappable to (kind, id). */
export const CLASS_INVALID = 3;

// Unsigned 64-bit "newer": versions above 2^63 - 1 are stored as negative int64.
const newer = (table: string) =>
  `(excluded.version < 0) > (${table}.version < 0) OR ` +
  `((excluded.version < 0) = (${table}.version < 0) AND excluded.version > ${table}.version)`;

/** Staging tables: one row per key, its newest version's state and value. */
const STAGING_SCHEMA = `
  PRAGMA page_size = 16384;
  PRAGMA journal_mode = OFF;
  PRAGMA synchronous = OFF;
  PRAGMA locking_mode = EXCLUSIVE;
  PRAGMA cache_size = -32768;
  PRAGMA temp_store = FILE;
  CREATE TABLE res (kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    state INTEGER NOT NULL, value BLOB, PRIMARY KEY (kind, id)) WITHOUT ROWID;
  -- Keyed in the order snapshots are inserted, so phase 2 needs no sort. The first three
  -- columns are derived from the key, so this primary key is as unique as the key.
  CREATE TABLE aud (kind TEXT NOT NULL, resource_id TEXT NOT NULL, archived_at TEXT NOT NULL,
    key BLOB NOT NULL, version INTEGER NOT NULL, state INTEGER NOT NULL, value BLOB,
    PRIMARY KEY (kind, resource_id, archived_at, key)) WITHOUT ROWID;
  -- Phase 2: keys of live snapshots already in the target.
  CREATE TABLE present (key BLOB PRIMARY KEY) WITHOUT ROWID;
  CREATE TABLE other (key BLOB PRIMARY KEY, cls INTEGER NOT NULL, reason TEXT,
    version INTEGER NOT NULL, state INTEGER NOT NULL) WITHOUT ROWID;
`;

/**
 * Creates the staging database at `path` (in the import's private directory `dir`):
 * no journal, no fsync, one writer. Not opened through the connection module on
 * purpose: the file is private and thrown away, so none of the target's pragmas apply.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStaging } from "./staging.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const staging = openStaging(`${dir}/staging.sqlite`, dir);
 * assert.equal(staging.prepare("SELECT count(*) AS n FROM res").get()?.n, 0);
 * staging.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openStaging(path: string, dir: string): DatabaseSync {
  let staging: DatabaseSync | undefined;
  try {
    staging = openScratchDatabase(path);
    staging.exec(STAGING_SCHEMA);
    return staging;
  } catch (error) {
    staging?.close();
    throw sqliteFailure(
      `cannot create the import's staging database in ${dir}: ${
        messageOf(error)
      }`,
      error,
    );
  }
}

function sameRange(
  a: Uint8Array,
  aStart: number,
  aEnd: number,
  b: Uint8Array,
  bStart: number,
  bEnd: number,
): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  // From the end: keys of one kind share their start.
  for (let i = aEnd - aStart - 1; i >= 0; i--) {
    if (a[aStart + i] !== b[bStart + i]) return false;
  }
  return true;
}

/** Outcome counts of the resource keys, kept while staging (one row per key). */
export interface StagedResources {
  /** Keys by state of their newest version: live, deleted, expired. */
  byState: number[];
  /** Live keys per kind. */
  kinds: Map<string, number>;
}

/** What {@linkcode stageDump} reads and where it reports. */
export interface StageContext {
  /** The dump's bytes. */
  stream: ReadableStream<Uint8Array>;
  /** The dump's name in error messages (its path). */
  name: string;
  /** The dump's size when known, for progress and early truncation errors. */
  totalBytes?: number;
  /** The import's time in ms: keys whose `expires_at` is not after it are expired. */
  nowMs: number;
  /** Called as the dump is read, with bytes read so far and the size if known. */
  onProgress?: (bytesRead: number, totalBytes?: number) => void;
  /** Gets `records`, `kvs`, `streamMarkers` and `bytesRead`. */
  summary: ImportSummary;
}

/**
 * Phase 1: every KV into the staging tables of `staging` (from
 * {@linkcode openStaging}), keeping the newest version per key, in one transaction of
 * the staging file. A truncated or corrupt dump throws `DecodeError` here; any other
 * failure a {@linkcode StoreError} saying the target was not written. Returns the
 * resource counts kept on the way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStaging, stageDump } from "./staging.ts";
 * import { emptySummary } from "./summary.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const staging = openStaging(`${dir}/staging.sqlite`, dir);
 * // One record: KV { key: "a/1", value: "x", version: 1 }
 * const body = [0x0a, 0x0a, 0x0a, 0x03, 0x61, 0x2f, 0x31, 0x12, 0x01, 0x78, 0x20, 0x01];
 * const dump = new Uint8Array([body.length, 0, 0, 0, 0, 0, 0, 0, ...body]);
 * const summary = emptySummary(null, false, undefined);
 * const counted = await stageDump(staging, {
 *   stream: ReadableStream.from([dump]),
 *   name: "dump",
 *   nowMs: Date.now(),
 *   summary,
 * });
 * assert.deepEqual([counted.byState, summary.kvs], [[1, 0, 0], 1]);
 * staging.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function stageDump(
  staging: DatabaseSync,
  context: StageContext,
): Promise<StagedResources> {
  const { stream, name, totalBytes, summary, onProgress } = context;
  const nowSec = Math.floor(context.nowMs / 1000);
  // Most keys are new: a plain insert, and the upsert only when the key is already there.
  const insertResource = staging.prepare(
    "INSERT OR IGNORE INTO res (kind, id, version, state, value) VALUES (?, ?, ?, ?, ?)",
  );
  const resourceState = staging.prepare(
    "SELECT state FROM res WHERE kind = ? AND id = ?",
  );
  const counted: StagedResources = { byState: [0, 0, 0], kinds: new Map() };
  const kinds = counted.kinds;
  const upsertResource = staging.prepare(
    `INSERT INTO res (kind, id, version, state, value) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version,
       state = excluded.state, value = excluded.value WHERE ${newer("res")}`,
  );
  const upsertAudit = staging.prepare(
    `INSERT INTO aud (kind, resource_id, archived_at, key, version, state, value)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (kind, resource_id, archived_at, key) DO UPDATE SET
       version = excluded.version, state = excluded.state, value = excluded.value
     WHERE ${newer("aud")}`,
  );
  const upsertOther = staging.prepare(
    `INSERT INTO other (key, cls, reason, version, state) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET version = excluded.version,
       state = excluded.state WHERE ${newer("other")}`,
  );
  // The previous KV's key (a range of a record body) and what it was classified as.
  let prevBody: Uint8Array | undefined;
  let prevStart = 0;
  let prevEnd = 0;
  let prevKey: Uint8Array = new Uint8Array(0);
  let prevVersion: number | bigint = 0;
  let prevClass: BadgerKeyClass = { type: "badger-internal" };
  let archivedAt = "";

  const stageResource = (
    kind: string,
    id: string,
    version: number | bigint,
    state: number,
    value: Uint8Array | null,
  ) => {
    if (insertResource.run(kind, id, version, state, value).changes === 1) {
      counted.byState[state]++;
      if (state === STATE_LIVE) kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      return;
    }
    // Seen before, but not as the previous KV: rare (split key ranges), so the counts
    // are corrected here rather than by a scan at the end.
    const old = (resourceState.get(kind, id) as { state: number }).state;
    if (upsertResource.run(kind, id, version, state, value).changes === 1) {
      counted.byState[old]--;
      counted.byState[state]++;
      if (old === STATE_LIVE) kinds.set(kind, kinds.get(kind)! - 1);
      if (state === STATE_LIVE) kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
  };

  // Called for every KV with a reused view: no objects per KV beyond what SQLite needs.
  const visit = (kv: BadgerKVView) => {
    if (kv.streamDone) {
      summary.streamMarkers++;
      return;
    }
    const body = kv.body;
    const version = kv.version;
    let cls: BadgerKeyClass;
    if (
      prevBody !== undefined &&
      sameRange(body, kv.keyStart, kv.keyEnd, prevBody, prevStart, prevEnd)
    ) {
      // Versions of a key come newest first: an older one changes nothing.
      if (version <= prevVersion) return;
      cls = prevClass;
    } else {
      prevKey = body.subarray(kv.keyStart, kv.keyEnd);
      cls = prevClass = classifyKey(prevKey);
      if (cls.type === "audit") {
        archivedAt = new Date(cls.archivedAtMs).toISOString();
      }
    }
    prevBody = body;
    prevStart = kv.keyStart;
    prevEnd = kv.keyEnd;
    prevVersion = version;
    const state = (kv.meta & BADGER_BIT_DELETE) !== 0
      ? STATE_DELETED
      : kv.expiresAt !== 0 && kv.expiresAt <= nowSec
      ? STATE_EXPIRED
      : STATE_LIVE;
    const value = state === STATE_LIVE
      ? body.subarray(kv.valueStart, kv.valueEnd)
      : null;
    const stored = typeof version === "bigint"
      ? BigInt.asIntN(64, version)
      : version;
    switch (cls.type) {
      case "resource":
        stageResource(cls.kind, cls.id, stored, state, value);
        break;
      case "audit":
        upsertAudit.run(
          cls.kind,
          cls.resourceId,
          archivedAt,
          prevKey,
          stored,
          state,
          value,
        );
        break;
      case "badger-internal":
        upsertOther.run(prevKey, CLASS_INTERNAL, null, stored, state);
        break;
      case "invalid":
        upsertOther.run(prevKey, CLASS_INVALID, cls.reason, stored, state);
        break;
    }
  };

  staging.exec("BEGIN");
  try {
    for await (
      const record of readBadgerRecordBodies(stream, {
        name,
        totalBytes,
        onProgress: (bytesRead, total) => {
          summary.bytesRead = bytesRead;
          onProgress?.(bytesRead, total);
        },
      })
    ) {
      summary.records++;
      summary.kvs += forEachKV(record.body, visit, record.offset, name);
    }
    staging.exec("COMMIT");
    return counted;
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw sqliteFailure(
      `import of ${name} failed while staging it in a temporary database ` +
        `(${messageOf(error)}); nothing was written to the target database` +
        (sqliteErrorCode(error) === "disk_full"
          ? "; free space or pass another tempDir"
          : ""),
      error,
    );
  }
}
