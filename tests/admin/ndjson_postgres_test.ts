/**
 * NDJSON export and import on PostgreSQL: the same store gives the same export lines on
 * SQLite and PostgreSQL (all options), a SQLite export imports into PostgreSQL and
 * exports back identical, and the import keeps SQLite's rules there: all or nothing,
 * bad lines named by number, existing resources refused, revisions carried into an
 * empty store, else one new revision in the change feed.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import postgres from "postgres";
import {
  CompactedError,
  connectStore,
  copyStore,
  type ExportOptions,
  exportStore,
  importStore,
  openStore,
  StoreError,
} from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { makeDatabase, ORIGINS } from "../helpers/lifecycle.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";

async function exportLines(
  location: string,
  options: ExportOptions & { schema?: string },
): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of exportStore(location, options)) lines.push(line);
  return lines;
}

/** The lines with the header's time of export taken out. */
const timeless = (lines: string[]) =>
  lines.map((l, i) => i === 0 ? l.replace(/"exportedAt":"[^"]*",/, "") : l);

for (const origin of ORIGINS) {
  Deno.test(`export gives the same lines from SQLite and from PostgreSQL for the same store (${origin} file)`, () =>
    withTempDir(async (dir) => {
      const server = await sharedPostgres();
      const schema = freshSchema();
      const path = `${dir}/source.sqlite`;
      await makeDatabase(origin, path);
      await copyStore(path, server.url, { toSchema: schema });
      const kind = JSON.parse(
        (await exportLines(path, {})).find((l) => l.includes('"resource"'))!,
      ).kind;
      for (
        const options of [
          {},
          { history: true },
          { history: true, decoded: true },
          { kind, history: true, decoded: true },
          { kind: "no-such-kind", history: true },
        ] as ExportOptions[]
      ) {
        const sqlite = await exportLines(path, options);
        const pg = await exportLines(server.url, { ...options, schema });
        assert(sqlite.length >= 1);
        assert.deepEqual(
          timeless(pg),
          timeless(sqlite),
          JSON.stringify(options),
        );
      }
    }));
}

Deno.test("export from PostgreSQL pages through many resources with their histories in order", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    const path = `${dir}/many.sqlite`;
    {
      using store = openStore(path);
      store.transaction(() => {
        for (let i = 0; i < 1234; i++) {
          const id = `r${String(i).padStart(5, "0")}`;
          const kind = i % 3 === 0 ? "a" : "b";
          store.saveResource(
            SkillSchema,
            kind,
            id,
            create(SkillSchema, { name: id }),
          );
          for (let v = 0; v < i % 3; v++) {
            store.saveAudit(
              SkillSchema,
              kind,
              id,
              create(SkillSchema, { name: `${id}.${v}` }),
              {
                tag: `v${v}`,
              },
            );
          }
        }
      });
    }
    await copyStore(path, server.url, { toSchema: schema });
    const options = { history: true };
    const pg = await exportLines(server.url, { ...options, schema });
    assert.equal(
      pg.filter((l) => l.includes('"type":"resource"')).length,
      1234,
    );
    const sqlite = await exportLines(path, options);
    assert.deepEqual(timeless(pg), timeless(sqlite));
    // And imported in batches into another schema, it exports the same again.
    const other = freshSchema();
    const summary = await importStore(server.url, streamOf(sqlite), {
      schema: other,
    });
    assert.equal(summary.snapshots, 1233);
    assert.deepEqual(
      timeless(await exportLines(server.url, { ...options, schema: other })),
      timeless(sqlite),
    );
  }));

const encoder = new TextEncoder();
const streamOf = (lines: string[]) =>
  ReadableStream.from([encoder.encode(lines.join("\n") + "\n")]);

/** Every row of a PostgreSQL store's tables and its revision state, to compare. */
async function pgRows(url: string, schema: string): Promise<unknown> {
  const sql = postgres(url, { onnotice: () => {}, max: 1 });
  try {
    const out: Record<string, unknown> = {};
    for (
      const [table, order] of [
        ["resources", "kind, id"],
        ["resource_audit", "id"],
        ["resource_audit_orphans", "id"],
        ["resource_changes", "revision, kind, id"],
        ["message_schemas", "id"],
        ["revision_state", "id"],
      ]
    ) {
      out[table] = await sql.unsafe(
        `SELECT * FROM "${schema}".${table} ORDER BY ${order}`,
      );
    }
    return out;
  } finally {
    await sql.end();
  }
}

for (const origin of ORIGINS) {
  Deno.test(`SQLite -> NDJSON -> PostgreSQL -> NDJSON gives the same lines, ids and revisions (${origin} file)`, () =>
    withTempDir(async (dir) => {
      const server = await sharedPostgres();
      const schema = freshSchema();
      const path = `${dir}/source.sqlite`;
      await makeDatabase(origin, path);
      const options = { history: true };
      const lines = await exportLines(path, options);
      const file = `${dir}/export.ndjson`;
      Deno.writeTextFileSync(file, lines.join("\n") + "\n");
      const summary = await importStore(server.url, file, { schema });
      assert.equal(summary.keptIds, true);
      assert.equal(summary.keptRevisions, true);
      assert.equal(
        summary.resources,
        lines.filter((l) => l.includes('"type":"resource"')).length,
      );
      const again = await exportLines(server.url, { ...options, schema });
      assert.deepEqual(timeless(again), timeless(lines));
      // The counter goes on from the export's revision; a watcher from before lists.
      await using store = await connectStore(server.url, {
        schema,
        poolSize: 1,
      });
      const revision = JSON.parse(lines[0]).revision as number;
      assert.equal(await store.currentRevision(), revision);
      const saved = await store.saveResource(
        SkillSchema,
        "skill",
        "after-import",
        create(SkillSchema, {}),
      );
      assert.equal(saved.revision, revision + 1);
      if (revision > 0) {
        await assert.rejects(store.changesSince(0), CompactedError);
      }
      // New snapshots take ids above every imported one (orphans included).
      const ids = lines.filter((l) => /"type":"(snapshot|orphan)"/.test(l))
        .map((l) => JSON.parse(l).auditId as number);
      const audit = await store.saveAudit(
        SkillSchema,
        "skill",
        "after-import",
        create(SkillSchema, {}),
      );
      assert(audit.id > Math.max(0, ...ids), `${audit.id}`);
    }));
}

Deno.test("import into PostgreSQL is all or nothing: a bad line is named by number and nothing is written", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    const path = `${dir}/source.sqlite`;
    await makeDatabase("store", path);
    const lines = await exportLines(path, { history: true });
    // A store that already holds something, so the refusals leave it as it was.
    {
      await using store = await connectStore(server.url, {
        schema,
        poolSize: 1,
      });
      await store.saveResource(SkillSchema, "other", "x", create(SkillSchema));
    }
    const before = await pgRows(server.url, schema);
    const resource = lines.findIndex((l) => l.includes('"type":"resource"'));
    const broken: [string, string[], RegExp][] = [
      ["not JSON", lines.toSpliced(7, 1, "{oops"), /^line 8: not JSON/],
      [
        "bad base64",
        lines.toSpliced(
          9,
          1,
          lines[9].replace(/"data":"[^"]*"/, '"data":"%%%"'),
        ),
        /^line 10: data is not base64/,
      ],
      ["no header", lines.slice(1), /^line 1: not a protostore export/],
      [
        // Found when its batch is written, after later lines were read.
        "duplicate resource",
        [...lines.toSpliced(resource + 2, 0, lines[resource])],
        new RegExp(`^line ${resource + 3}: resource .* already exists`),
      ],
      [
        "duplicate, then a broken line in the same batch",
        [...lines.toSpliced(resource + 2, 0, lines[resource]), "{oops"],
        new RegExp(`^line ${resource + 3}: resource .* already exists`),
      ],
      [
        "snapshot first",
        [
          lines[0],
          lines[1],
          lines.find((l) => l.includes('"type":"snapshot"'))!,
        ],
        /^line 3: snapshot of .* before its resource/,
      ],
      [
        "NUL in an id",
        lines.toSpliced(
          resource,
          1,
          lines[resource].replace(/"id":"([^"]*)"/, '"id":"$1\\u0000"'),
        ),
        new RegExp(`^line ${resource + 1}: .*contains NUL`),
      ],
    ];
    for (const [what, edited, pattern] of broken) {
      await assert.rejects(
        importStore(server.url, streamOf(edited), { schema }),
        (error) => error instanceof StoreError && pattern.test(error.message),
        what,
      );
      assert.deepEqual(
        await pgRows(server.url, schema),
        before,
        `${what}: nothing written`,
      );
    }
    // A resource already in the store is refused, and nothing is written.
    const summary = await importStore(server.url, streamOf(lines), { schema });
    assert.equal(summary.keptRevisions, false);
    const full = await pgRows(server.url, schema);
    await assert.rejects(
      importStore(server.url, streamOf(lines), { schema }),
      /line \d+: resource .* already exists/,
    );
    assert.deepEqual(await pgRows(server.url, schema), full);
  }));

Deno.test("import into a PostgreSQL store with revisions: one new revision for every resource, in the change feed, and a watcher sees it", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    const path = `${dir}/source.sqlite`;
    await makeDatabase("store", path);
    await using store = await connectStore(server.url, { schema, poolSize: 2 });
    await store.saveResource(SkillSchema, "other", "x", create(SkillSchema));
    const before = await store.currentRevision();
    const abort = new AbortController();
    const seen: number[] = [];
    const watching = (async () => {
      for await (const change of store.watch({ signal: abort.signal })) {
        seen.push(change.revision);
        if (seen.length === 15) abort.abort();
      }
    })();
    const summary = await importStore(
      server.url,
      streamOf(await exportLines(path, { history: true })),
      { schema },
    );
    assert.equal(summary.keptRevisions, false);
    assert.equal(summary.resources, 15);
    await watching;
    assert.deepEqual(seen, Array(15).fill(before + 1));
    assert.equal(await store.currentRevision(), before + 1);
    const changes = await store.changesSince(before);
    assert.equal(changes.length, 15);
    assert(changes.every((c) => c.type === "put"));
    const entry = await store.getResourceEntry(SkillSchema, "skill", "skill-1");
    assert.equal(entry.revision, before + 1);
    // Snapshots kept their order: the newest one is the last exported one.
    const history = await store.listAuditHistory(
      SkillSchema,
      "skill",
      "skill-1",
    );
    assert.equal(history.length, 4);
  }));

Deno.test("a failed import into a new SQLite file or a new PostgreSQL schema leaves neither behind; a good one creates them", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const path = `${dir}/source.sqlite`;
    await makeDatabase("store", path);
    const lines = await exportLines(path, { history: true });
    const broken = [...lines, "{oops"];
    const schema = freshSchema();
    const file = `${dir}/new/dir/target.sqlite`;
    for (
      const [location, options] of [[server.url, { schema }], [
        file,
        {},
      ]] as const
    ) {
      await assert.rejects(
        importStore(location, streamOf(broken), options),
        /line \d+: not JSON/,
      );
    }
    assert.throws(() => Deno.statSync(`${dir}/new`), Deno.errors.NotFound);
    const sql = postgres(server.url, { onnotice: () => {} });
    try {
      const exists = async () =>
        (await sql`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${schema}`)[
          0
        ].n;
      assert.equal(await exists(), 0, "no schema after the failed import");
      const summary = await importStore(server.url, streamOf(lines), {
        schema,
      });
      assert.equal(summary.keptRevisions, true);
      assert.equal(await exists(), 1);
    } finally {
      await sql.end();
    }
    assert.equal(
      (await importStore(file, streamOf(lines))).keptRevisions,
      true,
    );
    // An existing file is never removed by a failed import.
    await assert.rejects(
      importStore(file, streamOf([lines[0], "{oops"])),
      /line 2: not JSON/,
    );
    Deno.statSync(file);
  }));
