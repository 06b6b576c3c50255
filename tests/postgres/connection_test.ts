/**
 * Tests of src/postgres/connection.ts against the test server: libpq's Unix socket forms
 * of a connection string reach the server (the driver's own URL parser takes none of them).
 */
import assert from "node:assert/strict";
import { fromJson } from "@bufbuild/protobuf";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { connectStore, StoreError } from "../../mod.ts";
import { runCli } from "../helpers/cli.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";
import { openPool } from "../../src/postgres/connection.ts";

Deno.test("postgres: libpq's Unix socket forms reach the server (?host=/dir, an empty host, a percent-encoded directory)", async () => {
  const server = await sharedPostgres();
  const dir = server.dataDir; // the server's unix_socket_directories (-k)
  const port = server.port;
  const schema = freshSchema();
  const urls = [
    `postgres://postgres@/postgres?host=${
      encodeURIComponent(dir)
    }&port=${port}`,
    `postgresql:///postgres?user=postgres&host=${dir}&port=${port}`,
    `postgresql://postgres@${encodeURIComponent(dir)}:${port}/postgres`,
  ];
  let revision = 0;
  for (const url of urls) {
    await using store = await connectStore(url, { schema });
    const saved = await store.saveResource(
      StructSchema,
      "agent",
      "a1",
      fromJson(StructSchema, { url }),
    );
    assert.equal(saved.revision, ++revision, url);
    // Over the socket, not TCP to the placeholder host: no client address.
    const pool = openPool(url, { schema, max: 1 });
    try {
      const [row] = await pool.unsafe("SELECT inet_client_addr() AS addr");
      assert.equal(row.addr, null, url);
    } finally {
      await pool.end();
    }
    const inspected = await runCli([
      "inspect",
      "--db",
      url,
      "--schema",
      schema,
    ]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, /agent/);
  }
});

Deno.test("connectStore refuses a connection string the driver cannot parse with a StoreError that does not quote its password", async () => {
  for (
    const url of [
      "postgres://app:pa/ss@127.0.0.1:1/db",
      "postgres://app:s3cret@db:port/app",
      "postgres://app@/db",
    ]
  ) {
    const error = await connectStore(url).then(
      () => assert.fail(`${url} opened`),
      (error: unknown) => error,
    );
    assert(error instanceof StoreError, String(error));
    assert.match(error.message, /is not a valid connection string/);
    assert.doesNotMatch(error.message, /pa\/ss|s3cret/);
  }
});

Deno.test("postgres: sslmode=require against a server without TLS fails to open with a TLS hint, not as a lost connection", async () => {
  const server = await sharedPostgres();
  const error = await connectStore(`${server.url}?sslmode=require`).then(
    () => assert.fail("opened without TLS"),
    (error: unknown) => error,
  );
  assert(error instanceof StoreError, String(error));
  assert.equal(error.code, "cant_open");
  assert.match(error.message, /TLS handshake failed; check sslmode/);
  assert.doesNotMatch(error.message, /rolled back/);
});

Deno.test("postgres: the longest schema name accepted still takes writes and watches; a longer one is refused at connect", async () => {
  const server = await sharedPostgres();
  // `protostore_<schema>` is the change channel, itself a 63-byte PostgreSQL name.
  const longest = `${freshSchema()}_`.padEnd(52, "x");
  await using store = await connectStore(server.url, { schema: longest });
  const saved = await store.saveResource(
    StructSchema,
    "agent",
    "a1",
    fromJson(StructSchema, {}),
  );
  const first = await store.watch({ afterRevision: 0 }).next();
  assert.equal(first.value?.revision, saved.revision);
  await assert.rejects(
    connectStore(server.url, { schema: `${longest}y` }),
    (e) => e instanceof StoreError && /at most 52/.test(e.message),
  );
});
