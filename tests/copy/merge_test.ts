import assert from "node:assert/strict";
import postgres from "postgres";
import { fromJson } from "@bufbuild/protobuf";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import {
  type AsyncStore,
  connectStore,
  copyStore,
  CopyVerificationError,
  migrate,
  openStore,
  StoreError,
} from "../../mod.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";
import { dumpSqlite, dumpStore } from "../helpers/copy_dump.ts";
import { writeSeededGoDb } from "../helpers/go_store.ts";

const v = (value: unknown) => fromJson(StructSchema, { v: value as number });

/** A store location: a file, or a schema of the test server. */
interface End {
  url: string;
  schema?: string;
}

async function open(end: End): Promise<AsyncStore> {
  return await connectStore(end.url, { schema: end.schema });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A source and a target that share a past (the target began as an exact copy) and then
 * went apart: the source added a5 and changed a1 (and archived it); the target changed
 * a1 later (and archived it) and added b0.
 */
async function diverged(from: End, to: End): Promise<void> {
  {
    await using s = await open(from);
    for (let i = 0; i < 5; i++) {
      await s.saveResource(StructSchema, "agent", `a${i}`, v(i));
      await s.saveAudit(StructSchema, "agent", `a${i}`, v(i), { tag: `t${i}` });
    }
  }
  await copyStore(from.url, to.url, {
    fromSchema: from.schema,
    toSchema: to.schema,
  });
  {
    await using s = await open(from);
    await s.saveResource(StructSchema, "agent", "a5", v(5));
    await s.saveAudit(StructSchema, "agent", "a5", v(5));
    await s.saveResource(StructSchema, "agent", "a1", v("src"));
    await s.saveAudit(StructSchema, "agent", "a1", v("src"), {
      versionHash: "h-src",
    });
  }
  await sleep(5); // the target's a1 snapshot is the newer one
  {
    await using t = await open(to);
    await t.saveResource(StructSchema, "agent", "a1", v("dst"));
    await t.saveAudit(StructSchema, "agent", "a1", v("dst"));
    await t.saveResource(StructSchema, "other", "b0", v("b"));
  }
}

function merge(from: End, to: End, mode: "skip" | "overwrite") {
  return copyStore(from.url, to.url, {
    fromSchema: from.schema,
    toSchema: to.schema,
    merge: mode,
    batchSize: 3,
  });
}

const values = async (t: AsyncStore, id: string) =>
  (await t.listAuditHistory(StructSchema, "agent", id)).map((e) =>
    e.message.fields.v.kind.value
  );

async function mergeBothModes(from: End, to: End): Promise<void> {
  await diverged(from, to);
  let before: number;
  {
    await using t = await open(to);
    before = await t.currentRevision();
  }
  const skip = await merge(from, to, "skip");
  assert.deepEqual(skip.merge?.resources, {
    inserted: 1,
    replaced: 0,
    skipped: 1,
    unchanged: 4,
  });
  assert.equal(skip.merge?.snapshotsAdded, 2);
  assert.equal(skip.merge?.snapshotsPresent, 5);
  assert.equal(skip.merge?.schemasAdded, 0);
  assert.equal(skip.revision, before + 1);
  {
    await using t = await open(to);
    assert.equal(await t.currentRevision(), before + 1);
    assert.deepEqual(await t.changesSince(before), [
      { revision: before + 1, kind: "agent", id: "a5", type: "put" },
    ]);
    const a1 = await t.getResource(StructSchema, "agent", "a1");
    assert.equal(a1.fields.v.kind.value, "dst");
    assert.equal(
      (await t.getResource(StructSchema, "agent", "a5")).fields.v.kind.value,
      5,
    );
    // The source's a1 snapshot sits by its time, below the target's newer one, and
    // takes that one's revision: what a1 was at any earlier revision is unchanged.
    assert.deepEqual(await values(t, "a1"), ["dst", "src", 1]);
    const history = await t.listAuditHistory(StructSchema, "agent", "a1");
    assert.equal(history[1].revision, history[0].revision);
    assert.equal(history[1].versionHash, "h-src");
    // As getResourceAt(before) picks: the newest revision <= before, then time.
    const asOf = history.filter((e) => e.revision <= before).sort((a, b) =>
      b.revision - a.revision ||
      b.archivedAt.getTime() - a.archivedAt.getTime()
    );
    assert.equal(asOf[0].message.fields.v.kind.value, "dst");
    assert.deepEqual(await values(t, "a5"), [5]);
    assert.equal(
      (await t.listAuditHistory(StructSchema, "agent", "a5"))[0].revision,
      before + 1,
    );
  }
  // Again: nothing to do, nothing written.
  const dumped = await dumpStore(to.url, to.schema);
  const again = await merge(from, to, "skip");
  assert.deepEqual(again.merge?.resources, {
    inserted: 0,
    replaced: 0,
    skipped: 1,
    unchanged: 5,
  });
  assert.equal(again.merge?.snapshotsAdded, 0);
  assert.equal(again.revision, before + 1);
  assert.deepEqual(await dumpStore(to.url, to.schema), dumped);

  // Overwrite: a1 takes the source's message, at the next revision.
  const over = await merge(from, to, "overwrite");
  assert.deepEqual(over.merge?.resources, {
    inserted: 0,
    replaced: 1,
    skipped: 0,
    unchanged: 5,
  });
  assert.equal(over.merge?.snapshotsAdded, 0);
  assert.equal(over.revision, before + 2);
  {
    await using t = await open(to);
    assert.deepEqual(await t.changesSince(before + 1), [
      { revision: before + 2, kind: "agent", id: "a1", type: "put" },
    ]);
    const a1 = await t.getResource(StructSchema, "agent", "a1");
    assert.equal(a1.fields.v.kind.value, "src");
    assert.equal(
      (await t.getResource(StructSchema, "other", "b0")).fields.v.kind.value,
      "b",
    );
  }
  const overAgain = await merge(from, to, "overwrite");
  assert.equal(overAgain.merge?.resources.replaced, 0);
  assert.equal(overAgain.revision, before + 2);
  // The source is untouched by all this.
  {
    await using s = await open(from);
    assert.deepEqual(await values(s, "a1"), ["src", 1]);
  }
}

Deno.test("merge SQLite -> PostgreSQL: skip, overwrite, and again changes nothing", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    await mergeBothModes({ url: `${dir}/a.sqlite` }, {
      url: server.url,
      schema: freshSchema(),
    });
  });
});

Deno.test("merge PostgreSQL -> SQLite: skip, overwrite, and again changes nothing", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    await mergeBothModes({ url: server.url, schema: freshSchema() }, {
      url: `${dir}/b.sqlite`,
    });
  });
});

Deno.test("merge SQLite -> SQLite and PostgreSQL -> PostgreSQL", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    await mergeBothModes({ url: `${dir}/a.sqlite` }, {
      url: `${dir}/b.sqlite`,
    });
    await mergeBothModes(
      { url: server.url, schema: freshSchema() },
      { url: server.url, schema: freshSchema() },
    );
  });
});

Deno.test("merge into an empty target is the exact copy", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    {
      using s = openStore(`${dir}/a.sqlite`);
      s.saveResource(StructSchema, "agent", "a", v(1));
      s.saveAudit(StructSchema, "agent", "a", v(1));
      s.deleteResource("agent", "a");
      s.saveResource(StructSchema, "agent", "b", v(2));
    }
    const schema = freshSchema();
    const result = await copyStore(`${dir}/a.sqlite`, server.url, {
      toSchema: schema,
      merge: "overwrite",
    });
    assert.equal(result.merge, undefined);
    assert.deepEqual(
      await dumpStore(server.url, schema),
      dumpSqlite(`${dir}/a.sqlite`),
    );
    await copyStore(`${dir}/a.sqlite`, `${dir}/b.sqlite`, { merge: "skip" });
    assert.deepEqual(
      dumpSqlite(`${dir}/b.sqlite`),
      dumpSqlite(`${dir}/a.sqlite`),
    );
  });
});

Deno.test("merge adds message schemas by digest and maps the source's schema ids", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    {
      await using t = await connectStore(server.url, { schema });
      await t.saveResource(StructSchema, "k", "x", v(1));
    }
    {
      // The source's first schema is another type (its id differs from the target's).
      using s = openStore(`${dir}/a.sqlite`);
      const { ValueSchema } = await import("@bufbuild/protobuf/wkt");
      s.saveResource(
        ValueSchema,
        "value",
        "v",
        fromJson(ValueSchema, "text"),
      );
      s.saveResource(StructSchema, "k", "y", v(2));
    }
    const result = await copyStore(`${dir}/a.sqlite`, server.url, {
      toSchema: schema,
      merge: "skip",
    });
    assert.equal(result.merge?.schemasAdded, 1);
    assert.equal(result.tables.message_schemas.rows, 2);
    await using t = await connectStore(server.url, { schema });
    // Read back with a type check: the mapped schema id names the right type.
    assert.equal(
      (await t.getResource(StructSchema, "k", "y")).fields.v.kind.value,
      2,
    );
  });
});

Deno.test("a merge that fails half way leaves the target as it was", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    for (
      const [from, to] of [
        [{ url: `${dir}/a.sqlite` }, {
          url: server.url,
          schema: freshSchema(),
        }],
        [{ url: server.url, schema: freshSchema() }, {
          url: `${dir}/b.sqlite`,
        }],
      ] as [End, End][]
    ) {
      await diverged(from, to);
      const before = await dumpStore(to.url, to.schema);
      // Rows done: 1 schema, then 6 resources, then 7 snapshots; batches of 2.
      for (const [table, after] of [["resources", 3], ["resource_audit", 9]]) {
        await assert.rejects(
          copyStore(from.url, to.url, {
            fromSchema: from.schema,
            toSchema: to.schema,
            merge: "overwrite",
            batchSize: 2,
            onProgress: (p) => {
              if (p.table === table && p.done > (after as number)) {
                throw new Error("stopped half way");
              }
            },
          }),
          /stopped half way/,
        );
        assert.deepEqual(await dumpStore(to.url, to.schema), before);
      }
    }
  });
});

Deno.test("a merge whose writes do not land fails verification and rolls back", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const from = { url: `${dir}/a.sqlite` };
    const to = { url: server.url, schema: freshSchema() };
    await diverged(from, to);
    const before = await dumpStore(to.url, to.schema);
    // A trigger swallows the source's a5 snapshot.
    const sql = postgres(server.url, { onnotice: () => {} });
    try {
      await sql.unsafe(`
        CREATE FUNCTION ${to.schema}.swallow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.resource_id = 'a5' THEN RETURN NULL; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER swallow BEFORE INSERT ON ${to.schema}.resource_audit
          FOR EACH ROW EXECUTE FUNCTION ${to.schema}.swallow();`);
      await assert.rejects(
        merge(from, to, "skip"),
        (error) =>
          error instanceof CopyVerificationError &&
          error.table === "resource_audit",
      );
      await sql.unsafe(`DROP TRIGGER swallow ON ${to.schema}.resource_audit`);
    } finally {
      await sql.end();
    }
    assert.deepEqual(await dumpStore(to.url, to.schema), before);
  });
});

Deno.test("watchers of the target see the merged writes, in revision order", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    for (
      const [from, to] of [
        [{ url: `${dir}/a.sqlite` }, {
          url: server.url,
          schema: freshSchema(),
        }],
        [{ url: server.url, schema: freshSchema() }, {
          url: `${dir}/b.sqlite`,
        }],
      ] as [End, End][]
    ) {
      {
        await using s = await open(from);
        for (let i = 0; i < 7; i++) {
          await s.saveResource(StructSchema, "agent", `n${i}`, v(i));
        }
      }
      await using t = await open(to);
      await t.saveResource(StructSchema, "agent", "n3", v("mine"));
      const start = await t.currentRevision();
      const seen: string[] = [];
      const watching = (async () => {
        for await (const change of t.watch({ afterRevision: start })) {
          seen.push(`${change.revision} ${change.id}`);
          if (seen.length === 7) break;
        }
      })();
      await merge(from, to, "overwrite");
      await watching;
      assert.deepEqual(
        seen,
        ["n0", "n1", "n2", "n3", "n4", "n5", "n6"].map((id, i) =>
          `${start + 1 + i} ${id}`
        ),
      );
      // And the target's own next write continues after them.
      const next = await t.saveResource(StructSchema, "agent", "z", v(0));
      assert.equal(next.revision, start + 8);
    }
  });
});

Deno.test("merge refuses an unknown mode before touching anything", async () => {
  await withTempDir(async (dir) => {
    migrate(`${dir}/a.sqlite`);
    await assert.rejects(
      copyStore(`${dir}/a.sqlite`, `${dir}/b.sqlite`, {
        merge: "replace" as "skip",
      }),
      (error) =>
        error instanceof StoreError && /skip, overwrite/.test(error.message),
    );
    assert.throws(() => Deno.statSync(`${dir}/b.sqlite`));
  });
});

Deno.test("a Go-era file's histories and orphans merge in once, in time order", async () => {
  await withTempDir(async (dir) => {
    const server = await sharedPostgres();
    writeSeededGoDb(`${dir}/a.sqlite`, 11, {
      resources: 30,
      auditsPerResource: 3,
      payload: 20,
      orphanFraction: 0.3,
    });
    migrate(`${dir}/a.sqlite`);
    const source = dumpSqlite(`${dir}/a.sqlite`);
    const orphans = source.tables.resource_audit_orphans.length;
    assert(orphans > 0);
    for (
      const to of [{ url: server.url, schema: freshSchema() }, {
        url: `${dir}/b.sqlite`,
      }]
    ) {
      {
        await using t = await open(to);
        await t.saveResource(StructSchema, "mine", "x", v(1));
        await t.saveAudit(StructSchema, "mine", "x", v(1));
      }
      const first = await merge({ url: `${dir}/a.sqlite` }, to, "skip");
      assert.equal(first.merge?.orphansAdded, orphans);
      assert.equal(
        first.merge?.snapshotsAdded,
        source.tables.resource_audit.length,
      );
      assert.equal(
        first.merge?.resources.inserted,
        source.tables.resources.length,
      );
      const again = await merge({ url: `${dir}/a.sqlite` }, to, "overwrite");
      assert.equal(again.merge?.orphansAdded, 0);
      assert.equal(again.merge?.orphansPresent, orphans);
      assert.equal(again.merge?.snapshotsAdded, 0);
      assert.equal(
        again.merge?.resources.unchanged,
        source.tables.resources.length,
      );
      // Every history reads as in the source (times, labels, bytes, order); new ids
      // sit above the target's own snapshot.
      const target = await dumpStore(to.url, to.schema);
      const history = (d: typeof source, table: string) =>
        (d.tables[table] as Record<string, unknown>[])
          .filter((r) => r.kind !== "mine")
          .map((
            { kind, resource_id, data, archived_at, version_hash, tag },
          ) => ({
            kind,
            resource_id,
            data,
            archived_at,
            version_hash,
            tag,
          }));
      for (const table of ["resource_audit", "resource_audit_orphans"]) {
        assert.deepEqual(history(target, table), history(source, table));
      }
      const ids = target.tables.resource_audit as {
        id: number;
        kind: string;
      }[];
      assert.equal(ids[0].kind, "mine");
      assert(
        (target.tables.resource_audit_orphans as { id: number }[]).every((o) =>
          o.id > ids[ids.length - 1].id
        ),
      );
    }
  });
});
