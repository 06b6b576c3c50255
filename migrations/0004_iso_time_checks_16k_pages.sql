-- protostore: foreign-keys-off
-- protostore: page-size 16384
-- Two promises the Go daemon's schema could not make:
-- * Times are ISO-8601 UTC ('2026-01-25T10:00:00.000Z'). Named CHECK constraints refuse
--   anything else, so the old Go daemon, which writes datetime('now') text
--   ('2026-01-25 10:00:00'), fails loudly on an upgraded file instead of erasing history
--   (its INSERT OR REPLACE would fire the cascade). SQLite reports a failed CHECK as
--   "CHECK constraint failed: <name>", so the name is the message the daemon logs. The
--   defaults stay datetime('now') on purpose: a writer that relies on them hits the same
--   message. The check is the 'T' between date and time, which datetime('now') text has
--   not: ~0.2 us per row (a GLOB of the whole format cost ~0.65 us, triggers 10-40%).
-- * 16 KiB pages (the directive above): a 1-3 KB row fits in a WITHOUT ROWID leaf
--   instead of spilling into an overflow page of its own (BENCHMARKS.md). A new file gets
--   the page size before its first table; the runner VACUUMs an existing file after this
--   file commits (the page size of a WAL file changes only that way).
-- Both tables are rebuilt (a CHECK cannot be added in place). Rows, ids and the audit id
-- sequence are kept; times written by the Go daemon since 0003 are converted, and audit
-- rows it wrote for resources that are gone move to resource_audit_orphans, as in 0003.

CREATE TABLE resources_new (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  data BLOB NOT NULL,
  updated_at TEXT NOT NULL DEFAULT (datetime('now')),
  schema_id INTEGER REFERENCES message_schemas(id),
  PRIMARY KEY (kind, id),
  CONSTRAINT "resources.updated_at is not ISO-8601: this file was upgraded by protostore (schema version 4) and the Go daemon can no longer write to it; to go back, run: deno run -A cli.ts downgrade --db FILE (README: Going back to the Go daemon)"
    CHECK (substr(updated_at, 11, 1) = 'T')
) WITHOUT ROWID;

INSERT INTO resources_new (kind, id, data, updated_at, schema_id)
SELECT kind, id, data, coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', updated_at), updated_at), schema_id
FROM resources;

DROP TABLE resources;
ALTER TABLE resources_new RENAME TO resources;

INSERT INTO resource_audit_orphans (id, kind, resource_id, data, archived_at, version_hash, tag, schema_id)
SELECT a.id, a.kind, a.resource_id, a.data,
       coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', a.archived_at), a.archived_at),
       nullif(a.version_hash, ''), nullif(a.tag, ''), a.schema_id
FROM resource_audit AS a
WHERE NOT EXISTS (SELECT 1 FROM resources AS r WHERE r.kind = a.kind AND r.id = a.resource_id);

CREATE TABLE resource_audit_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  data BLOB NOT NULL,
  archived_at TEXT NOT NULL DEFAULT (datetime('now')),
  version_hash TEXT,
  tag TEXT,
  schema_id INTEGER REFERENCES message_schemas(id),
  FOREIGN KEY (kind, resource_id) REFERENCES resources(kind, id) ON DELETE CASCADE,
  CONSTRAINT "resource_audit.archived_at is not ISO-8601: this file was upgraded by protostore (schema version 4) and the Go daemon can no longer write to it; to go back, run: deno run -A cli.ts downgrade --db FILE (README: Going back to the Go daemon)"
    CHECK (substr(archived_at, 11, 1) = 'T')
);

INSERT INTO resource_audit_new (id, kind, resource_id, data, archived_at, version_hash, tag, schema_id)
SELECT a.id, a.kind, a.resource_id, a.data,
       coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', a.archived_at), a.archived_at),
       nullif(a.version_hash, ''), nullif(a.tag, ''), a.schema_id
FROM resource_audit AS a
WHERE EXISTS (SELECT 1 FROM resources AS r WHERE r.kind = a.kind AND r.id = a.resource_id);

-- Keep the id sequence: new snapshots never reuse an id, not even one among the orphans.
DELETE FROM sqlite_sequence WHERE name = 'resource_audit_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'resource_audit_new', max(
  coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'resource_audit'), 0),
  coalesce((SELECT max(id) FROM resource_audit_new), 0),
  coalesce((SELECT max(id) FROM resource_audit_orphans), 0));

DROP TABLE resource_audit;
ALTER TABLE resource_audit_new RENAME TO resource_audit;

CREATE INDEX idx_audit_resource ON resource_audit(kind, resource_id, archived_at);
CREATE INDEX idx_audit_hash ON resource_audit(kind, resource_id, version_hash, archived_at);
CREATE INDEX idx_audit_tag ON resource_audit(kind, resource_id, tag, archived_at);
