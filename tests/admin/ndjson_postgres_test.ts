/**
 * NDJSON export and import on PostgreSQL: the same store gives the same export lines on
 * SQLite and PostgreSQL (all options), a SQLite export imports into PostgreSQL and
 * exports back identical, and the import keeps SQLite's rules there: all or nothing,
 * bad lines named by number, existing resources refused, revisions carried into an
 * empty store, else one new revision in the change feed.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  connectStore,
  copyStore,
  type ExportOptions,
  exportStore,
  openStore,
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
    assert.deepEqual(timeless(pg), timeless(await exportLines(path, options)));
  }));
