/**
 * Every command with `--db postgres://…` (and `$PROTOSTORE_DB`), `copy` between
 * backends, and the password of a connection string never printed: not on success,
 * not with a wrong password, not when the server is unreachable.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { create } from "@bufbuild/protobuf";
import { connectStore, openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { cliCommand, cliJson, runCli } from "../helpers/cli.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { makeDatabase } from "../helpers/lifecycle.ts";
import { main } from "../../src/cli/main.ts";
import {
  freshSchema,
  type PostgresServer,
  sharedPostgres,
} from "../helpers/postgres.ts";

const FIXTURE =
  new URL("../fixtures/badger/backup.bak", import.meta.url).pathname;
const PASSWORD = "Pw-7fq2-ZZtop";

/** A role that must give its password (scram), on the shared server; its URL. */
let passwordUrl: Promise<string> | undefined;
function withPassword(server: PostgresServer): Promise<string> {
  return passwordUrl ??= (async () => {
    const sql = postgres(server.url, { onnotice: () => {} });
    try {
      await sql.unsafe(
        `CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD '${PASSWORD}'`,
      );
      const hba = join(server.dataDir, "pg_hba.conf");
      Deno.writeTextFileSync(
        hba,
        "host all pwuser 127.0.0.1/32 scram-sha-256\n" +
          Deno.readTextFileSync(hba),
      );
      await sql`SELECT pg_reload_conf()`;
    } finally {
      await sql.end();
    }
    return `postgres://pwuser:${PASSWORD}@127.0.0.1:${server.port}/postgres`;
  })();
}

async function store(url: string, schema: string) {
  const s = await connectStore(url, { schema, poolSize: 1 });
  await s.saveResource(
    SkillSchema,
    "skill",
    "lint",
    create(SkillSchema, {
      name: "lint",
    }),
  );
  await s.saveAudit(
    SkillSchema,
    "skill",
    "lint",
    create(SkillSchema, {
      name: "lint v1",
    }),
    { tag: "v1" },
  );
  await s.saveResource(
    SkillSchema,
    "skill",
    "lint",
    create(SkillSchema, {
      name: "lint v2",
    }),
  );
  await s.close();
}

Deno.test("migrate, inspect and audit-history take --db postgres:// and print what SQLite's do", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  const db = ["--db", server.url, "--schema", schema];
  const status = await runCli(["migrate", "--status", ...db]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(
    status.stdout,
    /does not exist yet\): schema version 0, 1 pending/,
  );
  const migrated = await runCli(["migrate", ...db]);
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.match(migrated.stdout, /^Applied 1 migration\(s\) to postgres:\/\//);
  assert.match((await runCli(["migrate", ...db])).stdout, /is up to date/);

  await store(server.url, schema);
  const overview = cliJson<Record<string, unknown>>(
    await runCli(["inspect", ...db, "--json", "--check"]),
  );
  assert.equal(overview.backend, "postgres");
  // The same fields from a file: programs read one shape, whichever backend.
  await withTempDir(async (dir) => {
    {
      using s = openStore(`${dir}/a.sqlite`);
      s.saveResource(SkillSchema, "skill", "x", create(SkillSchema));
    }
    const file = cliJson<Record<string, unknown>>(
      await runCli(["inspect", "--db", `${dir}/a.sqlite`, "--json", "--check"]),
    );
    assert.equal(file.backend, "sqlite");
    assert.deepEqual(Object.keys(file).sort(), Object.keys(overview).sort());
  });
  assert.equal(overview.resources, 1);
  assert.equal(overview.auditRecords, 1);
  assert.equal(overview.integrity, "ok");
  assert.deepEqual(overview.revisions, {
    revision: 2,
    compactedThrough: 0,
    changes: 2,
  });
  const text = await runCli(["inspect", ...db]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^server: +PostgreSQL 18/m);
  assert.match(text.stdout, /^skill +1 +1 +0 /m);

  const one = await runCli(["inspect", "skill", "lint", ...db]);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /^type: +example\.v1\.Skill/m);
  assert.match(
    one.stdout,
    /^revision: +2 \(created at 1; changes in the log: 1, 2\)/m,
  );
  assert.match(one.stdout, /"name": "lint v2"/);
  const missing = await runCli(["inspect", "skill", "nope", ...db]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /does not exist in postgres:\/\/.*schema t/);

  const history = await runCli([
    "audit-history",
    "skill",
    "lint",
    "--diff",
    ...db,
  ]);
  assert.equal(history.code, 0, history.stderr);
  assert.match(history.stdout, /v1/);
  assert.match(history.stdout, /name: "lint v1" → "lint v2"|lint v1/);
  const entries = cliJson<{ snapshots: { id: number; tag: string }[] }>(
    await runCli(["audit-history", "skill", "lint", "--json", ...db]),
  ).snapshots;
  assert.deepEqual(entries.map((e) => e.tag), ["v1"]);
  const shown = cliJson<{ id: number }>(
    await runCli([
      "audit-history",
      "skill",
      "lint",
      "--show",
      String(entries[0].id),
      "--json",
      ...db,
    ]),
  );
  assert.equal(shown.id, entries[0].id);

  // $PROTOSTORE_DB works as --db does.
  const viaEnv = await runCli(["inspect", "--schema", schema, "--json"], {
    env: { PROTOSTORE_DB: server.url },
  });
  assert.equal(cliJson<{ resources: number }>(viaEnv).resources, 1);
});

Deno.test("inspect on PostgreSQL reads in a read-only transaction and writes nothing", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  // An unmigrated schema: inspect reports it and creates nothing.
  const result = await runCli([
    "inspect",
    "--db",
    server.url,
    "--schema",
    schema,
    "--json",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(cliJson<{ schemaVersion: number }>(result).schemaVersion, 0);
  const sql = postgres(server.url, { onnotice: () => {} });
  try {
    const rows =
      await sql`SELECT 1 FROM pg_namespace WHERE nspname = ${schema}`;
    assert.equal(rows.length, 0);
  } finally {
    await sql.end();
  }
});

Deno.test("copy moves a store SQLite -> PostgreSQL -> SQLite from the command line", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    {
      using s = openStore(`${dir}/a.sqlite`);
      s.saveResource(SkillSchema, "skill", "x", create(SkillSchema));
      s.saveAudit(SkillSchema, "skill", "x", create(SkillSchema), { tag: "t" });
    }
    const there = await runCli([
      "copy",
      "--from",
      `${dir}/a.sqlite`,
      "--to",
      server.url,
      "--to-schema",
      schema,
    ]);
    assert.equal(there.code, 0, there.stderr);
    assert.match(there.stdout, /^Copied .*a\.sqlite to postgres:/);
    assert.match(there.stdout, /^resources +1$/m);
    assert.match(there.stdout, /verified: row counts and checksums/);
    const back = cliJson<{ tables: { resource_audit: { rows: number } } }>(
      await runCli([
        "copy",
        "--from",
        server.url,
        "--from-schema",
        schema,
        "--to",
        `${dir}/b.sqlite`,
        "--json",
      ]),
    );
    assert.equal(back.tables.resource_audit.rows, 1);
    // A non-empty target: exit 1, one line, nothing written.
    const again = await runCli([
      "copy",
      "--from",
      `${dir}/a.sqlite`,
      "--to",
      `${dir}/b.sqlite`,
    ]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^protostore: .*b\.sqlite is not empty \(/);
    assert.match(again.stderr, /--merge skip\|overwrite/);
    assert.equal(again.stderr.trim().split("\n").length, 1);
    // --merge: the source's new resource goes in as a change of the target.
    {
      using s = openStore(`${dir}/a.sqlite`);
      s.saveResource(SkillSchema, "skill", "y", create(SkillSchema));
    }
    const merged = await runCli([
      "copy",
      "--from",
      `${dir}/a.sqlite`,
      "--to",
      `${dir}/b.sqlite`,
      "--merge",
      "skip",
    ]);
    assert.equal(merged.code, 0, merged.stderr);
    assert.match(
      merged.stdout,
      /^Merged .*a\.sqlite into .*b\.sqlite \(--merge skip\)/,
    );
    assert.match(merged.stdout, /^resources +1 +0 +0 +1$/m);
    const json = cliJson<{ merge: { resources: { unchanged: number } } }>(
      await runCli([
        "copy",
        "--from",
        `${dir}/a.sqlite`,
        "--to",
        `${dir}/b.sqlite`,
        "--merge",
        "overwrite",
        "--json",
      ]),
    );
    assert.equal(json.merge.resources.unchanged, 2);
    const bad = await runCli([
      "copy",
      "--from",
      `${dir}/a.sqlite`,
      "--to",
      `${dir}/b.sqlite`,
      "--merge",
      "replace",
    ]);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--merge takes one of skip, overwrite, got "replace"/,
    );
    for (
      const args of [
        ["copy", "--to", `${dir}/c.sqlite`],
        ["copy", "--from", `${dir}/a.sqlite`],
        ["copy", "--from", "x", "--to", "y", "--batch-size", "0"],
        ["copy", "--from", "x", "--to", "y", "extra"],
      ]
    ) {
      assert.equal((await runCli(args)).code, 2, args.join(" "));
    }
  }));

Deno.test("import-badger can target PostgreSQL", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  const result = await runCli([
    "import-badger",
    FIXTURE,
    "--db",
    server.url,
    "--schema",
    schema,
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /into postgres:\/\/postgres@127\.0\.0\.1:/);
  await using s = await connectStore(server.url, { schema, poolSize: 1 });
  assert.equal((await s.listResources(SkillSchema, "workflow")).length, 5);
});

Deno.test("watch --db postgres:// prints the changes after --after", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  await store(server.url, schema);
  const child = cliCommand([
    "watch",
    "--db",
    server.url,
    "--schema",
    schema,
    "--after",
    "0",
  ]).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (text.split("\n").length < 3) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  child.kill("SIGINT");
  const status = await child.status;
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel();
  assert.equal(status.code, 0);
  assert.equal(text, '1 put "skill"/"lint"\n2 put "skill"/"lint"\n');
});

Deno.test("no command prints the password of a connection string: success, wrong password, unreachable server", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const url = await withPassword(server);
    const wrong = url.replace(PASSWORD, `${PASSWORD}-wrong`);
    const closed = `postgres://pwuser:${PASSWORD}@127.0.0.1:1/postgres`;
    // URLs the driver cannot parse: its error quotes them whole.
    const invalid = [
      `postgres://pwuser:${PASSWORD}@[bad/postgres`,
      `postgres://pwuser:${PASSWORD}@127.0.0.1:99999/postgres`,
      `postgresql://127.0.0.1:1/postgres?password=${PASSWORD}`,
    ];
    const schema = freshSchema();
    {
      using s = openStore(`${dir}/a.sqlite`);
      s.saveResource(SkillSchema, "skill", "x", create(SkillSchema));
    }
    Deno.writeTextFileSync(
      `${dir}/a.ndjson`,
      (await runCli(["export", "--db", `${dir}/a.sqlite`])).stdout,
    );
    const runs: string[][] = [];
    for (const target of [url, wrong, closed, ...invalid]) {
      const db = ["--db", target, "--schema", schema];
      runs.push(
        ["migrate", ...db],
        ["migrate", "--status", ...db],
        ["migrate", "--dry-run", "--json", ...db],
        ["inspect", ...db],
        ["inspect", "--json", ...db],
        ["inspect", "skill", "x", ...db],
        ["audit-history", "skill", "x", ...db],
        ["import-badger", FIXTURE, "--dry-run", ...db],
        [
          "copy",
          "--from",
          `${dir}/a.sqlite`,
          "--to",
          target,
          "--to-schema",
          schema,
        ],
        [
          "copy",
          "--from",
          target,
          "--from-schema",
          schema,
          "--to",
          `${dir}/b${runs.length}.sqlite`,
          "--json",
        ],
        ["copy", "--from", target, "--to", `${target}x`],
        ["inspect", "--db", `${target.replace("postgres:", "mysql:")}`],
        ["prune", "--keep-last", "1", ...db],
        ["downgrade", ...db],
        ["export", ...db],
        ["export", "--history", "--decoded", ...db],
        ["import", `${dir}/a.ndjson`, ...db],
        ["backup", "--to", `${dir}/backup${runs.length}.sqlite`, ...db],
      );
    }
    let failures = 0;
    for (const args of runs) {
      const at = args.indexOf("--db");
      const variants: [string[], Record<string, string>][] = [[args, {}]];
      if (at >= 0) {
        variants.push([
          [...args.slice(0, at), ...args.slice(at + 2)],
          { PROTOSTORE_DB: args[at + 1] },
        ]);
      }
      for (const [argv, env] of variants) {
        const result = await runCli(argv, { env });
        const all = result.stdout + result.stderr;
        assert(!all.includes(PASSWORD), `${argv.join(" ")} printed: ${all}`);
        if (result.code !== 0) failures++;
      }
    }
    // The wrong password and the closed port fail; the right one mostly works.
    assert(failures >= 20, `${failures} failures`);
    const bad = await runCli(["inspect", "--db", wrong]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /pwuser:\*\*\*@127\.0\.0\.1:\d+\/postgres failed: password authentication failed/,
    );
    const unreachable = await runCli(["migrate", "--db", closed]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /pwuser:\*\*\*@127\.0\.0\.1:1\//);
  }));

Deno.test("copy draws a progress line on a terminal's stderr and erases it", () =>
  withTempDir(async (dir) => {
    {
      using s = openStore(`${dir}/a.sqlite`);
      s.saveResource(SkillSchema, "skill", "x", create(SkillSchema));
    }
    let stdout = "";
    let stderr = "";
    const code = await main(
      ["copy", "--from", `${dir}/a.sqlite`, "--to", `${dir}/b.sqlite`],
      {
        out: (t) => stdout += t,
        err: (t) => stderr += t,
        color: false,
        errIsTerminal: true,
        env: () => undefined,
      },
    );
    assert.equal(code, 0, stderr);
    assert.match(
      stderr,
      /\[[#-]{30}\] +\d+% {2}\d+ of \d+ rows \(message_schemas\)/,
    );
    assert.match(stderr, /\r +\r$/);
    assert.match(stdout, /^Copied /);
  }));

Deno.test("commands that work on SQLite files only refuse a postgres:// --db with a usage error", async () => {
  const server = await sharedPostgres();
  for (
    const command of [
      "downgrade",
    ]
  ) {
    const result = await runCli([command, "--db", server.url]);
    assert.equal(result.code, 2, `${command}: ${result.stderr}`);
    assert.match(
      result.stderr,
      /works on a SQLite database file, not on PostgreSQL|rebuilds a SQLite file|takes|needs|requires/,
    );
  }
  // downgrade says what it does and what to do instead, in one line.
  const downgrade = await runCli(["downgrade"], {
    env: { PROTOSTORE_DB: server.url },
  });
  assert.equal(downgrade.code, 2);
  assert.match(
    downgrade.stderr,
    /^protostore: downgrade rebuilds a SQLite file into the Go daemon's SQLite schema, not a PostgreSQL store: copy it to a file first \(cli\.ts copy --from URL --to FILE\), then downgrade that file/,
  );
  assert.equal(downgrade.stderr.trim().split("\n").length, 1);
});

Deno.test("export, import and backup take --db postgres://: SQLite -> NDJSON -> PostgreSQL -> NDJSON and a SQLite backup", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    await makeDatabase("store", `${dir}/a.sqlite`);
    const exported = await runCli([
      "export",
      "--history",
      "--db",
      `${dir}/a.sqlite`,
    ]);
    assert.equal(exported.code, 0, exported.stderr);
    Deno.writeTextFileSync(`${dir}/a.ndjson`, exported.stdout);
    const db = ["--db", server.url, "--schema", schema];
    const imported = await runCli(["import", `${dir}/a.ndjson`, ...db]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(
      imported.stdout,
      /^Imported .*a\.ndjson into postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres \(schema t\w+\): 15 resource\(s\), 60 snapshot\(s\)/,
    );
    // Exported again from PostgreSQL ($PROTOSTORE_DB this time): the same lines.
    const again = await runCli(["export", "--history", "--schema", schema], {
      env: { PROTOSTORE_DB: server.url },
    });
    assert.equal(again.code, 0, again.stderr);
    const timeless = (text: string) =>
      text.replace(/"exportedAt":"[^"]*",/, "");
    assert.equal(timeless(again.stdout), timeless(exported.stdout));
    const decoded = await runCli([
      "export",
      "--kind",
      "skill",
      "--decoded",
      ...db,
    ]);
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.equal(decoded.stdout.trim().split("\n").length, 1 + 1 + 5);
    // Importing it again: every resource exists, exit 1, one line naming the line.
    const twice = await runCli(["import", `${dir}/a.ndjson`, ...db, "--json"]);
    assert.equal(twice.code, 1);
    assert.match(
      twice.stderr,
      /^protostore: line \d+: resource .* already exists/,
    );
    assert.equal(twice.stderr.trim().split("\n").length, 1);

    // backup of PostgreSQL into a new owner-only SQLite file, verified.
    const to = `${dir}/backup.sqlite`;
    const backup = await runCli(["backup", "--to", to, ...db]);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(
      backup.stdout,
      /^Backed up postgres:\/\/.* \(schema t\w+\) to .*backup\.sqlite: .*, \d+ rows verified against the source, integrity ok/,
    );
    assert.equal(Deno.statSync(to).mode! & 0o777, 0o600);
    const fromBackup = await runCli(["export", "--history", "--db", to]);
    assert.equal(timeless(fromBackup.stdout), timeless(exported.stdout));
    const refused = await runCli(["backup", "--to", to, ...db]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /already exists: choose another file, or pass \{ force: true \} \(CLI: --force\)/,
    );
    const forced = cliJson<{ rows: number; integrity: string }>(
      await runCli(["backup", "--to", to, "--force", "--json", ...db]),
    );
    assert.equal(forced.integrity, "ok");
    assert(forced.rows > 60);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.includes("partial") || n.includes(".copy-")
      ),
      [],
    );
    for (
      const args of [
        ["backup", "--to", `${dir}/c.sqlite`, "--vacuum", ...db],
        ["backup", "--to", server.url, ...db],
      ]
    ) {
      assert.equal((await runCli(args)).code, 2, args.join(" "));
    }
  }));

Deno.test("a password holding / or a space is not printed when its URL does not parse", async () => {
  // The driver's "Invalid URL" error and the target quote the URL whole; the generic
  // redaction cannot tell where such a password ends, the CLI knows what it was given.
  const urls: [string, string][] = [
    ["postgres://pwuser:pa/ss-Secret1@127.0.0.1:1/postgres", "pa/ss-Secret1"],
    ["postgres://pwuser:Sec ret2@[bad/postgres", "Sec ret2"],
    ["postgresql://pwuser:a b/c-Secret3@127.0.0.1:1/postgres", "a b/c-Secret3"],
    ["postgres://pwuser@[bad/db?password=Sec ret4", "Sec ret4"],
    // libpq's passphrase of the client key.
    ["postgres://pwuser@127.0.0.1:1/db?sslpassword=Sec/ret5", "Sec/ret5"],
    [
      "postgres://pwuser@127.0.0.1:99999/db?sslpassword=Sec ret6&x=1",
      "Sec ret6",
    ],
  ];
  for (const [url, secret] of urls) {
    for (
      const args of [
        ["inspect"],
        ["inspect", "--json", "--debug"],
        ["migrate", "--status"],
        ["audit-history", "skill", "x"],
      ]
    ) {
      for (
        const [argv, env] of [
          [[...args, "--db", url], {}],
          [args, { PROTOSTORE_DB: url }],
        ] as [string[], Record<string, string>][]
      ) {
        const result = await runCli(argv, { env });
        assert.equal(result.code, 1, argv.join(" "));
        const all = result.stdout + result.stderr;
        for (const part of secret.split(/[\s/]/).filter((p) => p.length > 3)) {
          assert(!all.includes(part), `${argv.join(" ")} printed: ${all}`);
        }
        assert.match(result.stderr, /pwuser:\*\*\*@|password=\*\*\*/);
      }
    }
  }
});

Deno.test("migrate, import-badger and copy name the PostgreSQL schema as `URL (schema S)`", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    const db = ["--db", server.url, "--schema", schema];
    const named = new RegExp(
      `postgres://postgres@127\\.0\\.0\\.1:${server.port}/postgres \\(schema ${schema}\\)`,
    );
    for (
      const args of [
        ["migrate", "--status", ...db],
        ["migrate", "--dry-run", ...db],
        ["migrate", ...db],
        ["migrate", ...db],
        ["import-badger", FIXTURE, ...db],
        [
          "copy",
          "--from",
          server.url,
          "--from-schema",
          schema,
          "--to",
          `${dir}/a.sqlite`,
        ],
        [
          "copy",
          "--from",
          `${dir}/a.sqlite`,
          "--to",
          server.url,
          "--to-schema",
          schema,
          "--merge",
          "skip",
        ],
      ]
    ) {
      const result = await runCli(args);
      assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stdout, named, args.join(" "));
      assert(!result.stdout.includes("%20"), result.stdout);
    }
  }));

Deno.test("reading one resource of a schema without a store says so in one line", async () => {
  const server = await sharedPostgres();
  const schema = freshSchema();
  const db = ["--db", server.url, "--schema", schema];
  for (
    const args of [
      ["inspect", "skill", "x", ...db],
      ["audit-history", "skill", "x", ...db],
      ["audit-history", "skill", "x", "--show", "1", ...db],
      ["restore", "skill", "x", "--snapshot", "1", "--yes", ...db],
    ]
  ) {
    const result = await runCli(args);
    assert.equal(result.code, 1, args.join(" "));
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      new RegExp(
        `^protostore: no store at postgres://\\S+ \\(schema ${schema}\\): .*migrate.*\\n$`,
      ),
      args.join(" "),
    );
  }
});

Deno.test("import-badger (and --dry-run) into a non-empty PostgreSQL store refuses without offering copy's --merge", async () => {
  const server = await sharedPostgres();
  const db = ["--db", server.url, "--schema", freshSchema()];
  assert.equal((await runCli(["import-badger", FIXTURE, ...db])).code, 0);
  const again = await runCli(["import-badger", FIXTURE, ...db]);
  assert.equal(again.code, 1);
  // copy's advice ("unless told how to merge (--merge …)") is no option of import-badger.
  assert.doesNotMatch(again.stderr, /told how to merge/);
  assert.match(again.stderr, /is not empty: .*nothing was written\n$/);
  assert.match(again.stderr, /into a SQLite file, then .* copy --merge/);
  // The dry run reads into an empty scratch file: it refuses what the import refuses.
  const dry = await runCli(["import-badger", FIXTURE, "--dry-run", ...db]);
  assert.equal(dry.code, 1, dry.stdout);
  assert.equal(dry.stderr, again.stderr);
  const empty = ["--db", server.url, "--schema", freshSchema()];
  assert.equal((await runCli(["migrate", ...empty])).code, 0);
  const fine = await runCli(["import-badger", FIXTURE, "--dry-run", ...empty]);
  assert.equal(fine.code, 0, fine.stderr);
});

Deno.test("prune refuses a store that does not exist instead of creating an empty one", () =>
  withTempDir(async (dir) => {
    const server = await sharedPostgres();
    const schema = freshSchema();
    const file = `${dir}/mistyped.sqlite`;
    for (
      const [db, message] of [
        [
          ["--db", file],
          /^protostore: no database at .*mistyped\.sqlite: the file does not exist\n$/,
        ],
        [
          ["--db", server.url, "--schema", schema],
          new RegExp(
            `^protostore: no store at \\S+ \\(schema ${schema}\\): .*migrate`,
          ),
        ],
      ] as [string[], RegExp][]
    ) {
      for (const json of [[], ["--json"]]) {
        const result = await runCli([
          "prune",
          "--keep-last",
          "1",
          ...json,
          ...db,
        ]);
        assert.equal(result.code, 1, result.stdout);
        assert.equal(result.stdout, "");
        assert.match(result.stderr, message);
      }
    }
    assert.throws(() => Deno.statSync(file), Deno.errors.NotFound);
    const sql = postgres(server.url, { onnotice: () => {} });
    try {
      const found =
        await sql`SELECT 1 FROM pg_namespace WHERE nspname = ${schema}`;
      assert.equal(found.length, 0, "prune created the schema");
    } finally {
      await sql.end();
    }
  }));

Deno.test("copy refuses --from-schema or --to-schema beside a SQLite file (usage error)", () =>
  withTempDir(async (dir) => {
    await makeDatabase("store", `${dir}/a.sqlite`);
    for (
      const args of [
        [
          "--from",
          `${dir}/a.sqlite`,
          "--to",
          `${dir}/b.sqlite`,
          "--to-schema",
          "x",
        ],
        [
          "--from",
          `${dir}/a.sqlite`,
          "--from-schema",
          "x",
          "--to",
          `${dir}/b.sqlite`,
        ],
      ]
    ) {
      const result = await runCli(["copy", ...args]);
      assert.equal(result.code, 2, result.stdout);
      assert.match(
        result.stderr,
        /^protostore: --(from|to)-schema goes with a postgres:\/\/ --(from|to) \(see/,
      );
    }
    assert.throws(() => Deno.statSync(`${dir}/b.sqlite`), Deno.errors.NotFound);
  }));

Deno.test("a schema name the store cannot take is a usage error (exit 2), on every command", async () => {
  const server = await sharedPostgres();
  for (const schema of ["MySchema", "", "a-b", "x".repeat(64), "pg_store"]) {
    for (
      const args of [
        ["inspect", "--db", server.url, "--schema", schema],
        ["migrate", "--db", server.url, "--schema", schema],
        ["prune", "--keep-last", "1", "--db", server.url, "--schema", schema],
        [
          "copy",
          "--from",
          server.url,
          "--from-schema",
          schema,
          "--to",
          "x.sqlite",
        ],
        [
          "copy",
          "--from",
          "x.sqlite",
          "--to",
          server.url,
          "--to-schema",
          schema,
        ],
      ]
    ) {
      const result = await runCli(args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /^protostore: --(from-|to-)?schema: schema (must be a lower-case identifier .*|"pg_store": names starting with pg_ are reserved by PostgreSQL; choose another) \(see deno run -A cli\.ts \w+ --help\)\n$/,
      );
    }
  }
});
