/**
 * The merge of `copyStore` (option `merge`): a store's rows written into a non-empty
 * target as new changes of it, in the copy's one target transaction, and verified at
 * the end (every source row is there, checked batch by batch; each table holds what it
 * held before plus what the merge added; the revision moved by the writes).
 *
 * @module
 */
import { CopyVerificationError, StoreError } from "../errors.ts";
import type {
  CopySource,
  MergeMode,
  ResourceMerge,
  TargetTransaction,
} from "./endpoint.ts";
import { type CopiedTable, type CopyValue, TABLES } from "./tables.ts";

/** What a merge did (`CopyResult.merge`). */
export interface MergeSummary {
  /** The mode: what happened to resources the target held with other content. */
  mode: MergeMode;
  /** The target's revision before the merge. */
  revisionBefore: number;
  /** Resources inserted, replaced, skipped (kept) and unchanged (already equal). */
  resources: ResourceMerge;
  /** Snapshots appended to the target's histories. */
  snapshotsAdded: number;
  /** Snapshots of the source already in the target (not duplicated). */
  snapshotsPresent: number;
  /** Orphaned snapshots appended. */
  orphansAdded: number;
  /** Orphaned snapshots of the source already in the target. */
  orphansPresent: number;
  /** Message schemas the target did not have (matched by type name and digest). */
  schemasAdded: number;
}

/** The merged tables, in write order (the source's change log is not merged). */
const MERGED = TABLES.filter((spec) => spec.name !== "resource_changes");

/**
 * Merges `source` into the target that `tx` writes, which held `before` (rows per
 * table, and `revision`); returns what it did and what the target holds after.
 * Throws {@linkcode CopyVerificationError} on a difference.
 */
export async function mergeInto(
  source: CopySource,
  tx: TargetTransaction,
  options: {
    label: string;
    mode: MergeMode;
    batchSize: number;
    before: Record<string, number>;
    /** Rows of the merged tables of the source (for the progress total). */
    total: number;
    onProgress?: (
      progress: { table: CopiedTable; done: number; total: number },
    ) => void;
  },
): Promise<{ summary: MergeSummary; after: Record<string, number> }> {
  const { label, mode, batchSize, before, total, onProgress } = options;
  const writer = await tx.merge(mode);
  const summary: MergeSummary = {
    mode,
    revisionBefore: before.revision,
    resources: { inserted: 0, replaced: 0, skipped: 0, unchanged: 0 },
    snapshotsAdded: 0,
    snapshotsPresent: 0,
    orphansAdded: 0,
    orphansPresent: 0,
    schemasAdded: 0,
  };
  let done = 0;
  for (const spec of MERGED) {
    onProgress?.({ table: spec.name, done, total });
    for await (const batch of source.rows(spec, batchSize)) {
      switch (spec.name) {
        case "message_schemas":
          summary.schemasAdded += await writer.schemas(batch);
          break;
        case "resources": {
          const merged = await writer.resources(batch);
          for (const key of Object.keys(merged) as (keyof ResourceMerge)[]) {
            summary.resources[key] += merged[key];
          }
          break;
        }
        case "resource_audit": {
          const added = await writer.snapshots(batch);
          summary.snapshotsAdded += added;
          summary.snapshotsPresent += batch.length - added;
          break;
        }
        case "resource_audit_orphans": {
          const added = await writer.orphans(batch);
          summary.orphansAdded += added;
          summary.orphansPresent += batch.length - added;
          break;
        }
      }
      done += batch.length;
      onProgress?.({ table: spec.name, done, total });
    }
  }
  await writer.finish();
  const written = summary.resources.inserted + summary.resources.replaced;
  const expected: Record<string, number> = {
    message_schemas: before.message_schemas + summary.schemasAdded,
    resources: before.resources + summary.resources.inserted,
    resource_audit: before.resource_audit + summary.snapshotsAdded,
    resource_audit_orphans: before.resource_audit_orphans +
      summary.orphansAdded,
    resource_changes: before.resource_changes + written,
    revision: before.revision + written,
  };
  const after = await tx.occupancy();
  for (const [table, want] of Object.entries(expected)) {
    if (after[table] !== want) {
      throw new CopyVerificationError(
        label,
        table,
        `${want} (before the merge ${before[table]}, plus what it wrote)`,
        String(after[table]),
      );
    }
  }
  return { summary, after };
}

/** A source schema id as the target's; throws on an id the source did not list. */
export function mapSchemaId(
  ids: ReadonlyMap<number, number>,
  value: CopyValue,
  label: string,
): number | null {
  if (value === null) return null;
  const mapped = ids.get(Number(value));
  if (mapped === undefined) {
    throw new StoreError(
      `merge into ${label}: the source refers to message schema ${
        String(value)
      }, which it does not hold`,
    );
  }
  return mapped;
}
