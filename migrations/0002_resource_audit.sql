-- The Go store's v2 schema, reproduced exactly, plus the move of BadgerDB-era audit rows.
CREATE TABLE IF NOT EXISTS resource_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
  resource_id TEXT NOT NULL, data BLOB NOT NULL, archived_at TEXT NOT NULL DEFAULT (datetime('now')),
  version_hash TEXT, tag TEXT);
CREATE INDEX IF NOT EXISTS idx_audit_resource ON resource_audit(kind, resource_id);
CREATE INDEX IF NOT EXISTS idx_audit_hash ON resource_audit(kind, resource_id, version_hash);
CREATE INDEX IF NOT EXISTS idx_audit_tag ON resource_audit(kind, resource_id, tag, archived_at DESC);

-- Legacy snapshots were stored as resources with id `<kind>_audit/<resourceId>/<unixNanos>`.
-- Match exactly: the first segment is the row's own kind + `_audit` (compared as text, not
-- with LIKE, whose `_` is a wildcard), the last segment is 1-19 digits, and the resource id
-- between them is not empty (it may itself contain `/`). rtrim() strips the trailing digits,
-- which finds the last segment without a reverse search.
CREATE TEMP TABLE legacy_audit AS
SELECT kind, id, substr(head, 1, length(head) - 1) AS resource_id,
       -- nanoseconds -> milliseconds by integer division on the digit string
       CAST(CASE WHEN length(digits) > 6 THEN substr(digits, 1, length(digits) - 6) ELSE '0' END
            AS INTEGER) AS ms
FROM (
  SELECT kind, id, rtrim(rest, '0123456789') AS head,
         substr(rest, length(rtrim(rest, '0123456789')) + 1) AS digits
  FROM (
    SELECT kind, id, substr(id, length(kind) + 8) AS rest
    FROM resources
    WHERE substr(id, 1, length(kind) + 7) = kind || '_audit/'
  )
)
WHERE digits <> '' AND length(digits) <= 19 AND length(head) >= 2 AND substr(head, -1) = '/';

-- datetime() of whole seconds plus the milliseconds as text: 'unixepoch' on a fraction rounds.
INSERT INTO resource_audit (kind, resource_id, data, archived_at)
SELECT l.kind, l.resource_id, r.data,
       datetime(l.ms / 1000, 'unixepoch') || '.' || substr('00' || (l.ms % 1000), -3)
FROM legacy_audit AS l
JOIN resources AS r ON r.kind = l.kind AND r.id = l.id
ORDER BY l.kind, l.resource_id, l.ms, l.id;

DELETE FROM resources WHERE (kind, id) IN (SELECT kind, id FROM legacy_audit);

DROP TABLE temp.legacy_audit;
