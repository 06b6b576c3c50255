/**
 * What `copyStore` needs of each end, so that the orchestration is one piece of code for
 * every pair of backends: a source streams rows in batches from one consistent snapshot;
 * a target writes them in one transaction and reports what it holds before committing.
 *
 * @module
 */
import type { CopyValue, TableSpec, TableTally } from "./tables.ts";

/** The revision state of a store, copied as is. */
export interface RevisionState {
  /** The current revision. */
  revision: number;
  /** Changes at or below this revision were compacted away. */
  compactedThrough: number;
  /** The highest snapshot id ever handed out (new snapshots get higher ids). */
  auditSequence: number;
}

/** A store being read. */
export interface CopySource {
  /** The location, for messages (passwords redacted). */
  readonly label: string;
  /** Runs `fn` on one consistent snapshot of the store. */
  snapshot<T>(fn: () => Promise<T>): Promise<T>;
  /** Rows in `spec`'s table (for the progress total). */
  count(spec: TableSpec): Promise<number>;
  /** The revision state, and the newest revision in the change log (0 when empty). */
  state(): Promise<RevisionState & { newestChange: number }>;
  /** The table's rows in `spec.orderBy` order, `batchSize` at a time. */
  rows(spec: TableSpec, batchSize: number): AsyncIterable<CopyValue[][]>;
  /** Releases the connection. */
  close(): Promise<void>;
}

/** A transaction on the store being written. */
export interface TargetTransaction {
  /** Rows already in each table, and the revision: all zero when empty. */
  occupancy(): Promise<Record<string, number>>;
  /** Writes a batch of `spec`'s rows. */
  write(spec: TableSpec, rows: CopyValue[][]): Promise<void>;
  /** No more rows for `spec`. */
  endTable(spec: TableSpec): Promise<void>;
  /** Sets the revision state and id sequences. */
  setState(state: RevisionState): Promise<void>;
  /** Count and checksum of the table as the transaction sees it. */
  tally(spec: TableSpec): Promise<TableTally>;
  /** The revision state as the transaction sees it (auditSequence: at least). */
  state(): Promise<RevisionState>;
  /** Starts merging into the (non-empty) store this transaction writes. */
  merge(mode: MergeMode): Promise<MergeWriter>;
}

/** What a merge does with a resource the target already holds with other content. */
export type MergeMode = "skip" | "overwrite";

/** What a merge did with a batch of resources. */
export interface ResourceMerge {
  /** Absent from the target: inserted. */
  inserted: number;
  /** Present with other bytes or type, mode `overwrite`: replaced. */
  replaced: number;
  /** Present with other bytes or type, mode `skip`: kept as it was. */
  skipped: number;
  /** Present with the same bytes and type: not rewritten. */
  unchanged: number;
}

/**
 * Writes source rows into a non-empty target as new changes of it (see `copyStore`'s
 * merge option). Each method takes a batch of the source's rows (in `TableSpec`
 * columns and order), writes what it must, then checks that the target holds every
 * row of the batch (throwing `CopyVerificationError` if not). Source schema ids are
 * mapped to the target's by (type name, digest): schemas go first.
 */
export interface MergeWriter {
  /** The target's revision: before the merge, then after each resource written. */
  readonly revision: number;
  /** Maps (and adds when missing) message schemas; returns how many were added. */
  schemas(rows: CopyValue[][]): Promise<number>;
  /** Resources, each write at the next revision with a change-log row. */
  resources(rows: CopyValue[][]): Promise<ResourceMerge>;
  /** Snapshots not already in the target, appended with new ids; returns how many. */
  snapshots(rows: CopyValue[][]): Promise<number>;
  /** Orphaned snapshots not already in the target, with new ids; returns how many. */
  orphans(rows: CopyValue[][]): Promise<number>;
  /** Records the revision reached (and wakes the target's watchers). */
  finish(): Promise<void>;
}

/** A store being written. */
export interface CopyTarget {
  /** The location, for messages (passwords redacted). */
  readonly label: string;
  /** Whether the store derives its revision from the change log (SQLite). */
  readonly revisionFromLog: boolean;
  /** Runs `fn` in one transaction, committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: TargetTransaction) => Promise<T>): Promise<T>;
  /** Releases the connection (and removes a new file that was never committed). */
  close(): Promise<void>;
}
