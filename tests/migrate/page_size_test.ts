/**
 * Migration 0004's page size (issue 9, item 9): a new file starts with 16 KiB pages; an
 * existing file is rebuilt with VACUUM after the migration, keeping every row, snapshot
 * id, orphan and the audit id sequence; when another connection keeps it from leaving
 * WAL, the rebuild waits for a later `migrate`.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import { migrate, openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { writeSeededGoDb } from "../helpers/go_store.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

type Row = Record<string, unknown>;

function query(path: string, sql: string): Row[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare(sql).all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

const pageSize = (path: string) =>
  query(path, "PRAGMA page_size")[0].page_size as number;

/** Every row protostore keeps, with ids; times as SQLite's julian day, format aside. */
function content(path: string) {
  return {
    resources: query(
      path,
      "SELECT kind, id, hex(data) AS data, julianday(updated_at) AS t FROM resources ORDER BY kind, id",
    ),
    audit: query(
      path,
      `SELECT id, kind, resource_id, hex(data) AS data, julianday(archived_at) AS t,
              nullif(version_hash, '') AS h, nullif(tag, '') AS tag
       FROM resource_audit ORDER BY id`,
    ),
  };
}

Deno.test("a new file starts with 16 KiB pages in WAL mode", () =>
  withTempDir((dir) => {
    const path = `${dir}/new.sqlite`;
    openStore(path).close();
    assert.equal(pageSize(path), 16384);
    assert.deepEqual(query(path, "PRAGMA journal_mode"), [{
      journal_mode: "wal",
    }]);
  }));

Deno.test("migrating a Go v2 file rebuilds it with 16 KiB pages; rows, ids, orphans and the id sequence survive", () =>
  withTempDir((dir) => {
    const path = `${dir}/go.sqlite`;
    writeSeededGoDb(path, 21, {
      resources: 400,
      auditsPerResource: 3,
      payload: 1500,
      orphanFraction: 0.1,
    });
    assert.equal(pageSize(path), 4096);
    const before = content(path);
    const [{ seq }] = query(
      path,
      "SELECT seq FROM sqlite_sequence WHERE name = 'resource_audit'",
    );
    migrate(path);
    assert.equal(pageSize(path), 16384);
    assert.deepEqual(query(path, "PRAGMA journal_mode"), [{
      journal_mode: "wal",
    }]);
    assert.deepEqual(query(path, "PRAGMA integrity_check"), [{
      integrity_check: "ok",
    }]);
    const after = content(path);
    assert.deepEqual(after.resources, before.resources);
    // Snapshots of deleted resources are kept apart, with their ids.
    const orphans = query(
      path,
      `SELECT id, kind, resource_id, hex(data) AS data, julianday(archived_at) AS t,
              version_hash AS h, tag FROM resource_audit_orphans`,
    );
    assert.ok(orphans.length > 0);
    assert.deepEqual(
      [...after.audit, ...orphans].sort((a, b) =>
        (a.id as number) - (b.id as number)
      ),
      before.audit,
    );
    using store = openStore(path);
    const [live] = before.resources as { kind: string; id: string }[];
    store.saveResource(
      SkillSchema,
      live.kind,
      live.id,
      create(SkillSchema, {}),
    );
    const entry = store.saveAudit(
      SkillSchema,
      live.kind,
      live.id,
      create(SkillSchema, {}),
    );
    assert.equal(entry.id, (seq as number) + 1, "the id sequence continues");
  }));

Deno.test("when another connection holds the file, the page rebuild waits for a later migrate", () =>
  withTempDir((dir) => {
    const path = `${dir}/go.sqlite`;
    writeSeededGoDb(path, 5, {
      resources: 50,
      auditsPerResource: 2,
      payload: 100,
    });
    const before = content(path);
    const other = new DatabaseSync(path);
    other.exec("PRAGMA journal_mode = WAL");
    other.prepare("SELECT count(*) FROM resources").get(); // holds the file open in WAL
    try {
      assert.equal(migrate(path).applied.length > 0, true);
      assert.equal(
        pageSize(path),
        4096,
        "not rebuilt while the file is shared",
      );
    } finally {
      other.close();
    }
    assert.deepEqual(migrate(path).applied, []);
    assert.equal(pageSize(path), 16384, "the next migrate finishes it");
    assert.deepEqual(content(path).resources, before.resources);
  }));
