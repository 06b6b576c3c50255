/**
 * End-to-end tests of `cli.ts inspect`, run as a subprocess against real database files:
 * written through the Store, in the Go store's shape, read-only, garbage and missing.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { openStore } from "../../mod.ts";
import {
  AgentSchema,
  SkillSchema,
  Visibility,
} from "../fixtures/gen/example/v1/example_pb.ts";
import {
  assertFailure,
  assertNoControlBytes,
  cliJson,
  DESCRIPTORS,
  HAS_SCRIPT,
  insertOrphans,
  runCli,
  runCliInTerminal,
  runCliProcess,
} from "../helpers/cli.ts";
import { damagePage, writeRows } from "../helpers/rows.ts";
import { writeGoDb } from "../helpers/go_store.ts";
import { MIGRATIONS } from "../../src/migrate/files.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface Overview {
  path: string;
  sqliteVersion: string;
  schemaVersion: number;
  appliedMigrations: {
    version: number;
    name: string | null;
    appliedAt: string | null;
  }[];
  pendingMigrations: { version: number; name: string }[];
  kinds: {
    kind: string;
    resources: number;
    auditRecords: number;
    orphanAuditRecords: number;
    bytes: number;
    lastUpdated: string | null;
  }[];
  orphanAuditRecords: number;
  problems: string[];
  integrity: "ok" | string[] | null;
}

interface Resource {
  kind: string;
  id: string;
  updatedAt: string | null;
  size: number;
  type: string | null;
  decodedWith: string;
  message: unknown;
  reason?: string;
}

const FULL_SKILL = create(SkillSchema, {
  name: "summarize",
  description: "grüße",
  tools: ["search", "fetch"],
  labels: { team: "core" },
  visibility: Visibility.PUBLIC,
  createdAt: timestampFromDate(new Date("2026-01-25T10:00:00.250Z")),
  limits: { maxTokens: 512, temperature: 0.5, timeoutMs: 30000n },
  payload: new Uint8Array([1, 2, 3]),
});

/** The protobuf JSON of FULL_SKILL: enums by name, int64 as a string, bytes as base64. */
const FULL_SKILL_JSON = {
  name: "summarize",
  description: "grüße",
  tools: ["search", "fetch"],
  labels: { team: "core" },
  visibility: "VISIBILITY_PUBLIC",
  createdAt: "2026-01-25T10:00:00.250Z",
  limits: { maxTokens: 512, temperature: 0.5, timeoutMs: "30000" },
  payload: "AQID",
};

/** A Store-written database: two skills (one with history), one agent, two orphans. */
function writeStoreDb(path: string): void {
  {
    using store = openStore(path);
    store.saveResource(SkillSchema, "skill", "s1", FULL_SKILL);
    store.saveAudit(SkillSchema, "skill", "s1", FULL_SKILL, { tag: "v1" });
    store.saveResource(
      SkillSchema,
      "skill",
      "s2",
      create(SkillSchema, { name: "two" }),
    );
    store.saveResource(
      AgentSchema,
      "agent",
      "a1",
      create(AgentSchema, {
        name: "bot",
        trigger: { case: "cron", value: "@daily" },
      }),
    );
  }
  insertOrphans(path, [
    {
      kind: "skill",
      resourceId: "gone",
      data: skillBytes("old"),
      archivedAt: "2026-01-01T00:00:00.000Z",
    },
    {
      kind: "tool",
      resourceId: "t9",
      data: skillBytes("older"),
      archivedAt: "2025-12-01T00:00:00.000Z",
    },
  ]);
}

function skillBytes(name: string, tools: string[] = []): Uint8Array {
  return toBinary(SkillSchema, create(SkillSchema, { name, tools }));
}

/** A Go v2 file, not migrated: rows without types, one audit row whose resource is gone. */
function writeGoV2(path: string): void {
  writeGoDb(path, {
    version: 2,
    resources: [
      {
        kind: "skill",
        id: "s1",
        data: skillBytes("three", ["x"]),
        updatedAt: "2026-01-25 10:00:03",
      },
      {
        kind: "skill",
        id: "s2",
        data: skillBytes("other"),
        updatedAt: "2026-01-25 09:00:00",
      },
      {
        kind: "junk",
        id: "j1",
        data: new Uint8Array([0xff, 0xff]),
        updatedAt: "2026-01-24 08:00:00",
      },
    ],
    audit: [
      {
        kind: "skill",
        resourceId: "s1",
        data: skillBytes("one"),
        archivedAt: "2026-01-25 10:00:01",
        tag: "v1",
      },
      {
        kind: "skill",
        resourceId: "gone",
        data: skillBytes("ghost"),
        archivedAt: "2026-01-25 09:00:00",
      },
    ],
  });
}

Deno.test("inspect --help prints usage with every option and exits 0", async () => {
  const [long, short] = await Promise.all([
    runCli(["inspect", "--help"]),
    runCli(["inspect", "-h"]),
  ]);
  for (const result of [long, short]) {
    assert.equal(result.code, 0);
    assert.equal(result.stderr, "");
    assert.match(result.stdout, /^Usage: deno run -A cli\.ts inspect/);
    for (
      const flag of [
        "--db",
        "--json",
        "--check",
        "--descriptors",
        "--type",
        "--type-for",
      ]
    ) {
      assert.ok(
        result.stdout.includes(flag),
        `inspect --help mentions ${flag}`,
      );
    }
  }
});

Deno.test("inspect --json of a Store-written database has the overview keys, counts and ISO times", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeStoreDb(path);
    const [plain, checked] = await Promise.all([
      runCli(["inspect", "--json", "--db", path]),
      runCli(["inspect", "--json", "--check", "--db", path]),
    ]);
    const o = cliJson<Overview>(plain);
    for (
      const key of [
        "path",
        "sqliteVersion",
        "schemaVersion",
        "appliedMigrations",
        "pendingMigrations",
        "kinds",
        "orphanAuditRecords",
        "integrity",
        "revisions",
      ]
    ) {
      assert.ok(key in o, `overview has ${key}`);
    }
    assert.equal(o.path, path);
    assert.match(o.sqliteVersion, /^3\.\d+\.\d+/);
    assert.equal(o.schemaVersion, MIGRATIONS.at(-1)!.version);
    assert.deepEqual(
      o.appliedMigrations.map((m) => [m.version, m.name]),
      MIGRATIONS.map((m) => [m.version, m.name]),
    );
    for (const m of o.appliedMigrations) assert.match(m.appliedAt!, ISO);
    assert.deepEqual(o.pendingMigrations, []);
    assert.deepEqual(
      o.kinds.map((
        k,
      ) => [k.kind, k.resources, k.auditRecords, k.orphanAuditRecords]),
      [["agent", 1, 0, 0], ["skill", 2, 1, 1], ["tool", 0, 0, 1]],
    );
    const skill = o.kinds.find((k) => k.kind === "skill")!;
    assert.equal(
      skill.bytes,
      toBinary(SkillSchema, FULL_SKILL).length + skillBytes("two").length,
    );
    assert.match(skill.lastUpdated!, ISO);
    assert.equal(o.kinds.find((k) => k.kind === "tool")!.lastUpdated, null);
    assert.equal(o.orphanAuditRecords, 2);
    assert.deepEqual(o.problems, []);
    assert.equal(o.integrity, null, "integrity is null without --check");
    assert.equal(cliJson<Overview>(checked).integrity, "ok");
  });
});

Deno.test("inspect prints the overview as aligned tables for people", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeStoreDb(path);
    const [plain, checked] = await Promise.all([
      runCli(["inspect", "--db", path]),
      runCli(["inspect", "--check", "--db", path]),
    ]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stderr, "");
    const out = plain.stdout;
    assert.match(out, /^file: +.*db\.sqlite$/m);
    assert.match(out, /^size: +\d.* pages of \d+ B/m);
    assert.match(out, /^journal: +wal$/m);
    assert.match(out, /^sqlite: +3\.\d+/m);
    assert.match(
      out,
      new RegExp(
        `^schema: +version ${MIGRATIONS.at(-1)!.version}, 0 pending$`,
        "m",
      ),
    );
    assert.match(out, /^types: +example\.v1\.Agent, example\.v1\.Skill$/m);
    assert.match(
      out,
      /^ +3 +0003_cascade_ms_types\.sql +applied +\d{4}-\d\d-\d\d /m,
    );
    // Columns line up: every row of the kinds table starts its counts at the same column.
    const header = out.split("\n").find((l) => l.startsWith("KIND"))!;
    assert.ok(header, "a kinds table");
    const rows = out.split("\n").filter((l) => /^(agent|skill|tool) /.test(l));
    assert.equal(rows.length, 3);
    const end = header.indexOf("RESOURCES") + "RESOURCES".length;
    for (const row of rows) {
      assert.match(row.slice(end - 1, end), /\d/, `aligned: ${row}`);
    }
    assert.match(out, /^skill +2 +1 +1 /m);
    assert.match(
      out,
      /3 resource\(s\), 1 audit record\(s\), 2 orphaned audit record\(s\)/,
    );
    assert.match(out, /^integrity: not checked \(use --check\)$/m);
    assert.match(checked.stdout, /^integrity: ok$/m);
    assertNoControlBytes(plain.stdoutBytes, "non-TTY output");
  });
});

Deno.test("inspect --check lists integrity problems such as foreign key violations, and exits 1", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeStoreDb(path);
    const db = new DatabaseSync(path);
    db.exec("PRAGMA foreign_keys = OFF");
    db.prepare(
      "INSERT INTO resource_audit (kind, resource_id, data, archived_at) VALUES ('skill', 'nobody', x'0801', '2026-01-01T00:00:00.000Z')",
    ).run();
    db.close();
    const [json, human] = await Promise.all([
      runCli(["inspect", "--check", "--json", "--db", path]),
      runCli(["inspect", "--check", "--db", path]),
    ]);
    // Damage found is a failure: exit 1 and one line on stderr, the report on stdout.
    for (const run of [json, human]) {
      assert.equal(run.code, 1);
      assert.match(
        run.stderr,
        /^protostore: integrity check of .* found 1 problem\(s\): rows refer to parents that do not exist .*\n$/,
      );
    }
    const integrity = (JSON.parse(json.stdout) as Overview).integrity;
    assert.ok(Array.isArray(integrity));
    assert.equal(integrity.length, 1);
    assert.match(
      integrity[0],
      /foreign key: resource_audit row \d+ has no matching row in resources/,
    );
    assert.match(
      human.stdout,
      /^integrity: 1 problem\(s\)\n {2}foreign key: resource_audit/m,
    );
  });
});

Deno.test("inspect KIND ID decodes with the type the Store recorded (protobuf JSON)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeStoreDb(path);
    const [json, human, agent] = await Promise.all([
      runCli(["inspect", "skill", "s1", "--json", "--db", path]),
      runCli(["inspect", "skill", "s1", "--db", path]),
      runCli(["inspect", "agent", "a1", "--json", "--db", path]),
    ]);
    const r = cliJson<Resource>(json);
    assert.deepEqual(
      Object.keys(r).sort(),
      [
        "changeRevisions",
        "createRevision",
        "decodedWith",
        "id",
        "kind",
        "message",
        "revision",
        "size",
        "type",
        "updatedAt",
      ],
    );
    assert.equal(r.kind, "skill");
    assert.equal(r.id, "s1");
    assert.match(r.updatedAt!, ISO);
    assert.equal(r.size, toBinary(SkillSchema, FULL_SKILL).length);
    assert.equal(r.type, "example.v1.Skill");
    assert.equal(r.decodedWith, "stored-descriptors");
    assert.deepEqual(r.message, FULL_SKILL_JSON);
    assert.deepEqual(cliJson<Resource>(agent).message, {
      name: "bot",
      cron: "@daily",
    });

    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^kind: +skill$/m);
    assert.match(human.stdout, /^id: +s1$/m);
    assert.match(
      human.stdout,
      /^updated: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/m,
    );
    assert.match(human.stdout, /^size: +\d+ B$/m);
    assert.match(
      human.stdout,
      /^type: +example\.v1\.Skill \(type recorded in the database\)$/m,
    );
    const body = human.stdout.slice(human.stdout.indexOf("\n{"));
    assert.deepEqual(JSON.parse(body), FULL_SKILL_JSON);
  });
});

Deno.test("inspect of an unmigrated Go v2 file shows its schema, pending 0003 and orphans, and writes nothing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    writeGoV2(path);
    const before = Deno.readFileSync(path);
    const [json, human, checked] = await Promise.all([
      runCli(["inspect", "--json", "--db", path]),
      runCli(["inspect", "--db", path]),
      runCli(["inspect", "--check", "--json", "--db", path]),
    ]);
    const o = cliJson<Overview>(json);
    assert.equal(o.schemaVersion, 2);
    assert.deepEqual(
      o.appliedMigrations.map((m) => [m.version, m.name, m.appliedAt]),
      [
        [1, null, "2026-01-20T09:00:00.000Z"],
        [2, null, "2026-01-20T09:00:00.000Z"],
      ],
    );
    assert.deepEqual(
      o.pendingMigrations,
      MIGRATIONS.slice(2).map(({ version, name }) => ({ version, name })),
    );
    assert.deepEqual(
      o.kinds.map((
        k,
      ) => [
        k.kind,
        k.resources,
        k.auditRecords,
        k.orphanAuditRecords,
        k.lastUpdated,
      ]),
      [
        ["junk", 1, 0, 0, "2026-01-24T08:00:00.000Z"],
        ["skill", 2, 1, 1, "2026-01-25T10:00:03.000Z"],
      ],
    );
    assert.equal(o.orphanAuditRecords, 1);
    assert.equal(cliJson<Overview>(checked).integrity, "ok");
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      new RegExp(`^schema: +version 2, ${MIGRATIONS.length - 2} pending$`, "m"),
    );
    assert.match(human.stdout, /^journal: +delete$/m);
    assert.match(human.stdout, /^ +1 +\(recorded without a name\) +applied/m);
    assert.match(human.stdout, /^ +3 +0003_cascade_ms_types\.sql +pending/m);
    assert.match(human.stdout, /^types: +none recorded$/m);
    assert.deepEqual(
      Deno.readFileSync(path),
      before,
      "inspection did not migrate or write",
    );
  });
});

Deno.test("inspect KIND ID of a Go row: wire dump labelled as such, or decoded with --descriptors", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    writeGoV2(path);
    const decodeArgs = ["--descriptors", DESCRIPTORS];
    const [wireJson, wireHuman, typed, mapped, mappedWins, typedHuman] =
      await Promise.all([
        runCli(["inspect", "skill", "s1", "--json", "--db", path]),
        runCli(["inspect", "skill", "s1", "--db", path]),
        runCli([
          "inspect",
          "skill",
          "s1",
          "--json",
          "--db",
          path,
          ...decodeArgs,
          "--type",
          "example.v1.Skill",
        ]),
        runCli([
          "inspect",
          "skill",
          "s1",
          "--json",
          "--db",
          path,
          ...decodeArgs,
          "--type-for",
          "skill=example.v1.Skill",
        ]),
        runCli([
          "inspect",
          "skill",
          "s1",
          "--json",
          "--db",
          path,
          ...decodeArgs,
          "--type",
          "example.v1.Agent",
          "--type-for",
          "skill=example.v1.Skill",
          "--type-for",
          "agent=example.v1.Agent",
        ]),
        runCli([
          "inspect",
          "skill",
          "s1",
          "--db",
          path,
          ...decodeArgs,
          "--type",
          "example.v1.Skill",
        ]),
      ]);
    const wire = cliJson<Resource>(wireJson);
    assert.equal(wire.decodedWith, "wire");
    assert.equal(wire.type, null);
    assert.equal(wire.updatedAt, "2026-01-25T10:00:03.000Z");
    assert.deepEqual(wire.message, [
      { field: 1, wireType: "len", string: "three" },
      { field: 5, wireType: "len", string: "x" },
    ]);
    assert.equal(wireHuman.code, 0, wireHuman.stderr);
    assert.match(
      wireHuman.stdout,
      /^type: +schema-less wire dump \(no type known; pass --descriptors FILE --type NAME\)$/m,
    );
    assert.match(wireHuman.stdout, /"string": "three"/);

    for (const result of [typed, mapped, mappedWins]) {
      const r = cliJson<Resource>(result);
      assert.equal(r.decodedWith, "descriptors");
      assert.equal(r.type, "example.v1.Skill");
      assert.deepEqual(r.message, { name: "three", tools: ["x"] });
    }
    assert.match(
      typedHuman.stdout,
      /^type: +example\.v1\.Skill \(from --descriptors\)$/m,
    );
  });
});

Deno.test("inspect KIND ID of bytes that decode no way shows base64 with the reason", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    writeGoV2(path);
    const [json, human, typed] = await Promise.all([
      runCli(["inspect", "junk", "j1", "--json", "--db", path]),
      runCli(["inspect", "junk", "j1", "--db", path]),
      runCli([
        "inspect",
        "junk",
        "j1",
        "--json",
        "--db",
        path,
        "--descriptors",
        DESCRIPTORS,
        "--type",
        "example.v1.Skill",
      ]),
    ]);
    const r = cliJson<Resource>(json);
    assert.equal(r.decodedWith, "base64");
    assert.deepEqual(r.message, { $base64: true, encoded: "//8=" });
    assert.match(r.reason!, /^wire format: .*byte offset/);
    assert.match(human.stdout, /^type: +undecodable: shown as base64$/m);
    assert.match(human.stdout, /^note: +wire format: /m);
    const t = cliJson<Resource>(typed);
    assert.equal(t.decodedWith, "base64");
    assert.match(
      t.reason!,
      /^given descriptors \(example\.v1\.Skill\): .*; wire format: /,
    );
  });
});

Deno.test("inspect on a read-only file works and leaves its bytes identical", async () => {
  await withTempDir(async (dir) => {
    const store = `${dir}/store.sqlite`;
    const go = `${dir}/go.sqlite`;
    writeStoreDb(store);
    writeGoV2(go);
    for (const path of [store, go]) Deno.chmodSync(path, 0o444);
    const before = [Deno.readFileSync(store), Deno.readFileSync(go)];
    const results = await Promise.all([
      runCli(["inspect", "--check", "--db", store]),
      runCli(["inspect", "--json", "--db", store]),
      runCli(["inspect", "skill", "s1", "--json", "--db", store]),
      runCli(["inspect", "--check", "--json", "--db", go]),
      runCli([
        "inspect",
        "skill",
        "s1",
        "--db",
        go,
        "--descriptors",
        DESCRIPTORS,
        "--type",
        "example.v1.Skill",
      ]),
      runCli(["audit-history", "skill", "s1", "--diff", "--db", store]),
      runCli(["audit-history", "skill", "s1", "--json", "--db", go]),
    ]);
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
    }
    assert.equal(JSON.parse(results[3].stdout).integrity, "ok");
    assert.deepEqual(JSON.parse(results[2].stdout).message, FULL_SKILL_JSON);
    assert.deepEqual([Deno.readFileSync(store), Deno.readFileSync(go)], before);
    assert.equal(Deno.statSync(store).mode! & 0o777, 0o444);
  });
});

Deno.test("inspect and audit-history of a garbage file, a missing path or a directory: one line on stderr, exit 1, nothing created", async () => {
  await withTempDir(async (dir) => {
    const garbage = `${dir}/garbage.sqlite`;
    const bytes = new TextEncoder().encode(
      "this is not a database\n".repeat(300),
    );
    Deno.writeFileSync(garbage, bytes);
    const missing = `${dir}/missing/db.sqlite`;
    const results = await Promise.all([
      runCli(["inspect", "--db", garbage]),
      runCli(["inspect", "--json", "--check", "--db", garbage]),
      runCli(["inspect", "skill", "s1", "--db", garbage]),
      runCli(["audit-history", "skill", "s1", "--json", "--db", garbage]),
      runCli(["inspect", "--db", missing]),
      runCli(["inspect", "skill", "s1", "--json", "--db", missing]),
      runCli(["audit-history", "skill", "s1", "--db", missing]),
      runCli(["inspect", "--db", dir]),
    ]);
    for (const result of results.slice(0, 4)) {
      assert.match(
        assertFailure(result, 1),
        /garbage\.sqlite is not a SQLite database/,
      );
    }
    for (const result of results.slice(4, 7)) {
      assert.match(
        assertFailure(result, 1),
        /no database at .*missing\/db\.sqlite: the file does not exist/,
      );
    }
    assert.match(assertFailure(results[7], 1), /is not a database file/);
    assert.deepEqual(Deno.readFileSync(garbage), bytes);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "garbage.sqlite",
    ]);
  });
});

Deno.test("inspect KIND ID of an unknown resource, or with bad descriptors, exits 1 with one line", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeStoreDb(path);
    Deno.writeTextFileSync(`${dir}/bad.binpb`, "not a descriptor set at all");
    const [unknownId, unknownKind, misspelt, unreadable, missing] =
      await Promise.all([
        runCli(["inspect", "skill", "nope", "--db", path]),
        runCli(["inspect", "nokind", "s1", "--json", "--db", path]),
        runCli([
          "inspect",
          "skill",
          "s1",
          "--db",
          path,
          "--descriptors",
          DESCRIPTORS,
          "--type",
          "example.v1.Skil",
        ]),
        runCli([
          "inspect",
          "skill",
          "s1",
          "--db",
          path,
          "--descriptors",
          `${dir}/bad.binpb`,
          "--type",
          "example.v1.Skill",
        ]),
        runCli([
          "inspect",
          "skill",
          "s1",
          "--db",
          path,
          "--descriptors",
          `${dir}/none.binpb`,
          "--type",
          "example.v1.Skill",
        ]),
      ]);
    assert.match(
      assertFailure(unknownId, 1),
      /resource "skill"\/"nope" does not exist/,
    );
    assert.match(
      assertFailure(unknownKind, 1),
      /resource "nokind"\/"s1" does not exist/,
    );
    assert.match(
      assertFailure(misspelt, 1),
      /"example\.v1\.Skil" is not in the descriptors .*example\.v1\.Skill/,
    );
    assert.match(assertFailure(unreadable, 1), /descriptor set/);
    assert.match(
      assertFailure(missing, 1),
      /cannot read descriptors .*none\.binpb/,
    );
  });
});

Deno.test("usage errors of inspect exit 2 with one line", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const cases: [string[], RegExp][] = [
      [["inspect", "--bogus"], /--bogus/],
      [["inspect", "skill"], /KIND ID together, or neither/],
      [["inspect", "a", "b", "c"], /inspect takes KIND ID, got a b c/],
      [["inspect", "skill", "s1", "--check"], /--check goes with the overview/],
      [
        ["inspect", "--descriptors", DESCRIPTORS],
        /decoding options go with KIND ID/,
      ],
      [
        ["inspect", "skill", "s1", "--type", "example.v1.Skill"],
        /need --descriptors FILE/,
      ],
      [[
        "inspect",
        "skill",
        "s1",
        "--descriptors",
        DESCRIPTORS,
        "--type-for",
        "skill",
      ], /--type-for takes KIND=NAME/],
      [["inspect", "--json=yes"], /json/],
    ];
    const results = await Promise.all(
      cases.map(([args]) => runCli([...args, "--db", path])),
    );
    results.forEach((result, i) => {
      const line = assertFailure(result, 2);
      assert.match(line, cases[i][1], cases[i][0].join(" "));
      assert.match(line, /\(see deno run -A cli\.ts inspect --help\)$/);
    });
  });
});

Deno.test("inspect reads $PROTOSTORE_DB, else ./protostore.sqlite; --db wins", async () => {
  await withTempDir(async (dir) => {
    writeStoreDb(`${dir}/env.sqlite`);
    writeStoreDb(`${dir}/protostore.sqlite`);
    writeGoV2(`${dir}/flag.sqlite`);
    const [fromEnv, fromFlag, fallback] = await Promise.all([
      runCliProcess(["inspect", "--json"], {
        cwd: dir,
        env: { PROTOSTORE_DB: `${dir}/env.sqlite` },
      }),
      runCliProcess(["inspect", "--json", "--db", `${dir}/flag.sqlite`], {
        cwd: dir,
        env: { PROTOSTORE_DB: `${dir}/env.sqlite` },
      }),
      runCliProcess(["inspect", "skill", "s2", "--json"], { cwd: dir }),
    ]);
    assert.equal(cliJson<Overview>(fromEnv).path, `${dir}/env.sqlite`);
    assert.equal(cliJson<Overview>(fromFlag).schemaVersion, 2);
    assert.deepEqual(cliJson<Resource>(fallback).message, { name: "two" });
  });
});

Deno.test("control characters in kinds, ids and messages never reach inspect's output raw", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const kind = "k\x1b[31m";
    const id = "i\x1b]0;pwned\x07\u009b2J\u202e\x7f";
    const evil = "\x1b[2J\x1b]8;;http://x\x07click\u009b31m\u2028\u202e\r";
    {
      using store = openStore(path);
      store.saveResource(
        SkillSchema,
        kind,
        id,
        create(SkillSchema, { name: evil, labels: { [evil]: evil } }),
      );
    }
    const [overview, overviewJson, human, json, unknown] = await Promise.all([
      runCli(["inspect", "--db", path]),
      runCli(["inspect", "--json", "--db", path]),
      runCli(["inspect", kind, id, "--db", path]),
      runCli(["inspect", kind, id, "--json", "--db", path]),
      runCli(["inspect", kind, `${id}x`, "--db", path]),
    ]);
    for (
      const [name, result] of Object.entries({
        overview,
        overviewJson,
        human,
        json,
      })
    ) {
      assert.equal(result.code, 0, result.stderr);
      assertNoControlBytes(result.stdoutBytes, name);
    }
    assert.match(overview.stdout, /^k\\x1b\[31m +1 /m);
    assert.match(
      human.stdout,
      /^id: +i\\x1b\]0;pwned\\x07\\x9b2J\\u202e\\x7f$/m,
    );
    // The JSON escapes mean the same text: parsing gives the stored values back.
    const r = cliJson<Resource>(json);
    assert.equal(r.id, id);
    assert.deepEqual(r.message, { name: evil, labels: { [evil]: evil } });
    assert.equal(cliJson<Overview>(overviewJson).kinds[0].kind, kind);
    assertFailure(unknown, 1);
    assertNoControlBytes(new TextEncoder().encode(unknown.stderr), "stderr");
  });
});

Deno.test("problems quoting a crafted schema_version never reach inspect's output raw", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeStoreDb(path);
    const db = new DatabaseSync(path);
    db.exec(
      "UPDATE schema_version SET name = 'x\x1b]0;pwned\x07\u009b2J' WHERE version = 2",
    );
    db.close();
    const [human, json] = await Promise.all([
      runCli(["inspect", "--db", path]),
      runCli(["inspect", "--json", "--db", path]),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      /^Problems\n {2}schema_version records version 2 as x\\x1b\]0;pwned\\x07\\x9b2J/m,
    );
    assertNoControlBytes(human.stdoutBytes, "inspect");
    assert.equal(cliJson<Overview>(json).problems.length, 1);
    assertNoControlBytes(json.stdoutBytes, "inspect --json");
  });
});

Deno.test({
  name: "inspect styles its headings only on a terminal, and not with NO_COLOR",
  ignore: !HAS_SCRIPT,
  fn: async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/db.sqlite`;
      writeStoreDb(path);
      const [tty, noColor, piped] = await Promise.all([
        runCliInTerminal(["inspect", "--db", path]),
        runCliInTerminal(["inspect", "--db", path], { env: { NO_COLOR: "1" } }),
        runCli(["inspect", "--db", path]),
      ]);
      assert.equal(tty.code, 0, tty.stdout);
      assert.ok(
        tty.stdout.includes("\x1b[1mMigrations\x1b[22m"),
        "bold heading on a TTY",
      );
      assert.equal(noColor.code, 0, noColor.stdout);
      assert.ok(noColor.stdout.includes("Migrations"));
      assert.ok(
        !noColor.stdout.includes("\x1b"),
        "no escape codes with NO_COLOR",
      );
      assert.ok(!piped.stdout.includes("\x1b"), "no escape codes into a pipe");
    });
  },
});

Deno.test("inspect --check of a file with a damaged page reports the damage and what to do, text and --json, exit 1", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/damaged.sqlite`;
    writeRows(path, 400, 3);
    damagePage(path);
    const [text, json] = await Promise.all([
      runCli(["inspect", "--check", "--db", path]),
      runCli(["inspect", "--check", "--json", "--db", path]),
    ]);
    for (const result of [text, json]) {
      assert.equal(result.code, 1, result.stderr);
      assert.doesNotMatch(result.stderr, /unexpected error/);
      assert.match(
        result.stderr,
        /^protostore: integrity check of .* found \d+ problem\(s\): the file is damaged: restore it from a backup, or recover .*sqlite3 .*\.recover.*\n$/,
      );
    }
    assert.match(text.stdout, /^integrity: \d+ problem\(s\)$/m);
    assert.match(
      text.stdout,
      /^what to do: the file is damaged: restore it from a backup/m,
    );
    const overview = JSON.parse(json.stdout) as Overview & { advice: string };
    assert.ok(
      Array.isArray(overview.integrity) && overview.integrity.length > 0,
    );
    assert.match(overview.advice, /\.recover/);
  });
});

Deno.test("inspect shows its progress on stderr when stderr is a terminal, and nothing otherwise", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeRows(path, 50, 2);
    const [terminal, piped] = await Promise.all([
      runCli(["inspect", "--check", "--db", path], { errIsTerminal: true }),
      runCli(["inspect", "--check", "--db", path]),
    ]);
    assert.equal(terminal.code, 0, terminal.stderr);
    assert.equal(terminal.stdout, piped.stdout, "the same report");
    assert.equal(piped.stderr, "", "no progress into a pipe or a log");
    // Drawn over one line with \r, and erased at the end.
    assert.match(terminal.stderr, /^\rresources: \d+ row\(s\)/);
    assert.match(terminal.stderr, /\r +\r$/);
    assert.ok(
      !terminal.stderr.includes("\n") && !terminal.stderr.includes("\x1b"),
      "one line, no escape codes",
    );
  });
});

Deno.test("inspect and audit-history of a file whose resources is an endless view finish with a finding or a refusal", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/crafted.sqlite`;
    const db = new DatabaseSync(path);
    db.exec(
      `CREATE VIEW resources AS
         WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
         SELECT 'k' AS kind, CAST(n AS TEXT) AS id, x'0801' AS data,
                '2026-01-01' AS updated_at FROM r`,
    );
    db.close();
    const [overview, one, history] = await Promise.all([
      runCli(["inspect", "--json", "--db", path]),
      runCli(["inspect", "k", "1", "--db", path]),
      runCli(["audit-history", "k", "1", "--db", path]),
    ]);
    assert.ok(
      cliJson<Overview>(overview).problems.includes(
        "resources is a view, not a table: its rows were not read",
      ),
    );
    for (const refused of [one, history]) {
      assert.match(
        assertFailure(refused, 1),
        /^protostore: resources is a view, not a table: refusing to read it/,
      );
    }
  });
});
