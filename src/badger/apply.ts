/**
 * Phase 2 of an import: the staged dump applied to the target database with set-based
 * SQL, the staging file attached to the target's connection. Resources are upserted in
 * place (history kept, identical rows untouched); legacy audit snapshots go to
 * `resource_audit`, or to `resource_audit_orphans` when their resource does not exist,
 * unless the same snapshot is already there. In a dry run the same numbers are counted
 * without writing.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { messageOf, StoreError } from "../errors.ts";
import { sqliteErrorCode, sqliteFailure } from "../sqlite/errors.ts";
import { readCurrentRevision } from "../store/revisions.ts";
import { STAGING } from "./staging.ts";
import type { ImportSummary } from "./summary.ts";

const S = STAGING;
const LIVE_VALUE = "coalesce(a.value, x'')";
const RESOURCE_EXISTS =
  "EXISTS (SELECT 1 FROM main.resources AS r WHERE r.kind = a.kind AND r.id = a.resource_id)";
const RESOURCE_STAGED =
  `EXISTS (SELECT 1 FROM ${S}.res AS s WHERE s.kind = a.kind AND s.id = a.resource_id AND s.state = 0)`;
const sameSnapshotIn = (table: string) =>
  `EXISTS (SELECT 1 FROM main.${table} AS x WHERE x.kind = a.kind AND ` +
  `x.resource_id = a.resource_id AND x.archived_at = a.archived_at AND x.data = ${LIVE_VALUE})`;

// The import is one transaction: every resource it writes gets its revision (?2).
const UPSERT_RESOURCES = `
  INSERT INTO main.resources (kind, id, data, updated_at, schema_id, revision, create_revision)
  SELECT kind, id, coalesce(value, x''), ?1, NULL, ?2, ?2 FROM ${S}.res WHERE state = 0
  ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data,
    updated_at = excluded.updated_at, schema_id = NULL, revision = excluded.revision
  WHERE resources.data IS NOT excluded.data`;

// The change feed's entry for each resource the upsert wrote (those now at ?1).
const RECORD_CHANGES = `
  INSERT INTO main.resource_changes (revision, kind, id, deleted)
  SELECT ?1, r.kind, r.id, 0 FROM ${S}.res AS s
  JOIN main.resources AS r ON r.kind = s.kind AND r.id = s.id
  WHERE s.state = 0 AND r.revision = ?1`;

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
  INSERT INTO main.${table} (kind, resource_id, data, archived_at${
  attached ? ", revision" : ""
})
  SELECT a.kind, a.resource_id, ${LIVE_VALUE}, a.archived_at${
  attached ? ", ?" : ""
} FROM ${S}.aud AS a
  WHERE a.state = 0 AND ${attached ? "" : "NOT "}${RESOURCE_EXISTS}
    AND NOT EXISTS (SELECT 1 FROM ${S}.present AS p WHERE p.key = a.key)
  ORDER BY a.kind, a.resource_id, a.archived_at, a.key`;

/** What {@linkcode writeStaged} and {@linkcode countStagedAgainst} need. */
export interface ApplyContext {
  /** The summary: gets the counts that depend on the target. */
  summary: ImportSummary;
  /** Live audit snapshots in the dump (from `countStaged`). */
  liveAudits: number;
  /** `updated_at` of written resources, ISO-8601. */
  nowIso: string;
}

/**
 * Runs `work` with the staging file at `stagingPath` attached to `db` (as
 * {@linkcode STAGING}), memory-mapped reads off meanwhile, and detaches it after. SQLite
 * cannot attach inside a transaction: call this first, then begin. Failures of `work`
 * that are not a {@linkcode StoreError} become one saying nothing was imported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { withStagingAttached } from "./apply.ts";
 * import { openStaging } from "./staging.ts";
 *
 * const dir = await Deno.makeTempDir();
 * openStaging(`${dir}/staging.sqlite`, dir).close();
 * const db = new DatabaseSync(":memory:");
 * const n = withStagingAttached(db, `${dir}/staging.sqlite`, "dump", () =>
 *   db.prepare("SELECT count(*) AS n FROM protostore_badger_staging.res").get()?.n);
 * assert.equal(n, 0);
 * db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function withStagingAttached<T>(
  db: DatabaseSync,
  stagingPath: string,
  name: string,
  work: () => T,
): T {
  try {
    db.prepare(`ATTACH DATABASE ? AS ${S}`).run(stagingPath);
  } catch (error) {
    throw sqliteFailure(
      `import of ${name}: cannot attach the staging database: ${
        messageOf(error)
      }`,
      error,
    );
  }
  let mmapSize = 0;
  try {
    // Memory-mapped reads would put every page the import touches, of the staging file
    // and of a large target, into the process's RSS; read through the page cache
    // instead. (An attached database inherits the connection's default mmap size.)
    db.exec(`PRAGMA ${S}.mmap_size = 0`);
    // (An in-memory database has no mmap_size row.)
    mmapSize = (db.prepare("PRAGMA main.mmap_size").get() as
      | { mmap_size: number }
      | undefined)?.mmap_size ?? 0;
    if (mmapSize > 0) db.exec("PRAGMA main.mmap_size = 0");
    return work();
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw sqliteFailure(
      `import of ${name} failed while writing to the database, nothing was imported ` +
        `(rolled back): ${messageOf(error)}` +
        (sqliteErrorCode(error) === "busy"
          ? "; another process holds the write lock, retry"
          : ""),
      error,
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

/**
 * Writes the attached staged dump into `db`'s protostore tables. Must run inside the
 * caller's write transaction (with the staging file attached), so that the import and
 * whatever goes with it (pending migrations) commit together. Fills the summary's
 * target-dependent counts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConnection } from "../sqlite/connection.ts";
 * import { migrateWith } from "../migrate/runner.ts";
 * import { withStagingAttached, writeStaged } from "./apply.ts";
 * import { openStaging } from "./staging.ts";
 * import { emptySummary } from "./summary.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const staging = openStaging(`${dir}/staging.sqlite`, dir);
 * staging.exec("INSERT INTO res VALUES ('agent', 'a1', 1, 0, x'0801')");
 * staging.close();
 * const db = openConnection(`${dir}/db.sqlite`);
 * const summary = { ...emptySummary(null, false, undefined), resources: 1 };
 * withStagingAttached(db, `${dir}/staging.sqlite`, "dump", () =>
 *   migrateWith(db, () => writeStaged(db, { summary, liveAudits: 0, nowIso: new Date().toISOString() })));
 * assert.equal(db.prepare("SELECT count(*) AS n FROM resources").get()?.n, 1);
 * db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeStaged(db: DatabaseSync, context: ApplyContext): void {
  const { summary } = context;
  if (!db.isTransaction) {
    throw new StoreError("writeStaged must run inside a write transaction");
  }
  const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  const current = readCurrentRevision(db);
  const written = db.prepare(UPSERT_RESOURCES).run(context.nowIso, current + 1)
    .changes as number;
  if (written > 0) db.prepare(RECORD_CHANGES).run(current + 1);
  summary.resourcesUnchanged = summary.resources - written;
  summary.orphanAuditRecords = count(
    `SELECT count(*) AS n FROM ${S}.aud AS a WHERE a.state = 0 AND NOT ${RESOURCE_EXISTS}`,
  );
  summary.auditUnchanged = db.prepare(FIND_PRESENT).run().changes as number;
  // Snapshots record the revision the store is at once the import commits.
  db.prepare(insertSnapshots("resource_audit", true)).run(
    written > 0 ? current + 1 : current,
  );
  db.prepare(insertSnapshots("resource_audit_orphans", false)).run();
  summary.auditRecords = context.liveAudits - summary.orphanAuditRecords;
}

/**
 * A dry run of {@linkcode writeStaged}: the same counts against `db` as it is, in one
 * read transaction, writing nothing (`db` may be read-only). The staging file must be
 * attached.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, Store } from "../store/store.ts";
 * import { countStagedAgainst, withStagingAttached } from "./apply.ts";
 * import { openStaging } from "./staging.ts";
 * import { emptySummary } from "./summary.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const staging = openStaging(`${dir}/staging.sqlite`, dir);
 * staging.exec("INSERT INTO aud VALUES ('agent', 'a1', '2020-01-01T00:00:00.000Z', x'00', 1, 0, x'')");
 * staging.close();
 * using store = openStore(`${dir}/db.sqlite`);
 * const db = Store.connectionOf(store);
 * const summary = emptySummary(null, true, undefined);
 * withStagingAttached(db, `${dir}/staging.sqlite`, "dump", () =>
 *   countStagedAgainst(db, { summary, liveAudits: 1, nowIso: "" }));
 * assert.equal(summary.orphanAuditRecords, 1);
 * ```
 */
export function countStagedAgainst(
  db: DatabaseSync,
  context: ApplyContext,
): void {
  const { summary } = context;
  const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  const own = !db.isTransaction;
  if (own) db.exec("BEGIN");
  try {
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
  } finally {
    if (own && db.isTransaction) db.exec("COMMIT");
  }
  summary.auditRecords = context.liveAudits - summary.orphanAuditRecords;
}
