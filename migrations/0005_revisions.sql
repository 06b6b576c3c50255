-- Revisions (etcd's mod_revision, Kubernetes' resourceVersion): one counter per database.
-- * resources.revision: the revision of the resource's last change; create_revision: of
--   its creation (unknown for older rows: their revision);
-- * resource_audit.revision: the store's revision when the snapshot was archived;
-- * resource_changes: one row per resource changed at a revision (the change feed);
-- * change_log: one row; changes at or below compacted_through were dropped.
-- The current revision is max(max(resource_changes.revision), compacted_through): writes
-- append to resource_changes in the same transaction, so the counter needs no row of its
-- own (see src/store/revisions.ts).

ALTER TABLE resources ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN create_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resource_audit ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TABLE resource_changes (
  revision INTEGER NOT NULL,
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  PRIMARY KEY (revision, kind, id)
) WITHOUT ROWID;

CREATE TABLE change_log (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  compacted_through INTEGER NOT NULL
);

-- Existing rows (protostore 0.1, Go v1/v2 files, Badger imports) get revisions in time
-- order: each resource a revision of its own, by updated_at (ties by kind, id); each
-- snapshot the revision the store had reached when it was archived (resources updated in
-- the same millisecond count as before it). Along a history this follows archive order.
CREATE TEMP TABLE revision_order AS
SELECT is_audit, kind, id, audit_id,
       sum(1 - is_audit) OVER (ORDER BY at, is_audit, kind, id, audit_id
                               ROWS UNBOUNDED PRECEDING) AS revision
FROM (
  SELECT 0 AS is_audit, kind, id, 0 AS audit_id, updated_at AS at FROM resources
  UNION ALL
  SELECT 1, kind, resource_id, id, archived_at FROM resource_audit
);
CREATE INDEX temp.revision_order_key ON revision_order (is_audit, kind, id, audit_id);

UPDATE resources SET revision = o.revision, create_revision = o.revision
FROM temp.revision_order AS o
WHERE o.is_audit = 0 AND o.kind = resources.kind AND o.id = resources.id;

UPDATE resource_audit SET revision = o.revision
FROM temp.revision_order AS o
WHERE o.is_audit = 1 AND o.kind = resource_audit.kind AND o.id = resource_audit.resource_id
  AND o.audit_id = resource_audit.id;

-- Their changes are not in the log: a watcher from before the upgrade must list again.
INSERT INTO change_log (id, compacted_through) SELECT 1, count(*) FROM resources;

DROP TABLE temp.revision_order;
