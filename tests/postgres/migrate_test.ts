/**
 * PostgreSQL migrations: `schema_version` with checksums, edited and newer databases
 * refused before any write, foreign schemas refused, concurrent migrators, and several
 * stores in one database under different schemas.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import postgres from "postgres";
import { connectStore, MigrationError, StoreError } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";
import { PG_MIGRATIONS } from "../../src/postgres/migrate.ts";

async function withAdmin<T>(
  fn: (sql: postgres.Sql) => Promise<T>,
): Promise<T> {
  const server = await sharedPostgres();
  const sql = postgres(server.url, { onnotice: () => {}, max: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/** Every table of `schema` with its row count, to prove "nothing changed". */
function shape(sql: postgres.Sql, schema: string) {
  return sql`SELECT table_name FROM information_schema.tables
    WHERE table_schema = ${schema} ORDER BY table_name`.then((rows) =>
    rows.map((r) => r.table_name)
  );
}

Deno.test("postgres migrate: a fresh schema gets every file recorded with its checksum; reconnecting applies nothing", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  await (await connectStore(server.url, { schema })).close();
  await (await connectStore(server.url, { schema })).close();
  await withAdmin(async (sql) => {
    const rows = await sql.unsafe(
      `SELECT version, name, checksum, applied_at FROM "${schema}".schema_version`,
    );
    assert.deepEqual(
      rows.map((r) => [r.version, r.name, r.checksum]),
      PG_MIGRATIONS.map((m) => [m.version, m.name, m.checksum]),
    );
    assert.match(rows[0].applied_at, /^\d{4}-\d\d-\d\dT.*Z$/);
  });
});

Deno.test("postgres migrate: an edited file is refused by name, a newer schema before any write", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  await (await connectStore(server.url, { schema })).close();
  await withAdmin(async (sql) => {
    await sql.unsafe(
      `UPDATE "${schema}".schema_version SET checksum = 'feed' WHERE version = 1`,
    );
    await assert.rejects(
      connectStore(server.url, { schema }),
      (e) => e instanceof MigrationError && e.file === "0001_store.sql",
    );
    await sql.unsafe(
      `UPDATE "${schema}".schema_version SET checksum = $1 WHERE version = 1`,
      [PG_MIGRATIONS[0].checksum],
    );
    await sql.unsafe(
      `INSERT INTO "${schema}".schema_version VALUES (99, 'x', '0099_future.sql', 'ab')`,
    );
    const before = await shape(sql, schema);
    await assert.rejects(
      connectStore(server.url, { schema }),
      (e) => e instanceof MigrationError && /newer/.test(e.message),
    );
    assert.deepEqual(await shape(sql, schema), before);
  });
});

Deno.test("postgres migrate: a schema holding another application's tables is refused untouched", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  await withAdmin(async (sql) => {
    await sql.unsafe(`CREATE SCHEMA "${schema}"`);
    await sql.unsafe(`CREATE TABLE "${schema}".customers (id int)`);
    await assert.rejects(
      connectStore(server.url, { schema }),
      (e) => e instanceof MigrationError && /customers/.test(e.message),
    );
    assert.deepEqual(await shape(sql, schema), ["customers"]);
  });
});

Deno.test("postgres migrate: read-only or migrate:false on an empty schema refuses and creates nothing", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  for (const options of [{ readOnly: true }, { migrate: false }]) {
    await assert.rejects(
      connectStore(server.url, { schema, ...options }),
      (e) => e instanceof MigrationError && e.file === "0001_store.sql",
    );
  }
  await withAdmin(async (sql) => {
    const rows =
      await sql`SELECT 1 FROM pg_namespace WHERE nspname = ${schema}`;
    assert.equal(rows.length, 0);
  });
});

Deno.test("postgres migrate: concurrent migrators are serialized; stores in other schemas of one database never meet", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  const stores = await Promise.all(
    Array.from(
      { length: 6 },
      () => connectStore(server.url, { schema, poolSize: 1 }),
    ),
  );
  await Promise.all(stores.map((s) => s.close()));
  const other = freshSchema();
  await using a = await connectStore(server.url, { schema });
  await using b = await connectStore(server.url, { schema: other });
  await a.saveResource(SkillSchema, "skill", "s", create(SkillSchema));
  assert.deepEqual(await b.listResources(SkillSchema, "skill"), []);
  assert.equal(await b.currentRevision(), 0);
  await withAdmin(async (sql) => {
    const rows = await sql.unsafe(
      `SELECT count(*)::int AS n FROM "${schema}".schema_version`,
    );
    assert.equal(rows[0].n, PG_MIGRATIONS.length);
  });
});

Deno.test("postgres connect: a bad schema name, an unknown scheme and a refused connection are clear errors without the password", async () => {
  const server = await sharedPostgres();
  await assert.rejects(
    connectStore(server.url, { schema: "Robert'); DROP" }),
    (e) => e instanceof StoreError && /schema must be/.test(e.message),
  );
  await assert.rejects(
    connectStore("mysql://u:secret@h/db"),
    (e) =>
      e instanceof StoreError && !e.message.includes("secret") &&
      /unsupported scheme/.test(e.message),
  );
  await assert.rejects(
    connectStore("postgres://u:secret@127.0.0.1:1/db"),
    (e) =>
      e instanceof StoreError && e.code === "cant_open" &&
      !e.message.includes("secret") && e.message.includes("***"),
  );
});
