/**
 * The way back to the Go daemon: rebuilds a protostore database file into the Go store's
 * v2 schema (its exact DDL, from migrations 0001 and 0002), in one transaction.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { openConnection } from "../sqlite/connection.ts";
import { messageOf, MigrationError, StoreError } from "../errors.ts";
import { sqliteErrorCode } from "../sqlite/errors.ts";
import { MIGRATIONS } from "./files.ts";
import { planMigrations, refuseProblems } from "./plan.ts";

/**
 * The newest schema version this code can take back to the Go store's v2. A migration
 * that adds a table or a column must teach {@linkcode downgrade} to drop or fold it, then
 * raise this number.
 */
const DOWNGRADE_KNOWS_UP_TO = 5;

/** Options of {@linkcode downgrade}. */
export interface DowngradeOptions {
  /** How long to wait for another process's lock, in ms (default 5000). */
  busyTimeoutMs?: number;
}

/** The outcome of {@linkcode downgrade}. */
export interface DowngradeResult {
  /** The database file. */
  path: string;
  /** The schema version before (2 or less: nothing was changed). */
  fromVersion: number;
  /** The schema version after: 2 (or `fromVersion` when it was already 2 or less). */
  schemaVersion: number;
  /** Resources kept. */
  resources: number;
  /** Audit snapshots in the Go `resource_audit` table, orphans included. */
  auditRecords: number;
  /** Of those, snapshots whose resource is gone (protostore kept them apart). */
  orphanAuditRecords: number;
}

/** The Go store's `schema_version` table (version, applied_at). */
const GO_SCHEMA_VERSION =
  `CREATE TABLE schema_version (version INTEGER PRIMARY KEY,
  applied_at TEXT NOT NULL DEFAULT (datetime('now')))`;

/** ISO text back to the Go store's `datetime('now')` text; other text is kept. */
const goTime = (column: string) =>
  `coalesce(strftime('%Y-%m-%d %H:%M:%S', ${column}), ${column})`;

/**
 * Rebuilds the protostore database at `path` into the Go store's v2 schema, so the old Go
 * daemon can open and write it again. In one transaction: every resource and every audit
 * snapshot is kept with its id, the snapshots protostore kept apart as orphans (their
 * resource is gone) go back into `resource_audit` as the Go store kept them, the audit id
 * sequence is kept, times go back to `datetime('now')` text (whole seconds: the
 * milliseconds are dropped), absent hashes and tags become `''` as the Go store wrote
 * them, and `schema_version` holds rows 1 and 2 only. What the Go schema cannot hold is
 * dropped: recorded message types (`message_schemas`), the cascade, the time checks,
 * revisions and the change log. The
 * file is left in rollback-journal mode, as the Go store left it. Run `migrate` (or open
 * it with protostore) to upgrade it again.
 *
 * A file at schema version 2 or less is already the Go store's and is left as it is.
 * Refuses (before any write) a file with migration problems or a version newer than
 * {@linkcode DOWNGRADE_KNOWS_UP_TO}. Stop every protostore process first: the switch out
 * of WAL needs the file alone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { downgrade, migrate, migrationStatus } from "@protostore/store";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * migrate(path);
 * const result = downgrade(path);
 * assert.equal(result.schemaVersion, 2);
 * assert.equal(migrationStatus(path).schemaVersion, 2);
 * ```
 */
export function downgrade(
  path: string,
  options: DowngradeOptions = {},
): DowngradeResult {
  try {
    if (!Deno.statSync(path).isFile) {
      throw new StoreError(`${path} is not a database file`);
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError(`no database at ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const db = openConnection(path, { busyTimeoutMs: options.busyTimeoutMs });
  try {
    const plan = planMigrations(db);
    refuseProblems(plan);
    const fromVersion = plan.schemaVersion;
    if (fromVersion > DOWNGRADE_KNOWS_UP_TO) {
      throw new MigrationError(
        `the database is at schema version ${fromVersion}; this protostore can take back ` +
          `to the Go store's schema only versions up to ${DOWNGRADE_KNOWS_UP_TO}`,
      );
    }
    if (fromVersion <= 2) {
      const count = (sql: string) =>
        fromVersion === 0
          ? 0
          : Number((db.prepare(sql).get() as { n: number }).n);
      return {
        path,
        fromVersion,
        schemaVersion: fromVersion,
        resources: count("SELECT count(*) AS n FROM resources"),
        auditRecords: fromVersion < 2
          ? 0
          : count("SELECT count(*) AS n FROM resource_audit"),
        orphanAuditRecords: 0,
      };
    }
    // A table rebuild with foreign keys on would cascade; the switch needs no transaction.
    db.exec("PRAGMA foreign_keys = OFF");
    let result: DowngradeResult;
    try {
      db.exec("BEGIN IMMEDIATE");
      try {
        refuseProblems(planMigrations(db));
        result = rebuildAsGo(db, path, fromVersion);
        db.exec("COMMIT");
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        if (error instanceof StoreError) throw error;
        throw new MigrationError(
          `downgrade of ${path} failed and was rolled back: ${
            messageOf(error)
          }`,
          { cause: error, code: sqliteErrorCode(error) },
        );
      }
    } finally {
      db.exec("PRAGMA foreign_keys = ON");
    }
    try {
      // The Go store left its files in rollback-journal mode. Best effort: another
      // connection keeps the file in WAL, which the Go daemon reads as well.
      db.exec("PRAGMA journal_mode = DELETE");
    } catch {
      // stays in WAL
    }
    return result;
  } finally {
    db.close();
  }
}

function rebuildAsGo(
  db: DatabaseSync,
  path: string,
  fromVersion: number,
): DowngradeResult {
  const count = (table: string) =>
    Number(
      (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number })
        .n,
    );
  const orphans = count("resource_audit_orphans");
  // Protostore's tables step aside; their indexes go (the Go names are reused).
  db.exec(`
    DROP INDEX idx_audit_resource; DROP INDEX idx_audit_hash; DROP INDEX idx_audit_tag;
    ALTER TABLE resources RENAME TO downgrade_resources;
    ALTER TABLE resource_audit RENAME TO downgrade_audit;
    ALTER TABLE schema_version RENAME TO downgrade_schema_version;`);
  // The Go store's own DDL. 0002 also moves BadgerDB-era rows, a no-op on empty tables.
  db.exec(MIGRATIONS[0].sql);
  db.exec(MIGRATIONS[1].sql);
  db.exec(GO_SCHEMA_VERSION);
  db.exec(`
    INSERT INTO resources (kind, id, data, updated_at)
    SELECT kind, id, data, ${goTime("updated_at")} FROM downgrade_resources;

    INSERT INTO resource_audit (id, kind, resource_id, data, archived_at, version_hash, tag)
    SELECT id, kind, resource_id, data, ${goTime("archived_at")},
           coalesce(version_hash, ''), coalesce(tag, '')
    FROM (SELECT id, kind, resource_id, data, archived_at, version_hash, tag FROM downgrade_audit
          UNION ALL
          SELECT id, kind, resource_id, data, archived_at, version_hash, tag
          FROM resource_audit_orphans)
    ORDER BY id;

    -- The Go store's AUTOINCREMENT continues after every id ever handed out.
    DELETE FROM sqlite_sequence WHERE name = 'resource_audit';
    INSERT INTO sqlite_sequence (name, seq)
    SELECT 'resource_audit', max(
      coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'downgrade_audit'), 0),
      coalesce((SELECT max(id) FROM resource_audit), 0));

    INSERT INTO schema_version (version, applied_at)
    SELECT version, ${
    goTime("applied_at")
  } FROM downgrade_schema_version WHERE version <= 2;

    DROP TABLE downgrade_audit;
    DROP TABLE downgrade_resources;
    DROP TABLE downgrade_schema_version;
    DROP TABLE resource_audit_orphans;
    DROP TABLE message_schemas;
    -- 0005's revisions: the columns went with the rebuild; the change log goes too.
    DROP TABLE IF EXISTS resource_changes;
    DROP TABLE IF EXISTS change_log;`);
  return {
    path,
    fromVersion,
    schemaVersion: 2,
    resources: count("resources"),
    auditRecords: count("resource_audit"),
    orphanAuditRecords: orphans,
  };
}
