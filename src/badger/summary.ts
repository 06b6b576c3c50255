/**
 * What an import is asked to do and what it reports: the options and summary types of
 * `importBadgerBackup`.
 *
 * @module
 */

/** A key that was not imported because it cannot be mapped to (kind, id). */
export interface InvalidBadgerKey {
  /** The key bytes in lowercase hex. */
  keyHex: string;
  /** Why it cannot be imported. */
  reason: string;
}

/** Options of `importBadgerBackup`. */
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

/**
 * A summary with every count at zero, for an import of `source` (a path or `null`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { emptySummary } from "./summary.ts";
 *
 * assert.equal(emptySummary("dump.bak", false, 10).keysSeen, 0);
 * ```
 */
export function emptySummary(
  source: string | null,
  dryRun: boolean,
  totalBytes: number | undefined,
): ImportSummary {
  return {
    source,
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
}
