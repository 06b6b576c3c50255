/**
 * The old Go daemon on an upgraded file (issue 9, item 5): its writes, with its exact SQL
 * (tests/helpers/go_store.ts), fail loudly with a message that names the way back; the
 * way back (`downgrade`) rebuilds the Go v2 schema with every row, after which the Go
 * store writes again and protostore can upgrade the file again.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import {
  downgrade,
  migrate,
  migrationStatus,
  openStore,
  StoreError,
} from "../../mod.ts";
import { MIGRATIONS } from "../../src/migrate/files.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { goRowWriter, writeSeededGoDb } from "../helpers/go_store.ts";
import { runCli } from "../helpers/cli.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

type Row = Record<string, unknown>;

function rows(path: string, sql: string): Row[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare(sql).all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

function count(path: string, table: string): number {
  return rows(path, `SELECT count(*) AS n FROM ${table}`)[0].n as number;
}

const UPGRADED = /CHECK constraint failed: .*upgraded by protostore.*downgrade/;

function assertGoWritesFail(path: string): void {
  const audits = count(path, "resource_audit");
  const [resource] = rows(
    path,
    "SELECT r.kind, r.id FROM resources r JOIN resource_audit a ON a.kind = r.kind AND a.resource_id = r.id LIMIT 1",
  ) as { kind: string; id: string }[];
  const db = new DatabaseSync(path);
  try {
    const go = goRowWriter(db);
    // SaveResource: INSERT OR REPLACE of a resource with history would fire the cascade.
    assert.throws(
      () =>
        go.resource({
          kind: resource.kind,
          id: resource.id,
          data: new Uint8Array([8, 1]),
          updatedAt: "2026-02-01 10:00:00",
        }),
      UPGRADED,
    );
    assert.throws(
      () =>
        go.audit({
          kind: resource.kind,
          resourceId: resource.id,
          data: new Uint8Array([8, 1]),
          archivedAt: "2026-02-01 10:00:00",
        }),
      UPGRADED,
    );
    // A writer relying on the columns' datetime('now') defaults gets the same message.
    assert.throws(
      () =>
        db.exec(
          "INSERT INTO resources (kind, id, data) VALUES ('skill', 'new', x'0801')",
        ),
      UPGRADED,
    );
    assert.throws(
      () =>
        db.prepare(
          "INSERT INTO resource_audit (kind, resource_id, data) VALUES (?, ?, x'0801')",
        ).run(resource.kind, resource.id),
      UPGRADED,
    );
  } finally {
    db.close();
  }
  assert.equal(count(path, "resource_audit"), audits, "history intact");
}

Deno.test("after migrate, the Go daemon's writes fail loudly and erase nothing", () =>
  withTempDir((dir) => {
    const path = `${dir}/go.sqlite`;
    writeSeededGoDb(path, 9, {
      resources: 50,
      auditsPerResource: 2,
      payload: 40,
    });
    migrate(path);
    assertGoWritesFail(path);
    // protostore's own writes pass the same checks (under trusted_schema=OFF).
    using store = openStore(path);
    const s = create(SkillSchema, { name: "after" });
    store.saveResource(SkillSchema, "skill", "after", s);
    store.saveAudit(SkillSchema, "skill", "after", s);
  }));

Deno.test("a file protostore created refuses the Go daemon's writes too", () =>
  withTempDir((dir) => {
    const path = `${dir}/new.sqlite`;
    {
      using store = openStore(path);
      const s = create(SkillSchema, { name: "lint" });
      store.saveResource(SkillSchema, "skill", "lint", s);
      store.saveAudit(SkillSchema, "skill", "lint", s);
    }
    assertGoWritesFail(path);
  }));

Deno.test("a time that is not ISO-8601 from protostore's own code is a clear StoreError", () =>
  withTempDir((dir) => {
    using store = openStore(`${dir}/db.sqlite`);
    const now = Date.now;
    // Year 10000: toISOString() gives "+010000-01-01T…", which the checks refuse.
    Date.now = () => Date.UTC(10000, 0, 1);
    try {
      assert.throws(
        () =>
          store.saveResource(
            SkillSchema,
            "skill",
            "s",
            create(SkillSchema, {}),
          ),
        (error: Error) => {
          assert.ok(error instanceof StoreError);
          assert.equal(error.code, "constraint");
          assert.match(error.message, /not an ISO-8601 time/);
          assert.doesNotMatch(error.message, /Go daemon/);
          return true;
        },
      );
    } finally {
      Date.now = now;
    }
  }));

/** Resources and audit rows as the Go store reads them. */
function goView(path: string) {
  return {
    resources: rows(
      path,
      "SELECT kind, id, hex(data) AS data, updated_at FROM resources ORDER BY kind, id",
    ),
    audit: rows(
      path,
      `SELECT id, kind, resource_id, hex(data) AS data, archived_at,
              coalesce(version_hash, '') AS version_hash, coalesce(tag, '') AS tag
       FROM resource_audit ORDER BY id`,
    ),
  };
}

Deno.test("downgrade gives the Go store back every row, history and orphan, in its own schema", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    writeSeededGoDb(path, 3, {
      resources: 300,
      auditsPerResource: 3,
      payload: 200,
      orphanFraction: 0.1,
    });
    const before = goView(path);
    const goSchema = rows(
      path,
      "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
    );
    assert.ok(before.audit.length > 300);
    migrate(path);
    assert.ok(count(path, "resource_audit_orphans") > 0);

    const result = downgrade(path);
    assert.deepEqual(
      { ...result, path: undefined },
      {
        path: undefined,
        fromVersion: MIGRATIONS.at(-1)!.version,
        schemaVersion: 2,
        resources: before.resources.length,
        auditRecords: before.audit.length,
        orphanAuditRecords: result.orphanAuditRecords,
      },
    );
    assert.ok(result.orphanAuditRecords > 0);
    // Whole-second Go times come back exactly; NULL labels read as '' as Go wrote them.
    assert.deepEqual(goView(path), before);
    // The very schema the Go store creates (table names and DDL, modulo quoting).
    const after = rows(
      path,
      "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
    );
    assert.deepEqual(
      after.map((r) => [r.type, r.name]),
      goSchema.map((r) => [r.type, r.name]),
    );
    const status = migrationStatus(path);
    assert.equal(status.schemaVersion, 2);
    assert.deepEqual(status.problems, []);
    assert.deepEqual(
      status.pending.map((p) => p.name),
      MIGRATIONS.slice(2).map((m) => m.name),
    );
    assert.deepEqual(rows(path, "PRAGMA journal_mode"), [{
      journal_mode: "delete",
    }]);
    const maxId = Math.max(...before.audit.map((a) => a.id as number));
    const [{ seq }] = rows(
      path,
      "SELECT seq FROM sqlite_sequence WHERE name = 'resource_audit'",
    );
    assert.ok((seq as number) >= maxId);

    // The Go store writes again: its INSERT OR REPLACE keeps the history (no cascade).
    const target = before.audit[0] as { kind: string; resource_id: string };
    const db = new DatabaseSync(path);
    const go = goRowWriter(db);
    go.resource({
      kind: target.kind,
      id: target.resource_id,
      data: new Uint8Array([8, 2]),
      updatedAt: "2026-03-01 10:00:00",
    });
    go.audit({
      kind: target.kind,
      resourceId: target.resource_id,
      data: new Uint8Array([8, 2]),
      archivedAt: "2026-03-01 10:00:00",
    });
    const newId =
      (db.prepare("SELECT max(id) AS id FROM resource_audit").get() as {
        id: number;
      }).id;
    db.close();
    assert.equal(newId, (seq as number) + 1, "the id sequence continues");
    assert.equal(count(path, "resource_audit"), before.audit.length + 1);

    // And protostore upgrades it again, keeping what the Go store wrote meanwhile.
    const again = await runCli(["migrate", "--db", path]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      count(path, "resource_audit") + count(path, "resource_audit_orphans"),
      before.audit.length + 1,
    );
    openStore(path).close();
  }));

Deno.test("downgrade CLI: one line of summary; a Go file is left as it is", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    {
      using store = openStore(path);
      store.saveResource(SkillSchema, "skill", "s", create(SkillSchema, {}));
    }
    const first = await runCli(["downgrade", "--db", path]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      /^Downgraded .* to the Go store's version 2: 1 resource\(s\), 0 audit snapshot\(s\)/,
    );
    const bytes = Deno.readFileSync(path);
    const json = await runCli(["downgrade", "--db", path, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).schemaVersion, 2);
    assert.deepEqual(
      Deno.readFileSync(path),
      bytes,
      "a Go file is not touched",
    );
    const missing = await runCli([
      "downgrade",
      "--db",
      `${dir}/missing.sqlite`,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no database at/);
  }));
