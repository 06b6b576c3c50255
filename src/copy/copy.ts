/**
 * `copyStore(from, to)`: a whole store from one backend to another (SQLite or
 * PostgreSQL, either way), exactly: every table row with its ids, revisions and times,
 * the change log and the id sequences, so histories keep their order and watchers their
 * revisions. Rows stream in batches (memory stays bounded whatever the size), the
 * target is written in one transaction, and before it commits the target's row counts
 * and per-table checksums are compared with the source's: any difference rolls back.
 *
 * @module
 */
import { resolve } from "node:path";
import {
  CopyVerificationError,
  StoreError,
  TargetNotEmptyError,
} from "../errors.ts";
import {
  isPostgresUrl,
  sqlitePath,
  storeLabel,
} from "../postgres/connection.ts";
import type {
  CopySource,
  CopyTarget,
  MergeMode,
  RevisionState,
} from "./endpoint.ts";
import { mergeInto, type MergeSummary } from "./merge.ts";
import { openSqliteSource, openSqliteTarget } from "./sqlite.ts";
import { openPostgresSource, openPostgresTarget } from "./postgres.ts";
import { type CopiedTable, TABLES, type TableTally, Tally } from "./tables.ts";

/** Options of {@linkcode copyStore}. */
export interface CopyOptions {
  /** PostgreSQL source: the schema holding the store (default `public`). */
  fromSchema?: string;
  /** PostgreSQL target: the schema to fill (default `public`; created if missing). */
  toSchema?: string;
  /** Rows per batch read and written (default 2,000): bounds memory. */
  batchSize?: number;
  /** Called after every batch, e.g. to draw a progress bar. */
  onProgress?: (progress: CopyProgress) => void;
  /**
   * How to write into a target that is not empty (without it, such a target is
   * refused with {@linkcode TargetNotEmptyError}): the source's resources become new
   * changes of the target, and a resource the target already holds with other content
   * is kept (`"skip"`) or replaced by the source's (`"overwrite"`). Into an empty
   * target it changes nothing: the copy is exact. See {@linkcode copyStore}.
   */
  merge?: MergeMode;
}

/** Where a copy is, for {@linkcode CopyOptions.onProgress}. */
export interface CopyProgress {
  /** The table being copied. */
  table: CopiedTable;
  /** Rows copied of all tables so far. */
  done: number;
  /** Rows of all tables to copy. */
  total: number;
}

/** What {@linkcode copyStore} did. */
export interface CopyResult {
  /** The source (passwords redacted). */
  from: string;
  /** The target (passwords redacted). */
  to: string;
  /** Rows and checksum of each table, equal on both ends (after a merge: see `merge`). */
  tables: Record<CopiedTable, TableTally>;
  /** The current revision, the same on both ends. */
  revision: number;
  /** Changes at or below this revision are not in the log (on both ends). */
  compactedThrough: number;
  /**
   * True when the source's revision was above its newest logged change and the target
   * (SQLite, which derives its revision from the log) could only keep the revision by
   * marking the log compacted: watchers of the copy list again.
   */
  changeLogDropped: boolean;
  /** Seconds the copy took. */
  seconds: number;
  /**
   * Present when the source was merged into a non-empty target (option `merge`); then
   * `tables` gives the rows of the target's tables after the merge (with `checksum`
   * left empty: a merge is verified by presence and counts), and `revision` and
   * `compactedThrough` are the target's.
   */
  merge?: MergeSummary;
}

function samePlace(
  from: string,
  to: string,
  options: CopyOptions,
): boolean {
  if (isPostgresUrl(from) && isPostgresUrl(to)) {
    return from === to &&
      (options.fromSchema ?? "public") === (options.toSchema ?? "public");
  }
  if (isPostgresUrl(from) || isPostgresUrl(to)) return false;
  return resolve(sqlitePath(from)) === resolve(sqlitePath(to));
}

/**
 * Copies the whole store at `from` into the empty store at `to`. Each is a path or
 * `file:` URL (SQLite) or a `postgres://` URL. The target is created and migrated if
 * needed; a target that holds anything (rows, or a revision above 0) is refused
 * ({@linkcode TargetNotEmptyError}) before a row is written unless `merge` is given.
 * Resources, snapshots (same ids, so the same history order), orphaned snapshots,
 * message schemas, revisions and the change log arrive as they were; the id sequences
 * continue where the source's were. The target is written in one transaction,
 * verified (row counts and checksums per table, revision state) before the commit,
 * and rolled back on any failure ({@linkcode CopyVerificationError} on a mismatch); a
 * new SQLite file appears, and a new PostgreSQL schema is created (and migrated), only
 * when the copy commits.
 *
 * **Merge** (`merge: "skip" | "overwrite"`, into a non-empty target; into an empty one
 * it changes nothing): the source's rows are written as new changes of the target, in
 * one target transaction, in batches.
 * - A resource the target lacks is inserted; one it holds with other bytes or message
 *   type is kept (`skip`) or replaced by the source's (`overwrite`; its time is the
 *   later of both); one with the same bytes and type is not rewritten. Each write
 *   takes the target's next revision (in the source's kind, id order) and a
 *   change-log entry, so the target's watchers see it and its revisions never repeat
 *   or go back. The source's change log and revisions are not copied.
 * - Snapshots and orphaned snapshots are appended with new ids (above every id of the
 *   target), unless an equal one (kind, resource id, archived time, version hash, tag,
 *   bytes) is there: a history reads in time order, and running the same merge again
 *   writes nothing. A snapshot records the merge's revision, or, when the target has a
 *   newer snapshot of its resource, that one's revision, so revisions keep growing
 *   along every history and what `getResourceAt` answered for an earlier revision
 *   stays the same.
 * - Message schemas are matched by type name and digest; missing ones are added.
 * - Verified before the commit: after each batch, every row of it is in the target
 *   (with the source's content, unless skipped); at the end, each table holds what it
 *   held plus what the merge added, and the revision moved by one per write. The
 *   result's `merge` says what was inserted, replaced, skipped and appended.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyStore, openStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const dir = await Deno.makeTempDir();
 * using store = openStore(`${dir}/a.sqlite`);
 * store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * store.saveAudit(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }), { tag: "v1" });
 *
 * const result = await copyStore(`${dir}/a.sqlite`, `${dir}/b.sqlite`);
 * assert.equal(result.tables.resources.rows, 1);
 * assert.equal(result.tables.resource_audit.rows, 1);
 * using copy = openStore(`${dir}/b.sqlite`);
 * assert.equal(copy.currentRevision(), store.currentRevision());
 * assert.equal(copy.getAuditByTag(StructSchema, "agent", "a1", "v1").fields.v.kind.value, 1);
 *
 * // Merge: the target keeps its own resources and gets the source's new ones.
 * copy.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 2 }));
 * store.saveResource(StructSchema, "agent", "a2", fromJson(StructSchema, { v: 3 }));
 * const before = copy.currentRevision();
 * const merged = await copyStore(`${dir}/a.sqlite`, `${dir}/b.sqlite`, { merge: "skip" });
 * assert.deepEqual(merged.merge?.resources, { inserted: 1, replaced: 0, skipped: 1, unchanged: 0 });
 * assert.deepEqual(copy.changesSince(before), [
 *   { revision: before + 1, kind: "agent", id: "a2", type: "put" },
 * ]);
 * assert.equal(copy.getResource(StructSchema, "agent", "a1").fields.v.kind.value, 2);
 * ```
 */
export async function copyStore(
  from: string,
  to: string,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const started = performance.now();
  const batchSize = options.batchSize ?? 2000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new StoreError(
      `batchSize must be a whole number >= 1, got ${String(batchSize)}`,
    );
  }
  if (
    options.merge !== undefined && !MERGE_MODES.includes(options.merge)
  ) {
    throw new StoreError(
      `merge is one of ${MERGE_MODES.join(", ")}, got ${
        JSON.stringify(options.merge)
      }`,
    );
  }
  if (samePlace(from, to, options)) {
    throw new StoreError(
      `copy from ${
        describe(from, options.fromSchema)
      } to itself: give another target`,
    );
  }
  const source = isPostgresUrl(from)
    ? await openPostgresSource(from, options.fromSchema ?? "public")
    : openSqliteSource(sqlitePath(from));
  let target: CopyTarget | undefined;
  try {
    target = isPostgresUrl(to)
      ? await openPostgresTarget(to, options.toSchema ?? "public")
      : openSqliteTarget(sqlitePath(to));
    const opened = target;
    const result = await source.snapshot(() =>
      copyInto(source, opened, batchSize, options)
    );
    await closeTarget(target);
    target = undefined;
    return {
      ...result,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (target !== undefined) await closeTarget(target).catch(() => {});
    await source.close();
  }
}

async function closeTarget(target: CopyTarget): Promise<void> {
  await target.close();
}

function describe(location: string, schema = "public"): string {
  return isPostgresUrl(location) ? storeLabel(location, schema) : location;
}

/** The merge modes (option `merge`, CLI `--merge`). */
export const MERGE_MODES: readonly MergeMode[] = ["skip", "overwrite"];

async function copyInto(
  source: CopySource,
  target: CopyTarget,
  batchSize: number,
  options: CopyOptions,
): Promise<Omit<CopyResult, "seconds">> {
  const onProgress = options.onProgress;
  const counts = new Map<CopiedTable, number>();
  for (const spec of TABLES) counts.set(spec.name, await source.count(spec));
  const sourceState = await source.state();
  // A SQLite store's revision is its newest logged change (or the compaction mark): a
  // source revision above both can only be kept there by marking the log compacted.
  const dropLog = target.revisionFromLog &&
    sourceState.revision >
      Math.max(sourceState.newestChange, sourceState.compactedThrough);
  const state: RevisionState = {
    revision: sourceState.revision,
    compactedThrough: dropLog
      ? sourceState.revision
      : sourceState.compactedThrough,
    auditSequence: sourceState.auditSequence,
  };
  if (dropLog) counts.set("resource_changes", 0);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return await target.transaction(async (tx) => {
    const occupied = await tx.occupancy();
    if (Object.values(occupied).some((n) => n > 0)) {
      if (options.merge === undefined) {
        throw new TargetNotEmptyError(target.label, occupied);
      }
      const { summary, after } = await mergeInto(source, tx, {
        label: target.label,
        mode: options.merge,
        batchSize,
        before: occupied,
        total: total - (counts.get("resource_changes") ?? 0),
        onProgress,
      });
      // Counts only: a merge is verified by presence and counts (checksums of the
      // whole target would cost a pass over every row it holds).
      const tables = {} as Record<CopiedTable, TableTally>;
      for (const spec of TABLES) {
        tables[spec.name] = { rows: after[spec.name], checksum: "" };
      }
      const state = await tx.state();
      return {
        from: source.label,
        to: target.label,
        tables,
        revision: state.revision,
        compactedThrough: state.compactedThrough,
        changeLogDropped: false,
        merge: summary,
      };
    }
    const expected = {} as Record<CopiedTable, TableTally>;
    let done = 0;
    for (const spec of TABLES) {
      const tally = new Tally(spec.types);
      onProgress?.({ table: spec.name, done, total });
      if (!(dropLog && spec.name === "resource_changes")) {
        for await (const batch of source.rows(spec, batchSize)) {
          for (const row of batch) tally.add(row);
          await tx.write(spec, batch);
          done += batch.length;
          onProgress?.({ table: spec.name, done, total });
        }
      }
      await tx.endTable(spec);
      expected[spec.name] = tally.result;
    }
    await tx.setState(state);
    for (const spec of TABLES) {
      const actual = await tx.tally(spec);
      const want = expected[spec.name];
      if (actual.rows !== want.rows) {
        throw new CopyVerificationError(
          target.label,
          spec.name,
          `${want.rows} rows`,
          `${actual.rows} rows`,
        );
      }
      if (actual.checksum !== want.checksum) {
        throw new CopyVerificationError(
          target.label,
          spec.name,
          `checksum ${want.checksum}`,
          `checksum ${actual.checksum}`,
        );
      }
    }
    const written = await tx.state();
    for (
      const key of ["revision", "compactedThrough", "auditSequence"] as const
    ) {
      if (written[key] !== state[key]) {
        throw new CopyVerificationError(
          target.label,
          key,
          String(state[key]),
          String(written[key]),
        );
      }
    }
    return {
      from: source.label,
      to: target.label,
      tables: expected,
      revision: state.revision,
      compactedThrough: state.compactedThrough,
      changeLogDropped: dropLog,
    };
  });
}
