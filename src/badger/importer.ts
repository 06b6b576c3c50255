/**
 * Imports a `badger backup` dump into a protostore database, all or nothing.
 *
 * Phase 1 streams every KV into a private staging SQLite file in a temporary directory
 * (owner-only, deleted afterwards), keeping only the highest version of each key: Badger
 * writes every version of a key, split across records and key ranges, so the newest one
 * is only known at the end of the file. A corrupt or truncated dump fails here, before
 * the target database is touched. Phase 2 attaches the staging file and applies it in
 * one `BEGIN IMMEDIATE` transaction with set-based SQL: resources are upserted in place
 * (history kept, identical rows untouched) and legacy audit snapshots are added to
 * `resource_audit`, or to `resource_audit_orphans` when their resource does not exist,
 * unless the same snapshot is already there. Importing a dump twice changes nothing the
 * second time.
 *
 * A process killed during phase 1 leaves the target untouched and its
 * `protostore-badger-<pid>-*` staging directory behind, which the next import removes
 * once that process is gone; killed during phase 2, SQLite rolls the open transaction
 * back. Memory stays bounded by the largest record plus SQLite's
 * caches; the staging file needs about the dump's size on disk.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { StoreError } from "../errors.ts";
import { messageOf } from "../sqlite/connection.ts";
import {
  BADGER_BIT_DELETE,
  type BadgerKeyClass,
  type BadgerKVView,
  classifyKey,
  forEachKV,
  openBadgerBackup,
  readBadgerRecordBodies,
} from "./reader.ts";

/** A key that was not imported because it cannot be mapped to (kind, id). */
export interface InvalidBadgerKey {
  /** The key bytes in lowercase hex. */
  keyHex: string;
  /** Why it cannot be imported. */
  reason: string;
}

/** Options of {@linkcode importBadger}. */
export interface ImportBadgerOptions {
  /** Read, validate and count everything, but write nothing to the database. */
  dryRun?: boolean;
  /** The time TTLs are checked against and written as resources' `updated_at`. */
  now?: Date;
  /** Called as the dump is read, with bytes read so far and the file size if known. */
  onProgress?: (bytesRead: number, totalBytes?: number) => void;
  /** Directory for the staging file (needs about the dump's size); default the OS temp dir. */
  tempDir?: string;
  /** Called for every invalid key (live in the dump), in key order, e.g. to print it. */
  onInvalidKey?: (key: InvalidBadgerKey) => void;
  /** How many invalid keys {@linkcode ImportSummary.invalidKeys} lists; default 1000. */
  maxListedInvalidKeys?: number;
}

/**
 * What an import found and did. Counts are of distinct keys, by their newest version in
 * the dump (not of versions), and describe what the dump holds: `resources` counts every
 * live resource key, including those already identical in the database
 * (`resourcesUnchanged`, not written). In a dry run the same numbers are computed
 * against the database as it is, without writing.
 *
 * Every key lands in exactly one count: `!badger!` keys in `skippedInternal`; otherwise
 * a tombstoned or expired newest version in `skippedDeleted` / `skippedExpired` (also
 * for unmappable keys: they do not exist in Badger either); otherwise by key class.
 * `keysSeen = resources + auditRecords + orphanAuditRecords + skippedDeleted +
 * skippedExpired + skippedInvalid + skippedInternal`.
 */
export interface ImportSummary {
  /** The dump's path, or `null` when a stream was imported. */
  source: string | null;
  /** True when nothing was written. */
  dryRun: boolean;
  /** Length-prefixed records read. */
  records: number;
  /** KV entries read (all versions, stream markers included). */
  kvs: number;
  /** Distinct keys in the dump. */
  keysSeen: number;
  /** Live resource keys imported (written, or already identical). */
  resources: number;
  /** Of `resources`: already stored with identical bytes, left untouched. */
  resourcesUnchanged: number;
  /** `resources` per kind. */
  kinds: Record<string, number>;
  /** Live legacy audit snapshots whose resource exists after the import. */
  auditRecords: number;
  /** Live legacy audit snapshots whose resource does not exist (kept as orphans). */
  orphanAuditRecords: number;
  /**
   * Of the two above: snapshots not inserted because a row with the same kind, resource
   * id, `archived_at` and bytes was already there (from an earlier import). Distinct
   * keys of one dump are distinct snapshots, even when those four values coincide.
   */
  auditUnchanged: number;
  /** Keys whose newest version is a tombstone (`meta & 0x01`). */
  skippedDeleted: number;
  /** Keys whose newest version had expired (`expires_at <= now`). */
  skippedExpired: number;
  /** Live keys that cannot be mapped: not UTF-8, no `/`, empty kind or id. */
  skippedInvalid: number;
  /** Badger's own `!badger!` keys. */
  skippedInternal: number;
  /** Stream-done markers (KVs without data) skipped. */
  streamMarkers: number;
  /** The first `maxListedInvalidKeys` invalid keys, in key order. */
  invalidKeys: InvalidBadgerKey[];
  /** True when `invalidKeys` does not list all `skippedInvalid` keys. */
  invalidKeysTruncated: boolean;
  /** Bytes of the dump read. */
  bytesRead: number;
  /** The dump's size when known (a file), else `null`. */
  totalBytes: number | null;
  /** Wall time of the whole import. */
  elapsedMs: number;
}

const STAGING = "protostore_badger_staging";
const STATE_LIVE = 0;
const STATE_DELETED = 1;
const STATE_EXPIRED = 2;
const CLASS_INTERNAL = 2;
const CLASS_INVALID = 3;

// Unsigned 64-bit "newer": versions above 2^63 - 1 are stored as negative int64.
const newer = (table: string) =>
  `(excluded.version < 0) > (${table}.version < 0) OR ` +
  `((excluded.version < 0) = (${table}.version < 0) AND excluded.version > ${table}.version)`;

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
 * Imports a `badger backup` dump (a file path or a byte stream) into an open, migrated
 * protostore database connection. All or nothing: the dump is read and validated
 * completely before one transaction writes it; a corrupt or truncated dump throws a
 * {@linkcode StoreError} naming the byte offset and leaves the database as it was.
 * Idempotent: a second import of the same dump changes nothing.
 *
 * Mapping: for each key only its highest version counts; tombstones and expired keys
 * are skipped; `<kind>/<kind>_audit/<resourceId>/<unixNanos>` becomes an audit snapshot
 * archived at that time (an orphan if the resource does not exist after the import);
 * any other `<kind>/<id>` becomes a resource, overwriting the same (kind, id) in place
 * like a save (its history is kept; identical rows are not touched); `!badger!` keys and
 * unmappable keys are skipped and counted. Must not be called inside a transaction.
 *
 * @param db An open connection to a migrated protostore database.
 * @param source The dump's path, or a stream of its bytes.
 * @param options Dry run, clock, progress and invalid-key callbacks, temp directory.
 * @returns What was found and imported.
 *
 * @example Import a one-key dump
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { importBadger } from "./importer.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const db = new DatabaseSync(`${dir}/db.sqlite`);
 * db.exec(`CREATE TABLE resources (kind TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,
 *   updated_at TEXT NOT NULL, schema_id INTEGER, PRIMARY KEY (kind, id)) WITHOUT ROWID;
 * CREATE TABLE resource_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
 *   resource_id TEXT NOT NULL, data BLOB NOT NULL, archived_at TEXT NOT NULL,
 *   version_hash TEXT, tag TEXT, schema_id INTEGER);
 * CREATE TABLE resource_audit_orphans (id INTEGER PRIMARY KEY, kind TEXT NOT NULL,
 *   resource_id TEXT NOT NULL, data BLOB NOT NULL, archived_at TEXT NOT NULL,
 *   version_hash TEXT, tag TEXT, schema_id INTEGER);`);
 * // One record: KV { key: "a/1", value: "x", version: 1 }
 * const body = [0x0a, 0x0a, 0x0a, 0x03, 0x61, 0x2f, 0x31, 0x12, 0x01, 0x78, 0x20, 0x01];
 * const dump = new Uint8Array([body.length, 0, 0, 0, 0, 0, 0, 0, ...body]);
 *
 * const summary = await importBadger(db, ReadableStream.from([dump]));
 * assert.equal(summary.resources, 1);
 * assert.deepEqual(summary.kinds, { a: 1 });
 * db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function importBadger(
  db: DatabaseSync,
  source: string | ReadableStream<Uint8Array>,
  options: ImportBadgerOptions = {},
): Promise<ImportSummary> {
  const started = performance.now();
  const dryRun = options.dryRun ?? false;
  const now = options.now ?? new Date();
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) {
    throw new StoreError("importBadger: options.now is an invalid Date");
  }
  const maxListed = options.maxListedInvalidKeys ?? 1000;
  requireNoTransaction(db);

  let stream: ReadableStream<Uint8Array>;
  let totalBytes: number | undefined;
  const name = typeof source === "string" ? source : "Badger backup stream";
  if (typeof source === "string") {
    ({ stream, size: totalBytes } = await openBadgerBackup(source));
  } else {
    stream = source;
  }

  const summary: ImportSummary = {
    source: typeof source === "string" ? source : null,
    dryRun,
    records: 0,
    kvs: 0,
    keysSeen: 0,
    resources: 0,
    resourcesUnchanged: 0,
    kinds: {},
    auditRecords: 0,
    orphanAuditRecords: 0,
    auditUnchanged: 0,
    skippedDeleted: 0,
    skippedExpired: 0,
    skippedInvalid: 0,
    skippedInternal: 0,
    streamMarkers: 0,
    invalidKeys: [],
    invalidKeysTruncated: false,
    bytesRead: 0,
    totalBytes: totalBytes ?? null,
    elapsedMs: 0,
  };

  let dir: string;
  try {
    const parent = options.tempDir ?? tmpdir();
    await removeAbandonedStaging(parent);
    dir = await Deno.makeTempDir({
      dir: parent,
      prefix: `${STAGING_PREFIX}${Deno.pid}-`,
    });
  } catch (error) {
    await stream.cancel().catch(() => {});
    throw new StoreError(
      `cannot create a staging directory for the import in ${
        options.tempDir ?? "the temp directory"
      }: ${messageOf(error)}; pass another tempDir`,
      { cause: error },
    );
  }
  const stagingPath = join(dir, "staging.sqlite");
  let staging: DatabaseSync | undefined;
  try {
    staging = openStaging(stagingPath, dir);
    const resources = await stageDump(
      staging,
      stream,
      name,
      totalBytes,
      nowMs,
      options,
      summary,
    );
    const liveAudits = countStaged(
      staging,
      resources,
      summary,
      maxListed,
      options.onInvalidKey,
    );
    staging.close();
    staging = undefined;
    applyStaged(
      db,
      stagingPath,
      now.toISOString(),
      dryRun,
      liveAudits,
      summary,
      name,
    );
  } catch (error) {
    // Closes the file if the error came before the stream was read to its end.
    await stream.cancel().catch(() => {});
    throw error;
  } finally {
    if (staging?.isOpen) staging.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  summary.elapsedMs = Math.round(performance.now() - started);
  return summary;
}

const STAGING_PREFIX = "protostore-badger-";

/**
 * Removes staging directories of imports whose process no longer exists (killed before
 * it could clean up). Liveness is read from /proc; without it nothing is removed.
 */
async function removeAbandonedStaging(parent: string): Promise<void> {
  const procExists = (pid: string) => {
    try {
      Deno.statSync(`/proc/${pid}`);
      return true;
    } catch {
      return false;
    }
  };
  if (!procExists("self")) return;
  try {
    for await (const entry of Deno.readDir(parent)) {
      const pid = entry.isDirectory && entry.name.startsWith(STAGING_PREFIX)
        ? /^(\d+)-/.exec(entry.name.slice(STAGING_PREFIX.length))?.[1]
        : undefined;
      if (pid !== undefined && !procExists(pid)) {
        await Deno.remove(join(parent, entry.name), { recursive: true }).catch(
          () => {},
        );
      }
    }
  } catch {
    // A temp directory we cannot list holds nothing we could clean.
  }
}

function requireNoTransaction(db: DatabaseSync): void {
  if (!db.isOpen) {
    throw new StoreError("importBadger: the database connection is closed");
  }
  if (db.isTransaction) {
    throw new StoreError(
      "importBadger cannot run inside an open transaction: it runs its own; commit first",
    );
  }
}

// The staging database is private to this import: no journal, no fsync, one writer.
// It is not opened through the connection module on purpose (different pragmas).
function openStaging(path: string, dir: string): DatabaseSync {
  try {
    const staging = new DatabaseSync(path);
    staging.exec(STAGING_SCHEMA);
    return staging;
  } catch (error) {
    throw new StoreError(
      `cannot create the import's staging database in ${dir}: ${
        messageOf(error)
      }`,
      { cause: error },
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

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) {
    s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  }
  return s;
}

/** Outcome counts of the resource keys, kept while staging (one row per key). */
interface StagedResources {
  /** Keys by state of their newest version: live, deleted, expired. */
  byState: number[];
  /** Live keys per kind. */
  kinds: Map<string, number>;
}

/**
 * Phase 1: every KV into the staging tables, keeping the newest version per key.
 * Returns the resource counts.
 */
async function stageDump(
  staging: DatabaseSync,
  stream: ReadableStream<Uint8Array>,
  name: string,
  totalBytes: number | undefined,
  nowMs: number,
  options: ImportBadgerOptions,
  summary: ImportSummary,
): Promise<StagedResources> {
  const nowSec = Math.floor(nowMs / 1000);
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
  const onProgress = options.onProgress;
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
    throw new StoreError(
      `import of ${name} failed while staging it in a temporary database ` +
        `(${messageOf(error)}); nothing was written to the target database` +
        (/full|space/i.test(messageOf(error))
          ? "; free space or pass another tempDir"
          : ""),
      { cause: error },
    );
  }
}

type Row = Record<string, number | string | null | Uint8Array>;

/**
 * Fills the summary's counts: resources from the counts kept while staging, the rest
 * from the (small) audit and other staging tables, which hold one row per key. Lists
 * invalid keys. Returns the number of live audit snapshots.
 */
function countStaged(
  staging: DatabaseSync,
  resources: StagedResources,
  summary: ImportSummary,
  maxListed: number,
  onInvalidKey: ((key: InvalidBadgerKey) => void) | undefined,
): number {
  const add = (state: number, count: number) => {
    if (state === STATE_DELETED) summary.skippedDeleted += count;
    else if (state === STATE_EXPIRED) summary.skippedExpired += count;
  };
  const [live, deleted, expired] = resources.byState;
  summary.keysSeen += live + deleted + expired;
  summary.resources = live;
  add(STATE_DELETED, deleted);
  add(STATE_EXPIRED, expired);
  const kinds: Record<string, number> = {};
  for (const kind of [...resources.kinds.keys()].sort()) {
    const n = resources.kinds.get(kind)!;
    if (n === 0) continue;
    // defineProperty: a kind named "__proto__" must become an own property.
    Object.defineProperty(kinds, kind, {
      value: n,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  summary.kinds = kinds;
  let liveAudits = 0;
  for (
    const row of staging.prepare(
      "SELECT state, count(*) AS n FROM aud GROUP BY state",
    ).all() as Row[]
  ) {
    const n = row.n as number;
    summary.keysSeen += n;
    // Live snapshots are split into attached and orphans in phase 2.
    if (row.state === STATE_LIVE) liveAudits = n;
    else add(row.state as number, n);
  }
  for (
    const row of staging.prepare(
      "SELECT cls, state, count(*) AS n FROM other GROUP BY cls, state",
    ).all() as Row[]
  ) {
    const n = row.n as number;
    summary.keysSeen += n;
    if (row.cls === CLASS_INTERNAL) summary.skippedInternal += n;
    else if (row.state === STATE_LIVE) summary.skippedInvalid += n;
    else add(row.state as number, n);
  }
  if (summary.skippedInvalid > 0) {
    const rows = staging.prepare(
      `SELECT key, reason FROM other WHERE cls = ${CLASS_INVALID} AND state = 0 ORDER BY key`,
    ).iterate() as Iterable<Row>;
    for (const row of rows) {
      const invalid = {
        keyHex: toHex(row.key as Uint8Array),
        reason: row.reason as string,
      };
      onInvalidKey?.(invalid);
      if (summary.invalidKeys.length < maxListed) {
        summary.invalidKeys.push(invalid);
      } else if (onInvalidKey === undefined) break;
    }
    summary.invalidKeysTruncated =
      summary.invalidKeys.length < summary.skippedInvalid;
  }
  return liveAudits;
}

const S = STAGING;
const LIVE_VALUE = "coalesce(a.value, x'')";
const RESOURCE_EXISTS =
  "EXISTS (SELECT 1 FROM main.resources AS r WHERE r.kind = a.kind AND r.id = a.resource_id)";
const RESOURCE_STAGED =
  `EXISTS (SELECT 1 FROM ${S}.res AS s WHERE s.kind = a.kind AND s.id = a.resource_id AND s.state = 0)`;
const sameSnapshotIn = (table: string) =>
  `EXISTS (SELECT 1 FROM main.${table} AS x WHERE x.kind = a.kind AND ` +
  `x.resource_id = a.resource_id AND x.archived_at = a.archived_at AND x.data = ${LIVE_VALUE})`;

const UPSERT_RESOURCES = `
  INSERT INTO main.resources (kind, id, data, updated_at, schema_id)
  SELECT kind, id, coalesce(value, x''), ?, NULL FROM ${S}.res WHERE state = 0
  ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data,
    updated_at = excluded.updated_at, schema_id = NULL
  WHERE resources.data IS NOT excluded.data`;

// Which live snapshots are already in the target (in the table they belong to once the
// resources are in). Kept in the staging file: an INSERT whose SELECT reads its own target
// table is materialised by SQLite in a temp table first, which is memory here.
const FIND_PRESENT = `
  INSERT INTO ${S}.present (key)
  SELECT a.key FROM ${S}.aud AS a
  WHERE a.state = 0 AND CASE WHEN ${RESOURCE_EXISTS}
    THEN ${sameSnapshotIn("resource_audit")}
    ELSE ${sameSnapshotIn("resource_audit_orphans")} END`;

// In (kind, resource_id, archived_at) order: the staging table's key order, no sort.
const insertSnapshots = (table: string, attached: boolean) => `
  INSERT INTO main.${table} (kind, resource_id, data, archived_at)
  SELECT a.kind, a.resource_id, ${LIVE_VALUE}, a.archived_at FROM ${S}.aud AS a
  WHERE a.state = 0 AND ${attached ? "" : "NOT "}${RESOURCE_EXISTS}
    AND NOT EXISTS (SELECT 1 FROM ${S}.present AS p WHERE p.key = a.key)
  ORDER BY a.kind, a.resource_id, a.archived_at, a.key`;

/** Phase 2: one transaction (or, in a dry run, read-only counting) against `db`. */
function applyStaged(
  db: DatabaseSync,
  stagingPath: string,
  nowIso: string,
  dryRun: boolean,
  liveAudits: number,
  summary: ImportSummary,
  name: string,
): void {
  requireNoTransaction(db);
  try {
    db.prepare(`ATTACH DATABASE ? AS ${S}`).run(stagingPath);
  } catch (error) {
    throw new StoreError(
      `import of ${name}: cannot attach the staging database: ${
        messageOf(error)
      }`,
      { cause: error },
    );
  }
  let mmapSize = 0;
  try {
    // Memory-mapped reads would put every page the import touches, of the staging file
    // and of a large target, into the process's RSS; read through the page cache
    // instead. (An attached database inherits the connection's default mmap size.)
    db.exec(`PRAGMA ${S}.mmap_size = 0`);
    mmapSize =
      (db.prepare("PRAGMA main.mmap_size").get() as { mmap_size: number })
        .mmap_size;
    if (mmapSize > 0) db.exec("PRAGMA main.mmap_size = 0");
    const count = (sql: string, ...params: string[]) =>
      (db.prepare(sql).get(...params) as { n: number }).n;
    db.exec(dryRun ? "BEGIN" : "BEGIN IMMEDIATE");
    try {
      if (dryRun) {
        summary.resourcesUnchanged = count(
          `SELECT count(*) AS n FROM ${S}.res AS s JOIN main.resources AS r
           ON r.kind = s.kind AND r.id = s.id
           WHERE s.state = 0 AND r.data = coalesce(s.value, x'')`,
        );
        const exists = `(${RESOURCE_EXISTS} OR ${RESOURCE_STAGED})`;
        summary.orphanAuditRecords = count(
          `SELECT count(*) AS n FROM ${S}.aud AS a WHERE a.state = 0 AND NOT ${exists}`,
        );
        summary.auditUnchanged = count(
          `SELECT count(*) AS n FROM ${S}.aud AS a WHERE a.state = 0 AND CASE WHEN ${exists}
           THEN ${sameSnapshotIn("resource_audit")}
           ELSE ${sameSnapshotIn("resource_audit_orphans")} END`,
        );
        db.exec("COMMIT");
      } else {
        const written = db.prepare(UPSERT_RESOURCES).run(nowIso)
          .changes as number;
        summary.resourcesUnchanged = summary.resources - written;
        summary.orphanAuditRecords = count(
          `SELECT count(*) AS n FROM ${S}.aud AS a WHERE a.state = 0 AND NOT ${RESOURCE_EXISTS}`,
        );
        summary.auditUnchanged = db.prepare(FIND_PRESENT).run()
          .changes as number;
        db.prepare(insertSnapshots("resource_audit", true)).run();
        db.prepare(insertSnapshots("resource_audit_orphans", false)).run();
        db.exec("COMMIT");
      }
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    summary.auditRecords = liveAudits - summary.orphanAuditRecords;
  } catch (error) {
    if (error instanceof StoreError) throw error;
    const reason = messageOf(error);
    throw new StoreError(
      `import of ${name} failed while writing to the database, nothing was imported ` +
        `(rolled back): ${reason}` +
        (/locked|busy/i.test(reason)
          ? "; another process holds the write lock, retry"
          : "") +
        (/no such table/i.test(reason) ? "; is the database migrated?" : ""),
      { cause: error },
    );
  } finally {
    try {
      if (mmapSize > 0) db.exec(`PRAGMA main.mmap_size = ${Number(mmapSize)}`);
      db.exec(`DETACH DATABASE ${S}`);
    } catch {
      // Detaching only fails when the connection is unusable; the caller sees the cause.
    }
  }
}
