-- The Go store's v1 schema, reproduced exactly so that its databases continue from 0003.
CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,
  updated_at TEXT NOT NULL DEFAULT (datetime('now')), PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_resources_kind_id ON resources(kind, id);
