import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { fromJson } from "@bufbuild/protobuf";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import {
  connectStore,
  copyStore,
  CopyVerificationError,
  importBadgerBackup,
  migrate,
  openStore,
  TargetNotEmptyError,
} from "../../mod.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { writeSeededGoDb } from "../helpers/go_store.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";
import { dumpSqlite as dump } from "../helpers/copy_dump.ts";

const FIXTURE =
  new URL("../fixtures/badger/backup.bak", import.meta.url).pathname;

/** A store with everything copy must keep: a migrated Go file (histories, orphans,
 * NULL and absent hashes), Store writes (schemas, revisions, a delete, a compaction). */
function buildSource(path: string): void {
  writeSeededGoDb(path, 7, {
    resources: 60,
    auditsPerResource: 3,
    payload: 40,
    orphanFraction: 0.2,
  });
  migrate(path);
  using store = openStore(path);
  for (let i = 0; i < 5; i++) {
    const msg = fromJson(StructSchema, { i, text: "tab\there\nnew\\line" });
    store.saveResource(StructSchema, "agent", `a${i}`, msg);
    store.saveAudit(StructSchema, "agent", `a${i}`, msg, {
      versionHash: `sha256:${i}`,
      tag: i % 2 ? "odd" : undefined,
    });
  }
  store.deleteResource("agent", "a4");
  store.transaction(() => {
    store.saveResource(StructSchema, "agent", "a0", fromJson(StructSchema, {}));
    store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
  });
  store.compactChanges(store.currentRevision() - 2);
}

Deno.test("copy SQLite -> PostgreSQL -> SQLite keeps every row, id, revision and sequence", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    buildSource(`${dir}/a.sqlite`);
    const there = await copyStore(`${dir}/a.sqlite`, server.url, {
      toSchema: schema,
      batchSize: 17,
    });
    const back = await copyStore(server.url, `${dir}/b.sqlite`, {
      fromSchema: schema,
    });
    assert.deepEqual(back.tables, there.tables);
    assert.equal(back.changeLogDropped, false);
    const before = dump(`${dir}/a.sqlite`);
    const after = dump(`${dir}/b.sqlite`);
    assert(before.tables.resource_audit_orphans.length > 0);
    assert(before.tables.resource_changes.length > 0);
    assert.deepEqual(after, before);
    assert.equal(Deno.statSync(`${dir}/b.sqlite`).mode! & 0o777, 0o600);

    // The copy is a working store on both backends: same histories, revisions, and new
    // snapshots continue the id sequence.
    await using pg = await connectStore(server.url, { schema });
    using a = openStore(`${dir}/a.sqlite`);
    assert.equal(await pg.currentRevision(), a.currentRevision());
    assert.deepEqual(
      await pg.listAuditHistory(StructSchema, "agent", "a1"),
      a.listAuditHistory(StructSchema, "agent", "a1"),
    );
    const oldest = a.currentRevision() - 2;
    assert.deepEqual(await pg.changesSince(oldest), a.changesSince(oldest));
    assert.equal(a.changesSince(oldest).length, 3);
    const msg = fromJson(StructSchema, { next: true });
    const pgNext = await pg.saveAudit(StructSchema, "agent", "a1", msg);
    const next = a.saveAudit(StructSchema, "agent", "a1", msg);
    assert.equal(pgNext.id, next.id);
    assert.equal(pgNext.revision, next.revision);
  });
});

Deno.test("copy of a Badger import to PostgreSQL and back is byte-identical", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    await importBadgerBackup(`${dir}/badger.sqlite`, FIXTURE);
    await copyStore(`${dir}/badger.sqlite`, server.url, { toSchema: schema });
    await copyStore(server.url, `${dir}/back.sqlite`, { fromSchema: schema });
    assert.deepEqual(dump(`${dir}/back.sqlite`), dump(`${dir}/badger.sqlite`));
    // SQLite -> SQLite too.
    await copyStore(`${dir}/badger.sqlite`, `file://${dir}/again.sqlite`);
    assert.deepEqual(dump(`${dir}/again.sqlite`), dump(`${dir}/badger.sqlite`));
  });
});

function fileBytes(path: string): Uint8Array {
  return Deno.readFileSync(path);
}

Deno.test("copy refuses a non-empty target and leaves it untouched", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    buildSource(`${dir}/a.sqlite`);
    {
      using b = openStore(`${dir}/b.sqlite`);
      b.saveResource(StructSchema, "agent", "x", fromJson(StructSchema, {}));
    }
    const bytes = fileBytes(`${dir}/b.sqlite`);
    await assert.rejects(
      copyStore(`${dir}/a.sqlite`, `${dir}/b.sqlite`),
      (error) =>
        error instanceof TargetNotEmptyError && error.rows.resources === 1 &&
        error.rows.revision === 1,
    );
    assert.deepEqual(fileBytes(`${dir}/b.sqlite`), bytes);

    // PostgreSQL: a schema whose store had writes, even if all were deleted.
    const schema = freshSchema();
    {
      await using pg = await connectStore(server.url, { schema });
      await pg.saveResource(StructSchema, "k", "x", fromJson(StructSchema, {}));
      await pg.deleteResource("k", "x");
    }
    await assert.rejects(
      copyStore(`${dir}/a.sqlite`, server.url, { toSchema: schema }),
      (error) =>
        error instanceof TargetNotEmptyError && error.rows.revision === 2 &&
        error.rows.resources === 0,
    );
    await using pg = await connectStore(server.url, { schema });
    assert.equal(await pg.currentRevision(), 2);
    assert.deepEqual(await pg.changesSince(0), [
      { revision: 1, kind: "k", id: "x", type: "put" },
      { revision: 2, kind: "k", id: "x", type: "delete" },
    ]);
  });
});

Deno.test("a copy that fails half way leaves the target as it was", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    buildSource(`${dir}/a.sqlite`);
    const failing = {
      batchSize: 5,
      onProgress: (p: { table: string; done: number }) => {
        if (p.table === "resource_audit" && p.done > 100) {
          throw new Error("stopped half way");
        }
      },
    };
    // A new file: nothing appears, not even a temporary file.
    await assert.rejects(
      copyStore(`${dir}/a.sqlite`, `${dir}/new.sqlite`, failing),
      /stopped half way/,
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((name) =>
        !name.startsWith("a.sqlite")
      ),
      [],
    );
    // An existing empty file: still empty.
    migrate(`${dir}/empty.sqlite`);
    const empty = dump(`${dir}/empty.sqlite`);
    await assert.rejects(
      copyStore(`${dir}/a.sqlite`, `${dir}/empty.sqlite`, failing),
      /stopped half way/,
    );
    assert.deepEqual(dump(`${dir}/empty.sqlite`), empty);
    // PostgreSQL: a new schema is created and migrated in the copy's transaction, so
    // it is not there afterwards; an existing empty one stays empty.
    const schema = freshSchema();
    await assert.rejects(
      copyStore(`${dir}/a.sqlite`, server.url, {
        ...failing,
        toSchema: schema,
      }),
      /stopped half way/,
    );
    const sql = postgres(server.url, { onnotice: () => {} });
    try {
      const [gone] = await sql`
        SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${schema}`;
      assert.equal(gone.n, 0);
      await (await connectStore(server.url, { schema })).close();
      await assert.rejects(
        copyStore(`${dir}/a.sqlite`, server.url, {
          ...failing,
          toSchema: schema,
        }),
        /stopped half way/,
      );
      const [row] = await sql.unsafe(
        `SELECT (SELECT count(*) FROM ${schema}.resources)::int AS r,
           (SELECT count(*) FROM ${schema}.resource_audit)::int AS a,
           (SELECT revision FROM ${schema}.revision_state)::int AS rev`,
      );
      assert.deepEqual({ ...row }, { r: 0, a: 0, rev: 0 });
    } finally {
      await sql.end();
    }
    // Then the same copy succeeds.
    const ok = await copyStore(`${dir}/a.sqlite`, server.url, {
      toSchema: schema,
    });
    assert(ok.tables.resource_audit.rows > 100);
  });
});

Deno.test("PostgreSQL refuses a NUL in a kind: the copy rolls back and says which table", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    migrate(`${dir}/a.sqlite`);
    const db = new DatabaseSync(`${dir}/a.sqlite`);
    db.exec(
      `INSERT INTO resources (kind, id, data, updated_at, revision, create_revision)
       VALUES ('ok', 'x', x'08', '2026-01-01T00:00:00.000Z', 1, 1),
              ('bad' || char(0) || 'kind', 'y', x'08', '2026-01-01T00:00:00.000Z', 1, 1);
       UPDATE change_log SET compacted_through = 1`,
    );
    db.close();
    const schema = freshSchema();
    await assert.rejects(
      copyStore(`${dir}/a.sqlite`, server.url, { toSchema: schema }),
      /COPY resources, line 2.*0x00|0x00.*COPY resources/,
    );
    // The NUL survives a SQLite -> SQLite copy.
    await copyStore(`${dir}/a.sqlite`, `${dir}/b.sqlite`);
    assert.deepEqual(dump(`${dir}/b.sqlite`), dump(`${dir}/a.sqlite`));
  });
});

Deno.test("a target that does not store what it was sent fails verification and rolls back", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    buildSource(`${dir}/a.sqlite`);
    const schema = freshSchema();
    // A trigger on the target alters one snapshot's tag as it is written: every count
    // still matches, only the checksum of resource_audit can tell.
    await (await connectStore(server.url, { schema })).close();
    const sql = postgres(server.url, { onnotice: () => {} });
    try {
      await sql.unsafe(`
        CREATE FUNCTION ${schema}.tamper() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.id = 3 THEN NEW.tag := 'tampered'; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER tamper BEFORE INSERT ON ${schema}.resource_audit
          FOR EACH ROW EXECUTE FUNCTION ${schema}.tamper();`);
      await assert.rejects(
        copyStore(`${dir}/a.sqlite`, server.url, { toSchema: schema }),
        (error) =>
          error instanceof CopyVerificationError &&
          error.table === "resource_audit" && /checksum/.test(error.expected),
      );
      const [row] = await sql.unsafe(
        `SELECT (SELECT count(*) FROM ${schema}.resource_audit)::int AS a,
           (SELECT revision FROM ${schema}.revision_state)::int AS rev`,
      );
      assert.deepEqual({ ...row }, { a: 0, rev: 0 });
    } finally {
      await sql.end();
    }
  });
});

Deno.test("copy refuses a store onto itself, naming its PostgreSQL schema; another schema of the same database is another store", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  await assert.rejects(
    copyStore(server.url, server.url, { fromSchema: schema, toSchema: schema }),
    new RegExp(`\\(schema ${schema}\\) to itself: give another target`),
  );
  {
    await using store = await connectStore(server.url, { schema });
    await store.saveResource(
      StructSchema,
      "skill",
      "a",
      fromJson(StructSchema, {}),
    );
  }
  const other = freshSchema();
  const result = await copyStore(server.url, server.url, {
    fromSchema: schema,
    toSchema: other,
  });
  assert.equal(result.tables.resources.rows, 1);
});
