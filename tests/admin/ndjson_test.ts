/**
 * Export and import: a round trip through NDJSON into an empty database gives the same
 * rows byte for byte (messages, times, hashes, tags, types, history order, snapshot ids)
 * on Store-written, Go-written and Badger-imported files; import is all or nothing and
 * names the line it cannot read; --decoded uses the export's own descriptors.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import {
  CompactedError,
  exportNdjson,
  importNdjson,
  openStore,
  Store,
  StoreError,
} from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { dumpRows, makeDatabase, ORIGINS } from "../helpers/lifecycle.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { writeGoDb } from "../helpers/go_store.ts";
import { assertThrows } from "../helpers/assert.ts";

const encoder = new TextEncoder();
const streamOf = (text: string) => ReadableStream.from([encoder.encode(text)]);
const exportText = (path: string, history = true) =>
  [...exportNdjson(path, { history })].join("\n") + "\n";
/** The export without its time of export, to compare two exports. */
const timeless = (text: string) =>
  text.replace(/"exportedAt":"[^"]*",/, "").replace(/"revision":\d+,?/g, "");

for (const origin of ORIGINS) {
  Deno.test(`export then import into an empty database gives the same rows, ids and order (${origin} file)`, async () => {
    await withTempDir(async (dir) => {
      const source = `${dir}/source.sqlite`;
      await makeDatabase(origin, source);
      const text = exportText(source);
      const file = `${dir}/export.ndjson`;
      Deno.writeTextFileSync(file, text);
      using target = openStore(`${dir}/target.sqlite`);
      const summary = await importNdjson(target, file);
      assert.equal(summary.keptIds, true);
      assert.deepEqual(dumpRows(`${dir}/target.sqlite`), dumpRows(source));
      // Exported again, it is the same file (ids included).
      assert.equal(
        timeless(exportText(`${dir}/target.sqlite`)),
        timeless(text),
      );
      const counts = dumpRows(source) as Record<string, unknown[]>;
      assert.equal(summary.resources, counts.resources.length);
      assert.equal(summary.snapshots, counts.audit.length);
      assert.equal(summary.orphans, counts.orphans.length);
      if (origin === "go") {
        assert(summary.orphans > 0, "the Go file has orphans");
      }
    });
  });
}

Deno.test("import is all or nothing: a bad line is named by number and nothing is written", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/source.sqlite`;
    await makeDatabase("store", source);
    const lines = exportText(source).trimEnd().split("\n");
    const target = `${dir}/target.sqlite`;
    openStore(target).close();
    const before = dumpRows(target);
    const broken: [string, (ls: string[]) => string[], RegExp][] = [
      ["not JSON", (ls) => ls.toSpliced(7, 1, "{oops"), /^line 8: not JSON/],
      [
        "bad base64",
        (ls) =>
          ls.toSpliced(9, 1, ls[9].replace(/"data":"[^"]*"/, '"data":"%%%"')),
        /^line 10: data is not base64/,
      ],
      [
        "unknown type",
        (ls) => ls.toSpliced(5, 1, '{"type":"mystery"}'),
        /^line 6: unknown record type/,
      ],
      ["no header", (ls) => ls.slice(1), /^line 1: not a protostore export/],
      [
        "duplicate resource",
        (ls) => [...ls, ls.find((l) => l.includes('"type":"resource"'))!],
        new RegExp(`^line ${lines.length + 1}: resource .* already exists`),
      ],
      [
        "snapshot first",
        (ls) => [
          ls[0],
          ls[1],
          ls.find((l) => l.includes('"type":"snapshot"'))!,
        ],
        /^line 3: snapshot of .* before its resource/,
      ],
    ];
    using store = openStore(target);
    for (const [what, edit, pattern] of broken) {
      await assert.rejects(
        importNdjson(store, streamOf(edit(lines).join("\n") + "\n")),
        (error) => error instanceof StoreError && pattern.test(error.message),
        what,
      );
      assert.deepEqual(dumpRows(target), before, `${what}: nothing written`);
    }
    // A resource that already exists in the target is refused too.
    await importNdjson(store, streamOf(lines.join("\n")));
    const full = dumpRows(target);
    await assert.rejects(
      importNdjson(store, streamOf(lines.join("\n"))),
      /already exists/,
    );
    assert.deepEqual(dumpRows(target), full);
  });
});

Deno.test("export --kind and --decoded: one kind, messages as JSON from the export's own descriptors", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/source.sqlite`;
    await makeDatabase("store", source);
    const records = [...exportNdjson(source, { kind: "skill", decoded: true })]
      .map((l) => JSON.parse(l));
    const resources = records.filter((r) => r.type === "resource");
    assert.equal(resources.length, 5);
    assert(resources.every((r) => r.kind === "skill"));
    assert.equal(
      records.filter((r) => r.type === "snapshot").length,
      0,
      "no history without --history",
    );
    assert.equal(resources[0].typeName, "example.v1.Skill");
    assert.deepEqual(resources[0].message.tools, [
      "tool-0",
      "tool-1",
      "tool-2",
      "tool-3",
    ]);
    // Decoded lines import like plain ones: `message` is ignored, the bytes are what count.
    using target = openStore(`${dir}/target.sqlite`);
    await importNdjson(
      target,
      streamOf(records.map((r) => JSON.stringify(r)).join("\n")),
    );
    assert.equal(
      target.getResource(SkillSchema, "skill", "skill-2").description,
      "version 4",
    );
  });
});

function revisions(path: string) {
  using store = openStore(path, { readOnly: true });
  const db = Store.connectionOf(store);
  return {
    current: store.currentRevision(),
    resources: db.prepare(
      "SELECT kind, id, revision, create_revision FROM resources ORDER BY kind, id",
    ).all(),
    audit: db.prepare(
      "SELECT id, revision FROM resource_audit ORDER BY id",
    ).all(),
  };
}

for (const origin of ORIGINS) {
  Deno.test(`export then import carries revisions into an empty database; the counter goes on from there (${origin} file)`, async () => {
    await withTempDir(async (dir) => {
      const source = `${dir}/source.sqlite`;
      await makeDatabase(origin, source);
      using target = openStore(`${dir}/target.sqlite`);
      const summary = await importNdjson(target, streamOf(exportText(source)));
      assert.equal(summary.keptRevisions, true);
      const expected = revisions(source);
      assert.deepEqual(revisions(`${dir}/target.sqlite`), expected);
      // The next write takes the next revision; a watcher from before the import lists.
      const { revision } = target.saveResource(
        SkillSchema,
        "skill",
        "after",
        create(SkillSchema, {}),
      );
      assert.equal(revision, expected.current + 1);
      assert.throws(() => target.changesSince(0), CompactedError);
    });
  });
}

Deno.test("import into a database with revisions: every imported resource takes the import's one revision, in the change feed", async () => {
  await withTempDir(async (dir) => {
    const source = `${dir}/source.sqlite`;
    await makeDatabase("store", source);
    using target = openStore(`${dir}/target.sqlite`);
    target.saveResource(SkillSchema, "other", "x", create(SkillSchema, {}));
    const before = target.currentRevision();
    const summary = await importNdjson(target, streamOf(exportText(source)));
    assert.equal(summary.keptRevisions, false);
    assert.equal(target.currentRevision(), before + 1);
    const changes = target.changesSince(before);
    assert.equal(changes.length, summary.resources);
    assert(changes.every((c) => c.revision === before + 1 && c.type === "put"));
    assert.equal(
      target.getResourceEntry(SkillSchema, "skill", "skill-1").revision,
      before + 1,
    );
  });
});

Deno.test("export refuses another application's database and an empty file in its own words, untouched", async () => {
  await withTempDir((dir) => {
    const crm = `${dir}/crm.sqlite`;
    const db = new DatabaseSync(crm);
    db.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
    db.close();
    const empty = `${dir}/empty.sqlite`;
    Deno.writeFileSync(empty, new Uint8Array());
    for (const [path, found] of [[crm, /table customers/], [empty, /empty/]]) {
      const before = Deno.readFileSync(path as string);
      assertThrows(
        () => exportText(path as string),
        StoreError,
        /not a protostore database/,
        found as RegExp,
      );
      assert.deepEqual(Deno.readFileSync(path as string), before);
    }
  });
});

Deno.test("export refuses a view over an endless query in place of any table it reads", async () => {
  const endless =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)";
  const views: Record<string, string> = {
    resources:
      `SELECT 'skill' AS kind, x AS id, x'00' AS data, '' AS updated_at, NULL AS schema_id FROM c`,
    resource_audit:
      `SELECT x AS id, 'skill' AS kind, 'a' AS resource_id, x'00' AS data, '' AS archived_at, NULL AS version_hash, NULL AS tag, NULL AS schema_id FROM c`,
    resource_audit_orphans:
      `SELECT x AS id, 'skill' AS kind, 'a' AS resource_id, x'00' AS data, '' AS archived_at, NULL AS version_hash, NULL AS tag, NULL AS schema_id FROM c`,
    message_schemas:
      `SELECT x AS id, '' AS type_name, x'00' AS descriptor_set, '' AS digest, '' AS created_at FROM c`,
  };
  for (const [table, select] of Object.entries(views)) {
    await withTempDir(async (dir) => {
      const path = `${dir}/crafted.sqlite`;
      await makeDatabase("store", path);
      const db = new DatabaseSync(path);
      db.exec(`PRAGMA foreign_keys = OFF; DROP TABLE ${table};
        CREATE VIEW ${table} AS ${endless} ${select}`);
      db.close();
      // Before the fix: "not authorized" (or no such table) as an unexpected error.
      assertThrows(
        () => exportText(path),
        StoreError,
        new RegExp(`${table} is a view`),
      );
    });
  }
});

for (const version of [1, 2] as const) {
  Deno.test(`export reads a Go v${version} file as the Go store left it (unmigrated), and it imports`, async () => {
    await withTempDir(async (dir) => {
      const source = `${dir}/go.sqlite`;
      writeGoDb(source, {
        version,
        resources: [{
          kind: "skill",
          id: "s1",
          data: new Uint8Array([8, 1]),
          updatedAt: "2026-01-25 10:00:00",
        }],
        audit: version === 2
          ? [{
            kind: "skill",
            resourceId: "s1",
            data: new Uint8Array([8, 1]),
            archivedAt: "2026-01-25 09:00:00",
            tag: "v1",
          }]
          : [],
      });
      const before = Deno.readFileSync(source);
      const lines = exportText(source).trimEnd().split("\n").map((l) =>
        JSON.parse(l)
      );
      assert.deepEqual(Deno.readFileSync(source), before);
      assert.equal(lines[1].updatedAt, "2026-01-25T10:00:00.000Z");
      if (version === 2) {
        assert.equal(lines[2].archivedAt, "2026-01-25T09:00:00.000Z");
      }
      const file = `${dir}/export.ndjson`;
      Deno.writeTextFileSync(file, exportText(source));
      using target = openStore(`${dir}/target.sqlite`);
      const summary = await importNdjson(target, file);
      assert.equal(summary.resources, 1);
      assert.equal(summary.snapshots, version === 2 ? 1 : 0);
    });
  });
}
