/**
 * End-to-end tests of `cli.ts migrate` (and the tool's help and error policy), run as a
 * subprocess against real database files: new files, the Go store's v1/v2 files,
 * edited and newer databases, garbage files, and the `--db` default.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create, toBinary } from "@bufbuild/protobuf";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import {
  assertFailure,
  assertNoControlBytes,
  cliJson,
  DESCRIPTORS,
  runCli,
  runCliProcess,
} from "../helpers/cli.ts";
import { writeGoDb } from "../helpers/go_store.ts";
import { MIGRATIONS } from "../../src/migrate/files.ts";
import { exists } from "../helpers/fs.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const FILES = MIGRATIONS.map((m) => m.name);
const LATEST = MIGRATIONS.at(-1)!.version;

interface MigrateJson {
  path: string;
  dryRun: boolean;
  applied: { version: number; name: string; checksum: string }[];
  schemaVersion: number;
}

interface StatusJson {
  path: string;
  exists: boolean;
  schemaVersion: number;
  applied: {
    version: number;
    name: string | null;
    appliedAt: string | null;
    checksum: string | null;
  }[];
  pending: { version: number; name: string; checksum: string }[];
  problems: string[];
}

function skillBytes(name: string): Uint8Array {
  return toBinary(SkillSchema, create(SkillSchema, { name }));
}

/** A migrated database whose schema_version was then changed by `sql`. */
async function tamperedDb(path: string, sql: string): Promise<void> {
  cliJson(await runCli(["migrate", "--json", "--db", path]));
  const db = new DatabaseSync(path);
  db.exec(sql);
  db.close();
}

Deno.test("the tool's --help and migrate --help print usage and exit 0", async () => {
  const [tool, short, word, migrate, noCommand] = await Promise.all([
    runCli(["--help"]),
    runCli(["-h"]),
    runCli(["help"]),
    runCli(["migrate", "--help"]),
    runCli([]),
  ]);
  for (const result of [tool, short, word]) {
    assert.equal(result.code, 0);
    assert.equal(result.stderr, "");
    for (const command of ["migrate", "inspect", "audit-history"]) {
      assert.match(result.stdout, new RegExp(`^  ${command} `, "m"));
    }
    assert.match(result.stdout, /PROTOSTORE_DB/);
  }
  assert.equal(migrate.code, 0);
  assert.equal(migrate.stderr, "");
  assert.match(migrate.stdout, /^Usage: deno run -A cli\.ts migrate/);
  for (const flag of ["--db", "--status", "--dry-run", "--json"]) {
    assert.ok(migrate.stdout.includes(flag), `migrate --help mentions ${flag}`);
  }
  // No command at all is a usage error: help on stderr, exit 2.
  assert.equal(noCommand.code, 2);
  assert.equal(noCommand.stdout, "");
  assert.match(noCommand.stderr, /Usage:/);
});

// The other CLI tests run `main` in process; this one checks that the real binary exits
// with the code `main` returns and prints to the real streams.
Deno.test("cli.ts as a process exits 0 on success, 1 on failure, 2 on usage errors", async () => {
  await withTempDir(async (dir) => {
    const [help, migrated, failure, usage, noCommand] = await Promise.all([
      runCliProcess(["--help"]),
      runCliProcess(["migrate", "--json", "--db", `${dir}/db.sqlite`]),
      runCliProcess(["migrate", "--db", dir]),
      runCliProcess(["migrate", "--bogus"]),
      runCliProcess([]),
    ]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^ {2}migrate /m);
    assert.equal(cliJson<MigrateJson>(migrated).applied.length, FILES.length);
    assertFailure(failure, 1);
    assert.match(assertFailure(usage, 2), /--bogus/);
    assert.equal(noCommand.code, 2);
    assert.match(noCommand.stderr, /Usage:/);
  });
});

Deno.test("usage errors of migrate and the tool exit 2 with one line naming the problem", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/db.sqlite`;
    const cases: [string[], RegExp][] = [
      [["migrate", "--bogus", "--db", db], /--bogus.*cli\.ts migrate --help/],
      [
        ["migrate", "extra", "--db", db],
        /migrate takes no arguments, got extra/,
      ],
      [["migrate", "--status", "--dry-run", "--db", db], /cannot be combined/],
      [["migrate", "--db", ""], /--db needs a file path/],
      [["migrate", "--db"], /--db/],
      [["frobnicate"], /unknown command "frobnicate".*cli\.ts --help/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((result, i) => {
      assert.match(
        assertFailure(result, 2),
        cases[i][1],
        cases[i][0].join(" "),
      );
    });
    assert.ok(!exists(db), "a usage error creates no database");
  });
});

Deno.test("migrate creates a new database owner-only, applies every file, then is up to date", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/new/dir/db.sqlite`;
    const first = await runCli(["migrate", "--db", path]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr, "");
    assert.match(
      first.stdout,
      new RegExp(
        `^Applied ${FILES.length} migration\\(s\\) to .*db\\.sqlite:\n`,
      ),
    );
    for (const file of FILES) assert.ok(first.stdout.includes(`  ${file}\n`));
    assert.match(
      first.stdout,
      new RegExp(`Now at schema version ${LATEST}\n$`),
    );
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(Deno.statSync(`${dir}/new/dir`).mode! & 0o777, 0o700);

    const [again, againJson] = await Promise.all([
      runCli(["migrate", "--db", path]),
      runCli(["migrate", "--db", path, "--json"]),
    ]);
    assert.equal(again.code, 0);
    assert.match(
      again.stdout,
      new RegExp(`is up to date \\(schema version ${LATEST}\\)\n$`),
    );
    assert.deepEqual(cliJson<MigrateJson>(againJson), {
      path,
      dryRun: false,
      applied: [],
      schemaVersion: LATEST,
    });
  });
});

Deno.test("migrate --json reports the applied files as one JSON document", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const result = cliJson<MigrateJson>(
      await runCli(["migrate", "--json", "--db", path]),
    );
    assert.equal(result.path, path);
    assert.equal(result.dryRun, false);
    assert.equal(result.schemaVersion, LATEST);
    assert.deepEqual(
      result.applied.map((m) => [m.version, m.name]),
      MIGRATIONS.map((m) => [m.version, m.name]),
    );
    for (const m of result.applied) assert.match(m.checksum, /^[0-9a-f]{64}$/);
  });
});

Deno.test("migrate --dry-run shows what would run and creates no file, not even its directory", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/sub/db.sqlite`;
    const [human, json] = await Promise.all([
      runCli(["migrate", "--dry-run", "--db", path]),
      runCli(["migrate", "--dry-run", "--json", "--db", path]),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      new RegExp(`^Would apply ${FILES.length} migration\\(s\\)`),
    );
    assert.match(human.stdout, /dry run: nothing written/);
    const plan = cliJson<MigrateJson>(json);
    assert.equal(plan.dryRun, true);
    assert.deepEqual(plan.applied.map((m) => m.name), FILES);
    assert.equal(plan.schemaVersion, LATEST);
    assert.ok(!exists(`${dir}/sub`), "no directory was created");
  });
});

Deno.test("migrate --status lists applied and pending files of a Go v2 file without writing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    writeGoDb(path, {
      version: 2,
      resources: [{
        kind: "skill",
        id: "s1",
        data: skillBytes("one"),
        updatedAt: "2026-01-25 10:00:00",
      }],
    });
    const before = Deno.readFileSync(path);
    const [human, json, dry] = await Promise.all([
      runCli(["migrate", "--status", "--db", path]),
      runCli(["migrate", "--status", "--json", "--db", path]),
      runCli(["migrate", "--dry-run", "--db", path]),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      new RegExp(`schema version 2, ${FILES.length - 2} pending`),
    );
    assert.match(
      human.stdout,
      /^ +1 +\(recorded without a name\) +applied +2026-01-20 09:00:00\.000/m,
    );
    assert.match(human.stdout, /^ +3 +0003_cascade_ms_types\.sql +pending/m);

    const status = cliJson<StatusJson>(json);
    assert.equal(status.exists, true);
    assert.equal(status.schemaVersion, 2);
    assert.deepEqual(status.applied, [
      {
        version: 1,
        name: null,
        appliedAt: "2026-01-20T09:00:00.000Z",
        checksum: null,
      },
      {
        version: 2,
        name: null,
        appliedAt: "2026-01-20T09:00:00.000Z",
        checksum: null,
      },
    ]);
    assert.deepEqual(
      status.pending.map((m) => [m.version, m.name]),
      MIGRATIONS.slice(2).map((m) => [m.version, m.name]),
    );
    assert.deepEqual(status.problems, []);

    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      new RegExp(
        `^Would apply ${FILES.length - 2} migration\\(s\\).*\n` +
          FILES.slice(2).map((name) => `  ${name.replace(".", "\\.")}\n`).join(
            "",
          ),
      ),
    );
    assert.deepEqual(
      Deno.readFileSync(path),
      before,
      "status and dry run wrote nothing",
    );
  });
});

Deno.test("migrate --status of a missing file says it does not exist yet and creates nothing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/missing.sqlite`;
    const [human, json] = await Promise.all([
      runCli(["migrate", "--status", "--db", path]),
      runCli(["migrate", "--status", "--json", "--db", path]),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      new RegExp(
        `\\(does not exist yet\\): schema version 0, ${FILES.length} pending`,
      ),
    );
    const status = cliJson<StatusJson>(json);
    assert.equal(status.exists, false);
    assert.deepEqual(status.pending.map((m) => m.name), FILES);
    assert.ok(!exists(path));
  });
});

Deno.test("migrate continues a Go v1 file: legacy audit rows become snapshots, rows keep no type", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    writeGoDb(path, {
      version: 1,
      resources: [
        {
          kind: "skill",
          id: "s1",
          data: skillBytes("now"),
          updatedAt: "2026-01-25 10:00:05",
        },
        {
          kind: "skill",
          id: "skill_audit/s1/1769335200123456789",
          data: skillBytes("then"),
          updatedAt: "2026-01-25 10:00:09",
        },
      ],
    });
    const result = await runCli(["migrate", "--db", path]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`^Applied ${FILES.length - 1} migration\\(s\\)`),
    );
    assert.ok(
      result.stdout.includes(
        FILES.slice(1).map((name) => `  ${name}\n`).join(""),
      ),
    );

    const [status, history] = await Promise.all([
      runCli(["migrate", "--status", "--json", "--db", path]),
      runCli([
        "audit-history",
        "skill",
        "s1",
        "--json",
        "--db",
        path,
        "--descriptors",
        DESCRIPTORS,
        "--type-for",
        "skill=example.v1.Skill",
      ]),
    ]);
    const applied = cliJson<StatusJson>(status).applied;
    // The Go store's row 1 gets its file name; its checksum stays unknown.
    assert.deepEqual(
      applied.map((m) => [m.version, m.name, m.checksum !== null]),
      MIGRATIONS.map((m) => [m.version, m.name, m.version !== 1]),
    );
    const { snapshots } = cliJson<
      {
        snapshots: {
          archivedAt: string;
          message: unknown;
          decodedWith: string;
        }[];
      }
    >(history);
    assert.deepEqual(
      snapshots.map((s) => [s.archivedAt, s.message, s.decodedWith]),
      [
        ["2026-01-25T10:00:00.123Z", { name: "then" }, "descriptors"],
      ],
    );
  });
});

Deno.test("migrate refuses a database whose applied file was edited: exit 1, one line, bytes unchanged", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    await tamperedDb(
      path,
      "UPDATE schema_version SET checksum = 'feedface' WHERE version = 2",
    );
    const before = Deno.readFileSync(path);
    const [human, json, dry, status] = await Promise.all([
      runCli(["migrate", "--db", path]),
      runCli(["migrate", "--json", "--db", path]),
      runCli(["migrate", "--dry-run", "--db", path]),
      runCli(["migrate", "--status", "--json", "--db", path]),
    ]);
    for (const result of [human, json, dry]) {
      const line = assertFailure(result, 1);
      assert.match(
        line,
        /refusing to migrate: migration 0002_resource_audit\.sql was edited/,
      );
    }
    // --status reports the problem without failing.
    const problems = cliJson<StatusJson>(status).problems;
    assert.equal(problems.length, 1);
    assert.match(problems[0], /0002_resource_audit\.sql was edited/);
    assert.deepEqual(Deno.readFileSync(path), before);
  });
});

Deno.test("migrate refuses a database written by newer code: exit 1, one line, bytes unchanged", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    await tamperedDb(
      path,
      "INSERT INTO schema_version (version, applied_at, name, checksum) VALUES (99, '2030-01-01T00:00:00.000Z', '0099_future.sql', 'x')",
    );
    const before = Deno.readFileSync(path);
    const [result, status] = await Promise.all([
      runCli(["migrate", "--db", path]),
      runCli(["migrate", "--status", "--db", path]),
    ]);
    assert.match(
      assertFailure(result, 1),
      /schema version 99.*newer code wrote it; upgrade protostore/,
    );
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^problem: .*schema version 99/m);
    assert.deepEqual(Deno.readFileSync(path), before);
  });
});

Deno.test("migrate of a garbage file or a directory fails with one line and leaves it untouched", async () => {
  await withTempDir(async (dir) => {
    const garbage = `${dir}/garbage.sqlite`;
    const bytes = new Uint8Array(4096).map((_, i) => (i * 131 + 7) % 251);
    Deno.writeFileSync(garbage, bytes);
    const results = await Promise.all([
      runCli(["migrate", "--db", garbage]),
      runCli(["migrate", "--status", "--db", garbage]),
      runCli(["migrate", "--dry-run", "--json", "--db", garbage]),
      runCli(["migrate", "--db", dir]),
    ]);
    for (const result of results.slice(0, 3)) {
      assert.match(
        assertFailure(result, 1),
        /garbage\.sqlite is not a SQLite database/,
      );
    }
    assertFailure(results[3], 1);
    assert.deepEqual(Deno.readFileSync(garbage), bytes);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "garbage.sqlite",
    ]);
  });
});

Deno.test("migrate uses $PROTOSTORE_DB, else ./protostore.sqlite; --db wins over both", async () => {
  await withTempDir(async (dir) => {
    const fromEnv = await runCliProcess(["migrate", "--json"], {
      cwd: dir,
      env: { PROTOSTORE_DB: `${dir}/env.sqlite` },
    });
    assert.equal(cliJson<MigrateJson>(fromEnv).path, `${dir}/env.sqlite`);
    const fromFlag = await runCliProcess([
      "migrate",
      "--json",
      "--db",
      `${dir}/flag.sqlite`,
    ], {
      cwd: dir,
      env: { PROTOSTORE_DB: `${dir}/env.sqlite` },
    });
    assert.equal(cliJson<MigrateJson>(fromFlag).applied.length, FILES.length);
    const fallback = await runCliProcess(["migrate", "--json"], { cwd: dir });
    assert.equal(cliJson<MigrateJson>(fallback).path, "./protostore.sqlite");
    for (const name of ["env.sqlite", "flag.sqlite", "protostore.sqlite"]) {
      assert.ok(exists(`${dir}/${name}`), `${name} was created`);
    }
  });
});

Deno.test("migrate output never carries raw control characters from a crafted schema_version", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    await tamperedDb(
      path,
      "UPDATE schema_version SET name = 'evil\x1b]0;pwned\x07\x1b[2J\u009b31m' WHERE version = 1",
    );
    const [refused, status, statusJson, oddPath] = await Promise.all([
      runCli(["migrate", "--db", path]),
      runCli(["migrate", "--status", "--db", path]),
      runCli(["migrate", "--status", "--json", "--db", path]),
      runCli(["migrate", "--db", `${dir}/odd\x1b[31m.sqlite`]),
    ]);
    assert.equal(oddPath.code, 0, oddPath.stderr);
    assert.match(oddPath.stdout, /odd\\x1b\[31m\.sqlite/);
    assertNoControlBytes(oddPath.stdoutBytes, "migrate of an odd path");
    const line = assertFailure(refused, 1);
    assert.match(line, /records version 1 as evil\\x1b/);
    assertNoControlBytes(new TextEncoder().encode(line), "stderr");
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^problem: .*evil\\x1b\]0;pwned\\x07/m);
    assertNoControlBytes(status.stdoutBytes, "migrate --status");
    const json = cliJson<StatusJson>(statusJson);
    assert.equal(json.applied[0].name, "evil\x1b]0;pwned\x07\x1b[2J\u009b31m");
    assertNoControlBytes(statusJson.stdoutBytes, "migrate --status --json");
  });
});
