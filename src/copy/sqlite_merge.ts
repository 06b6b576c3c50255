/**
 * The SQLite side of a merge (`copyStore(…, { merge })` into a non-empty SQLite store):
 * row by row with prepared statements inside the target's one write transaction (a
 * local point lookup costs microseconds, so batching in SQL would buy nothing).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { CopyVerificationError } from "../errors.ts";
import { CURRENT_REVISION } from "../store/revisions.ts";
import type { MergeMode, MergeWriter, ResourceMerge } from "./endpoint.ts";
import type { CopyValue } from "./tables.ts";
import { mapSchemaId } from "./merge.ts";

type Bound = string | number | Uint8Array | null;

const SQL = {
  schemaId: "SELECT id FROM message_schemas WHERE type_name = ? AND digest = ?",
  addSchema:
    `INSERT INTO message_schemas (type_name, digest, descriptor_set, created_at)
    VALUES (?, ?, ?, ?) RETURNING id`,
  // Whether the target holds (kind, id), and with the same bytes and type name.
  resource: `SELECT r.data = ?3 AS same_data,
      (SELECT type_name FROM message_schemas WHERE id = r.schema_id)
        IS (SELECT type_name FROM message_schemas WHERE id = ?4) AS same_type
    FROM resources AS r WHERE r.kind = ?1 AND r.id = ?2`,
  insertResource:
    `INSERT INTO resources (kind, id, data, updated_at, schema_id, revision, create_revision)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)`,
  // Times never go backwards along a resource: the later of both.
  replaceResource:
    `UPDATE resources SET data = ?3, schema_id = ?5, revision = ?6,
      updated_at = max(updated_at, ?4)
    WHERE kind = ?1 AND id = ?2`,
  change:
    "INSERT INTO resource_changes (revision, kind, id, deleted) VALUES (?, ?, ?, 0)",
  snapshotThere: `SELECT 1 FROM resource_audit
    WHERE kind = ?1 AND resource_id = ?2 AND archived_at = ?3 AND version_hash IS ?4
      AND tag IS ?5 AND data = ?6 LIMIT 1`,
  // A snapshot slotted before newer ones of its resource takes the revision of the
  // next newer one, so revisions keep growing along the history (getResourceAt by
  // revision relies on it); otherwise the merge's revision.
  addSnapshot:
    `INSERT INTO resource_audit (kind, resource_id, archived_at, version_hash, tag, data,
      schema_id, revision)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, coalesce((SELECT min(revision) FROM resource_audit
      WHERE kind = ?1 AND resource_id = ?2 AND archived_at > ?3), ?8))`,
  orphanThere: `SELECT 1 FROM resource_audit_orphans
    WHERE kind = ?1 AND resource_id = ?2 AND archived_at = ?3 AND version_hash IS ?4
      AND tag IS ?5 AND data = ?6 LIMIT 1`,
  addOrphan:
    `INSERT INTO resource_audit_orphans (id, kind, resource_id, archived_at, version_hash,
      tag, data, schema_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  // The highest snapshot id handed out, in either table.
  auditSequence:
    `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'resource_audit'), 0),
       coalesce((SELECT max(id) FROM resource_audit), 0),
       coalesce((SELECT max(id) FROM resource_audit_orphans), 0)) AS n`,
} as const;

/**
 * The merge writer of the SQLite store `db` (inside its open write transaction), whose
 * audit id sequence is first brought above every snapshot and orphan id.
 */
export function sqliteMergeWriter(
  db: DatabaseSync,
  label: string,
  mode: MergeMode,
): MergeWriter {
  const s = Object.fromEntries(
    Object.entries(SQL).map(([name, text]) => [name, db.prepare(text)]),
  ) as Record<keyof typeof SQL, ReturnType<DatabaseSync["prepare"]>>;
  const ids = new Map<number, number>();
  let revision = (db.prepare(`SELECT ${CURRENT_REVISION} AS r`).get() as {
    r: number;
  }).r;
  let sequence = (s.auditSequence.get() as { n: number }).n;
  // New snapshots (AUTOINCREMENT) must not take an id an orphan holds.
  db.prepare("DELETE FROM sqlite_sequence WHERE name = 'resource_audit'").run();
  db.prepare(
    "INSERT INTO sqlite_sequence (name, seq) VALUES ('resource_audit', ?)",
  ).run(sequence);
  const missing = (table: string, what: string) =>
    new CopyVerificationError(
      label,
      table,
      what,
      "missing after the merge",
    );
  const snapshotKey = (row: CopyValue[]) =>
    [row[1], row[2], row[4], row[5], row[6], row[3]] as Bound[];
  return {
    get revision() {
      return revision;
    },
    schemas(rows) {
      let added = 0;
      for (const [id, typeName, digest, descriptors, createdAt] of rows) {
        let row = s.schemaId.get(typeName as string, digest as string) as
          | { id: number }
          | undefined;
        if (row === undefined) {
          row = s.addSchema.get(
            typeName as string,
            digest as string,
            descriptors as Uint8Array,
            createdAt as string,
          ) as { id: number };
          added++;
        }
        ids.set(Number(id), row.id);
      }
      return Promise.resolve(added);
    },
    resources(rows) {
      const result: ResourceMerge = {
        inserted: 0,
        replaced: 0,
        skipped: 0,
        unchanged: 0,
      };
      const mapped = rows.map((row) => {
        const [kind, id, data, updatedAt, schemaId] = row;
        return [kind, id, data, updatedAt, mapSchemaId(ids, schemaId, label)];
      }) as Bound[][];
      for (const [kind, id, data, updatedAt, schemaId] of mapped) {
        const there = s.resource.get(kind, id, data, schemaId) as
          | { same_data: number; same_type: number }
          | undefined;
        if (there !== undefined && there.same_data && there.same_type) {
          result.unchanged++;
          continue;
        }
        if (there !== undefined && mode === "skip") {
          result.skipped++;
          continue;
        }
        revision++;
        const write = there === undefined
          ? s.insertResource
          : s.replaceResource;
        write.run(kind, id, data, updatedAt, schemaId, revision);
        s.change.run(revision, kind, id);
        if (there === undefined) result.inserted++;
        else result.replaced++;
      }
      // Verification: every source resource is there (with its content unless skipped).
      for (
        const [kind, id, data, schemaId] of mapped.map((
          r,
        ) => [r[0], r[1], r[2], r[4]])
      ) {
        const there = s.resource.get(kind, id, data, schemaId) as
          | { same_data: number; same_type: number }
          | undefined;
        if (
          there === undefined ||
          (mode === "overwrite" && !(there.same_data && there.same_type))
        ) {
          throw missing(
            "resources",
            `${JSON.stringify(kind)}/${JSON.stringify(id)}`,
          );
        }
      }
      return Promise.resolve(result);
    },
    snapshots(rows) {
      let added = 0;
      for (const row of rows) {
        const key = snapshotKey(row);
        if (s.snapshotThere.get(...key) !== undefined) continue;
        s.addSnapshot.run(
          ...key,
          mapSchemaId(ids, row[7], label),
          revision,
        );
        added++;
      }
      for (const row of rows) {
        if (s.snapshotThere.get(...snapshotKey(row)) === undefined) {
          throw missing("resource_audit", `snapshot ${String(row[0])}`);
        }
      }
      return Promise.resolve(added);
    },
    orphans(rows) {
      let added = 0;
      // Above the snapshots this merge added too.
      sequence = Math.max(sequence, (s.auditSequence.get() as { n: number }).n);
      for (const row of rows) {
        const key = snapshotKey(row);
        if (s.orphanThere.get(...key) !== undefined) continue;
        s.addOrphan.run(++sequence, ...key, mapSchemaId(ids, row[7], label));
        added++;
      }
      for (const row of rows) {
        if (s.orphanThere.get(...snapshotKey(row)) === undefined) {
          throw missing("resource_audit_orphans", `snapshot ${String(row[0])}`);
        }
      }
      return Promise.resolve(added);
    },
    finish() {
      // Orphan ids came from the same sequence as snapshot ids.
      const n = (s.auditSequence.get() as { n: number }).n;
      db.prepare(
        "UPDATE sqlite_sequence SET seq = ? WHERE name = 'resource_audit'",
      )
        .run(n);
      return Promise.resolve();
    },
  };
}
