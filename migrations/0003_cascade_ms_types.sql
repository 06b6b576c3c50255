-- protostore: foreign-keys-off
-- Brings the Go schema to protostore's behaviour:
-- * resource_audit rows belong to their resource: ON DELETE CASCADE (table rebuild);
-- * audit rows whose resource is gone move to resource_audit_orphans, never deleted;
-- * timestamps are ISO-8601 UTC with milliseconds ('2026-01-25T10:00:00.000Z');
-- * each row records the message schema (type name + FileDescriptorSet) it was written with.
-- The directive above makes the runner switch foreign keys off around this file and run
-- foreign_key_check before commit, so that the DROP TABLE below cannot cascade.

CREATE TABLE message_schemas (
  id INTEGER PRIMARY KEY,
  type_name TEXT NOT NULL,
  digest TEXT NOT NULL,
  descriptor_set BLOB NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (type_name, digest)
);

ALTER TABLE resources ADD COLUMN schema_id INTEGER REFERENCES message_schemas(id);
-- The primary key already indexes (kind, id).
DROP INDEX IF EXISTS idx_resources_kind_id;
UPDATE resources
SET updated_at = coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', updated_at), updated_at);

CREATE TABLE resource_audit_orphans (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  data BLOB NOT NULL,
  archived_at TEXT NOT NULL,
  version_hash TEXT,
  tag TEXT,
  schema_id INTEGER REFERENCES message_schemas(id)
);
CREATE INDEX idx_audit_orphans_resource ON resource_audit_orphans(kind, resource_id, archived_at);

INSERT INTO resource_audit_orphans (id, kind, resource_id, data, archived_at, version_hash, tag)
SELECT a.id, a.kind, a.resource_id, a.data,
       coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', a.archived_at), a.archived_at),
       nullif(a.version_hash, ''), nullif(a.tag, '')
FROM resource_audit AS a
WHERE NOT EXISTS (SELECT 1 FROM resources AS r WHERE r.kind = a.kind AND r.id = a.resource_id);

CREATE TABLE resource_audit_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  data BLOB NOT NULL,
  archived_at TEXT NOT NULL,
  version_hash TEXT,
  tag TEXT,
  schema_id INTEGER REFERENCES message_schemas(id),
  FOREIGN KEY (kind, resource_id) REFERENCES resources(kind, id) ON DELETE CASCADE
);

-- Ids are kept: they break ties between snapshots archived in the same millisecond.
INSERT INTO resource_audit_new (id, kind, resource_id, data, archived_at, version_hash, tag)
SELECT a.id, a.kind, a.resource_id, a.data,
       coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', a.archived_at), a.archived_at),
       nullif(a.version_hash, ''), nullif(a.tag, '')
FROM resource_audit AS a
WHERE EXISTS (SELECT 1 FROM resources AS r WHERE r.kind = a.kind AND r.id = a.resource_id);

-- Keep the id sequence: new snapshots never reuse an id, not even one now among the orphans.
DELETE FROM sqlite_sequence WHERE name = 'resource_audit_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'resource_audit_new', max(
  coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'resource_audit'), 0),
  coalesce((SELECT max(id) FROM resource_audit_new), 0));

DROP TABLE resource_audit;
ALTER TABLE resource_audit_new RENAME TO resource_audit;

-- The row id ends every index, so these serve ORDER BY archived_at DESC, id DESC directly.
CREATE INDEX idx_audit_resource ON resource_audit(kind, resource_id, archived_at);
CREATE INDEX idx_audit_hash ON resource_audit(kind, resource_id, version_hash, archived_at);
CREATE INDEX idx_audit_tag ON resource_audit(kind, resource_id, tag, archived_at);
