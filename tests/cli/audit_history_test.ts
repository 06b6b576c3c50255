/**
 * End-to-end tests of `cli.ts audit-history`, run as a subprocess against real database
 * files: histories written through the Store, the Go store's files, orphaned snapshots,
 * `--limit`, `--diff`, `--show`, and hostile contents.
 */
import assert from "node:assert/strict";
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { DatabaseSync } from "node:sqlite";
import { openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import {
  assertFailure,
  assertNoControlBytes,
  cliCommand,
  cliJson,
  DESCRIPTORS,
  insertOrphans,
  runCli,
} from "../helpers/cli.ts";
import { writeGoDb } from "../helpers/go_store.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const LONG_HASH = "sha256:0123456789abcdef0123456789abcdef";

interface Change {
  path: string;
  op: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}

/** What `audit-history --json` prints. */
interface History {
  kind: string;
  id: string;
  total: number;
  orphaned: boolean;
  live: {
    updatedAt: string | null;
    size: number;
    type: string | null;
    decodedWith: string;
    message: unknown;
    changes?: Change[];
  } | null;
  snapshots: Snapshot[];
}

interface Snapshot {
  id: number;
  archivedAt: string;
  versionHash: string | null;
  tag: string | null;
  size: number;
  type: string | null;
  decodedWith: string;
  message: unknown;
  changes?: Change[] | null;
  reason?: string;
}

function skill(name: string, init: MessageInitShape<typeof SkillSchema> = {}) {
  return create(SkillSchema, { name, ...init });
}

function skillBytes(name: string, tools: string[] = []): Uint8Array {
  return toBinary(SkillSchema, skill(name, { tools }));
}

const N1 = skill("n1", { tools: ["a"] });
const N2 = skill("n2", { tools: ["a", "b"] });
const N4 = skill("n4", { tools: ["b"], limits: { maxTokens: 5 } });
const LIVE = skill("n4", {
  tools: ["b"],
  limits: { maxTokens: 5 },
  description: "live",
});

/**
 * skill/s1 with four snapshots (N1, N2, N2 again, N4) and live state LIVE; skill/quiet
 * with no history. Returns the snapshot ids, newest first.
 */
function writeHistory(path: string): number[] {
  using store = openStore(path);
  const save = (message: typeof N1) =>
    store.saveResource(SkillSchema, "skill", "s1", message);
  const audit = (
    message: typeof N1,
    meta: { versionHash?: string; tag?: string },
  ) => store.saveAudit(SkillSchema, "skill", "s1", message, meta).id;
  save(N1);
  const ids = [audit(N1, { versionHash: LONG_HASH, tag: "v1" })];
  save(N2);
  ids.push(audit(N2, { tag: "v2" }), audit(N2, { tag: "again" }));
  save(N4);
  ids.push(audit(N4, { versionHash: "h4" }));
  save(LIVE);
  store.saveResource(SkillSchema, "skill", "quiet", skill("q"));
  return ids.reverse();
}

/** A Go v2 file, not migrated: s1 with two snapshots; `gone` only has a snapshot. */
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
    ],
    audit: [
      {
        kind: "skill",
        resourceId: "s1",
        data: skillBytes("one"),
        archivedAt: "2026-01-25 10:00:01",
        tag: "v1",
        versionHash: "h1",
      },
      {
        kind: "skill",
        resourceId: "s1",
        data: skillBytes("two", ["x"]),
        archivedAt: "2026-01-25 10:00:02",
        tag: "v2",
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

/** Lines of the human listing that are snapshot rows: `  ID  ARCHIVED ...`. */
function snapshotRows(stdout: string): string[] {
  return stdout.split("\n").filter((l) => /^ {0,7}\d+ {2}\d{4}-/.test(l));
}

Deno.test("audit-history --help prints usage with every option and exits 0", async () => {
  const result = await runCli(["audit-history", "--help"]);
  assert.equal(result.code, 0);
  assert.equal(result.stderr, "");
  assert.match(
    result.stdout,
    /^Usage: deno run -A cli\.ts audit-history KIND ID/,
  );
  for (
    const flag of [
      "--db",
      "--json",
      "--limit",
      "--diff",
      "--show",
      "--descriptors",
      "--type",
      "--type-for",
    ]
  ) {
    assert.ok(
      result.stdout.includes(flag),
      `audit-history --help mentions ${flag}`,
    );
  }
});

Deno.test("audit-history --json lists the snapshots newest first, with ISO times", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const ids = writeHistory(path);
    const snapshots = cliJson<History>(
      await runCli(["audit-history", "skill", "s1", "--json", "--db", path]),
    ).snapshots;
    assert.deepEqual(snapshots.map((s) => s.id), ids);
    let previous = "9999";
    for (const s of snapshots) {
      assert.deepEqual(
        Object.keys(s).sort(),
        [
          "archivedAt",
          "decodedWith",
          "id",
          "message",
          "size",
          "tag",
          "type",
          "versionHash",
        ],
      );
      assert.match(s.archivedAt, ISO);
      assert.ok(s.archivedAt <= previous, "archived times never increase");
      previous = s.archivedAt;
      assert.equal(s.type, "example.v1.Skill");
      assert.equal(s.decodedWith, "stored-descriptors");
    }
    assert.deepEqual(
      snapshots.map((s) => s.size),
      [N4, N2, N2, N1].map((m) => toBinary(SkillSchema, m).length),
    );
    assert.deepEqual(snapshots.map((s) => [s.tag, s.versionHash]), [
      [null, "h4"],
      ["again", null],
      ["v2", null],
      ["v1", LONG_HASH],
    ]);
    assert.deepEqual(snapshots[3].message, { name: "n1", tools: ["a"] });
  });
});

Deno.test("audit-history lists the live state on top, then snapshots with shortened hashes", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const ids = writeHistory(path);
    const result = await runCli(["audit-history", "skill", "s1", "--db", path]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    const lines = result.stdout.split("\n");
    assert.match(
      lines[0],
      /^skill\/s1: 4 snapshot\(s\); live resource updated \d{4}-\d\d-\d\d [\d:.]+ UTC, \d+ B, example\.v1\.Skill \(type recorded in the database\)$/,
    );
    assert.match(lines[2], /^ +ID +ARCHIVED +VERSION HASH +TAG +SIZE$/);
    assert.match(
      lines[3],
      /^ +live +\d{4}-\d\d-\d\d [\d:.]+ UTC +\(current state\) +\d+ B$/,
    );
    const rows = snapshotRows(result.stdout);
    assert.deepEqual(rows.map((r) => Number(r.trim().split(" ")[0])), ids);
    assert.match(rows[3], / sha256:012345… +v1 +\d+ B$/);
    assert.ok(!result.stdout.includes(LONG_HASH), "the table shortens hashes");
    assert.match(rows[0], / h4 +- +\d+ B$/);
    // Every row's columns start at the same offsets.
    const header = lines[2];
    for (const row of [lines[3], ...rows]) {
      assert.equal(
        row.indexOf(":") - header.indexOf("ARCHIVED"),
        13,
        `aligned: ${row}`,
      );
    }
  });
});

Deno.test("audit-history --limit N shows the newest N and says how many are not shown", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const ids = writeHistory(path);
    const run = (...args: string[]) =>
      runCli(["audit-history", "skill", "s1", "--db", path, ...args]);
    const [two, zero, many, human, diffOne] = await Promise.all([
      run("--json", "--limit", "2"),
      run("--json", "--limit", "0"),
      run("--json", "--limit=100"),
      run("--limit", "1"),
      run("--json", "--limit", "1", "--diff"),
    ]);
    assert.deepEqual(
      cliJson<History>(two).snapshots.map((s) => s.id),
      ids.slice(0, 2),
    );
    assert.deepEqual(cliJson<History>(zero).snapshots, []);
    assert.deepEqual(cliJson<History>(many).snapshots.map((s) => s.id), ids);
    assert.deepEqual(
      snapshotRows(human.stdout).map((r) => Number(r.trim().split(" ")[0])),
      [ids[0]],
    );
    assert.match(
      human.stdout,
      /… 3 older snapshot\(s\) not shown \(--limit\)\n$/,
    );
    // The one snapshot shown is still diffed against the one before it.
    const [only] = cliJson<History>(diffOne).snapshots;
    assert.equal(only.id, ids[0]);
    assert.ok(Array.isArray(only.changes) && only.changes.length > 0);
  });
});

Deno.test("audit-history --diff lists the changed paths old → new, null/oldest for the first", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const ids = writeHistory(path);
    const [json, human] = await Promise.all([
      runCli([
        "audit-history",
        "skill",
        "s1",
        "--diff",
        "--json",
        "--db",
        path,
      ]),
      runCli(["audit-history", "skill", "s1", "--diff", "--db", path]),
    ]);
    const snapshots = cliJson<History>(json).snapshots;
    assert.deepEqual(snapshots.map((s) => s.id), ids);
    // Compared as sets: the order of paths is the diff's business.
    assert.deepEqual(snapshots.map((s) => s.changes && byPath(s.changes)), [
      byPath([
        { path: "name", op: "changed", before: "n2", after: "n4" },
        { path: "tools[0]", op: "changed", before: "a", after: "b" },
        { path: "tools[1]", op: "removed", before: "b" },
        { path: "limits", op: "added", after: { maxTokens: 5 } },
      ]),
      [],
      byPath([
        { path: "name", op: "changed", before: "n1", after: "n2" },
        { path: "tools[1]", op: "added", after: "b" },
      ]),
      null,
    ]);

    assert.equal(human.code, 0, human.stderr);
    const out = human.stdout;
    const block = (id: number) => {
      const start = out.search(new RegExp(`^ +${id}  `, "m"));
      const rest = out.slice(start).split("\n").slice(1);
      const end = rest.findIndex((l) =>
        !l.startsWith("      ") || /^ +\d+ {2}\d{4}/.test(l)
      );
      return rest.slice(0, end === -1 ? undefined : end).map((l) => l.trim());
    };
    assert.deepEqual(block(ids[3]), ["(oldest snapshot)"]);
    assert.deepEqual(block(ids[2]).sort(), [
      '+ tools[1]: "b"',
      'name: "n1" → "n2"',
    ]);
    assert.deepEqual(block(ids[1]), ["(no changes)"]);
    assert.deepEqual(block(ids[0]).sort(), [
      '+ limits: {"maxTokens":5}',
      '- tools[1]: "b"',
      'name: "n2" → "n4"',
      'tools[0]: "a" → "b"',
    ]);
    // The live resource against the newest snapshot, under the live row.
    const live = out.split("\n");
    const at = live.findIndex((l) => /^ +live /.test(l));
    assert.equal(live[at + 1].trim(), '+ description: "live"');
  });
});

function byPath(changes: Change[]): Change[] {
  return [...changes].sort((a, b) => a.path < b.path ? -1 : 1);
}

Deno.test("audit-history --show AUDIT_ID prints one snapshot decoded in full", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const ids = writeHistory(path);
    const [json, human, missing, other, combined] = await Promise.all([
      runCli([
        "audit-history",
        "skill",
        "s1",
        "--show",
        String(ids[3]),
        "--json",
        "--db",
        path,
      ]),
      runCli([
        "audit-history",
        "skill",
        "s1",
        "--show",
        String(ids[3]),
        "--db",
        path,
      ]),
      runCli(["audit-history", "skill", "s1", "--show", "999", "--db", path]),
      runCli([
        "audit-history",
        "skill",
        "quiet",
        "--show",
        String(ids[0]),
        "--db",
        path,
      ]),
      runCli([
        "audit-history",
        "skill",
        "s1",
        "--show",
        String(ids[0]),
        "--diff",
        "--db",
        path,
      ]),
    ]);
    const s = cliJson<Snapshot>(json);
    assert.equal(s.id, ids[3]);
    assert.equal(s.versionHash, LONG_HASH);
    assert.equal(s.tag, "v1");
    assert.match(s.archivedAt, ISO);
    assert.deepEqual(s.message, { name: "n1", tools: ["a"] });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^snapshot: +${ids[3]}$`, "m"));
    assert.match(
      human.stdout,
      /^version hash: +sha256:0123456789abcdef0123456789abcdef$/m,
    );
    assert.match(human.stdout, /^tag: +v1$/m);
    assert.match(
      human.stdout,
      /^type: +example\.v1\.Skill \(type recorded in the database\)$/m,
    );
    assert.deepEqual(
      JSON.parse(human.stdout.slice(human.stdout.indexOf("\n{"))),
      {
        name: "n1",
        tools: ["a"],
      },
    );
    assert.match(
      assertFailure(missing, 1),
      /snapshot 999 is not in the history of "skill"\/"s1"/,
    );
    assert.match(
      assertFailure(other, 1),
      /is not in the history of "skill"\/"quiet"/,
    );
    assert.match(assertFailure(combined, 2), /--show cannot be combined/);
  });
});

Deno.test("audit-history of a resource without history says so and exits 0; an unknown one exits 1", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeHistory(path);
    const [human, json, diff, unknownId, unknownKind] = await Promise.all([
      runCli(["audit-history", "skill", "quiet", "--db", path]),
      runCli(["audit-history", "skill", "quiet", "--json", "--db", path]),
      runCli(["audit-history", "skill", "quiet", "--diff", "--db", path]),
      runCli(["audit-history", "skill", "nope", "--db", path]),
      runCli(["audit-history", "tool", "s1", "--json", "--db", path]),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(
      human.stdout,
      /^skill\/quiet: 0 snapshot\(s\); live resource updated .*\nno audit history\n$/,
    );
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /no audit history\n$/);
    assert.deepEqual(cliJson<History>(json).snapshots, []);
    assert.match(
      assertFailure(unknownId, 1),
      /resource "skill"\/"nope" does not exist/,
    );
    assert.match(
      assertFailure(unknownKind, 1),
      /resource "tool"\/"s1" does not exist/,
    );
  });
});

Deno.test("audit-history of an unmigrated Go v2 file: wire dump without descriptors, decoded and diffed with them", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/go.sqlite`;
    writeGoV2(path);
    const before = Deno.readFileSync(path);
    const typed = [
      "--descriptors",
      DESCRIPTORS,
      "--type-for",
      "skill=example.v1.Skill",
    ];
    const [wireHuman, wireJson, json, human] = await Promise.all([
      runCli(["audit-history", "skill", "s1", "--db", path]),
      runCli(["audit-history", "skill", "s1", "--json", "--db", path]),
      runCli([
        "audit-history",
        "skill",
        "s1",
        "--json",
        "--diff",
        "--db",
        path,
        ...typed,
      ]),
      runCli([
        "audit-history",
        "skill",
        "s1",
        "--diff",
        "--db",
        path,
        ...typed,
      ]),
    ]);
    assert.equal(wireHuman.code, 0, wireHuman.stderr);
    assert.match(
      wireHuman.stdout,
      /^skill\/s1: 2 snapshot\(s\); .*schema-less wire dump \(no type known; pass --descriptors FILE --type NAME\)$/m,
    );
    const wire = cliJson<History>(wireJson).snapshots;
    assert.deepEqual(wire.map((s) => [s.decodedWith, s.type]), [
      ["wire", null],
      ["wire", null],
    ]);
    assert.deepEqual(wire[1].message, [{
      field: 1,
      wireType: "len",
      string: "one",
    }]);

    const snapshots = cliJson<History>(json).snapshots;
    assert.deepEqual(
      snapshots.map((
        s,
      ) => [
        s.archivedAt,
        s.tag,
        s.versionHash,
        s.decodedWith,
        s.message,
        s.changes,
      ]),
      [
        ["2026-01-25T10:00:02.000Z", "v2", null, "descriptors", {
          name: "two",
          tools: ["x"],
        }, [
          { path: "name", op: "changed", before: "one", after: "two" },
          { path: "tools", op: "added", after: ["x"] },
        ]],
        [
          "2026-01-25T10:00:01.000Z",
          "v1",
          "h1",
          "descriptors",
          { name: "one" },
          null,
        ],
      ],
    );
    assert.match(human.stdout, /^ +live .*\n +name: "two" → "three"\n/m);
    assert.match(human.stdout, /example\.v1\.Skill \(from --descriptors\)/);
    assert.deepEqual(
      Deno.readFileSync(path),
      before,
      "audit-history wrote nothing",
    );
  });
});

Deno.test("audit-history lists orphaned snapshots of a deleted resource, before and after migration", async () => {
  await withTempDir(async (dir) => {
    const go = `${dir}/go.sqlite`;
    writeGoV2(go);
    const migrated = `${dir}/migrated.sqlite`;
    writeHistory(migrated);
    const [orphanId] = insertOrphans(migrated, [
      {
        kind: "skill",
        resourceId: "gone",
        data: skillBytes("ghost", ["t"]),
        archivedAt: "2026-01-25T09:00:00.123Z",
        tag: "last",
      },
      {
        kind: "skill",
        resourceId: "gone",
        data: skillBytes("ghost"),
        archivedAt: "2026-01-25T08:00:00.000Z",
      },
    ]);
    const [goHuman, goJson, human, json, diff, show] = await Promise.all([
      runCli(["audit-history", "skill", "gone", "--db", go]),
      runCli(["audit-history", "skill", "gone", "--json", "--db", go]),
      runCli(["audit-history", "skill", "gone", "--db", migrated]),
      runCli(["audit-history", "skill", "gone", "--json", "--db", migrated]),
      runCli([
        "audit-history",
        "skill",
        "gone",
        "--json",
        "--diff",
        "--db",
        migrated,
      ]),
      runCli([
        "audit-history",
        "skill",
        "gone",
        "--show",
        String(orphanId),
        "--json",
        "--db",
        migrated,
      ]),
    ]);
    for (const result of [goHuman, human]) {
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stdout,
        /^skill\/gone: the resource no longer exists; \d orphaned snapshot\(s\) kept$/m,
      );
      assert.doesNotMatch(result.stdout, /^ +live /m);
    }
    assert.equal(snapshotRows(goHuman.stdout).length, 1);
    assert.deepEqual(
      cliJson<History>(goJson).snapshots.map((s) => s.archivedAt),
      [
        "2026-01-25T09:00:00.000Z",
      ],
    );
    assert.equal(snapshotRows(human.stdout).length, 2);
    const snapshots = cliJson<History>(json).snapshots;
    assert.deepEqual(snapshots.map((s) => [s.id, s.archivedAt, s.tag]), [
      [orphanId, "2026-01-25T09:00:00.123Z", "last"],
      [orphanId + 1, "2026-01-25T08:00:00.000Z", null],
    ]);
    // Orphans were written without a recorded type: a wire dump.
    assert.equal(snapshots[0].decodedWith, "wire");
    assert.deepEqual(
      cliJson<History>(diff).snapshots.map((s) => s.changes),
      [[{
        path: "[1]",
        op: "added",
        after: { field: 5, wireType: "len", string: "t" },
      }], null],
    );
    assert.equal(cliJson<Snapshot>(show).tag, "last");
  });
});

Deno.test("usage errors of audit-history exit 2 with one line", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    writeHistory(path);
    const cases: [string[], RegExp][] = [
      [[], /audit-history takes KIND ID, got none/],
      [["skill"], /audit-history takes KIND ID, got skill/],
      [["skill", "s1", "extra"], /got skill s1 extra/],
      [
        ["skill", "s1", "--limit", "abc"],
        /--limit takes a whole number, got "abc"/,
      ],
      [["skill", "s1", "--limit=-1"], /--limit takes a whole number, got "-1"/],
      [
        ["skill", "s1", "--limit", "1.5"],
        /--limit takes a whole number, got "1\.5"/,
      ],
      [["skill", "s1", "--limit", "-1"], /--limit/],
      [["skill", "s1", "--show", "x"], /--show takes a whole number/],
      [
        ["skill", "s1", "--show", "1", "--limit", "1"],
        /--show cannot be combined/,
      ],
      [["skill", "s1", "--nope"], /--nope/],
    ];
    const results = await Promise.all(
      cases.map(([args]) => runCli(["audit-history", ...args, "--db", path])),
    );
    results.forEach((result, i) => {
      const line = assertFailure(result, 2);
      assert.match(line, cases[i][1], cases[i][0].join(" "));
      assert.match(line, /\(see deno run -A cli\.ts audit-history --help\)$/);
      assert.ok(
        !line.includes("\\n"),
        `multi-line messages are folded: ${line}`,
      );
    });
  });
});

Deno.test("audit-history reads $PROTOSTORE_DB when --db is not given", async () => {
  await withTempDir(async (dir) => {
    const ids = writeHistory(`${dir}/env.sqlite`);
    const result = await runCli([
      "audit-history",
      "skill",
      "s1",
      "--json",
      "--limit",
      "1",
    ], {
      env: { PROTOSTORE_DB: `${dir}/env.sqlite` },
    });
    assert.deepEqual(cliJson<History>(result).snapshots.map((s) => s.id), [
      ids[0],
    ]);
  });
});

Deno.test("control characters in ids, tags, hashes and messages never reach audit-history's output raw", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const id = "s\x1b[31m\u009b2J\u202e";
    const evil = "\x1b]0;pwned\x07\x1b[2J\u0085\u2029\x7f";
    let auditId: number;
    {
      using store = openStore(path);
      store.saveResource(SkillSchema, "skill", id, skill("a"));
      store.saveAudit(SkillSchema, "skill", id, skill("a"), {
        tag: "t",
        versionHash: "h",
      });
      store.saveResource(
        SkillSchema,
        "skill",
        id,
        skill(evil, { labels: { [evil]: evil } }),
      );
      auditId = store.saveAudit(
        SkillSchema,
        "skill",
        id,
        skill(evil, { labels: { [evil]: evil } }),
        {
          tag: evil,
          versionHash: evil,
        },
      ).id;
      store.saveResource(SkillSchema, "skill", id, skill("b"));
    }
    const results = await Promise.all([
      runCli(["audit-history", "skill", id, "--diff", "--db", path]),
      runCli(["audit-history", "skill", id, "--diff", "--json", "--db", path]),
      runCli([
        "audit-history",
        "skill",
        id,
        "--show",
        String(auditId),
        "--db",
        path,
      ]),
      runCli([
        "audit-history",
        "skill",
        id,
        "--show",
        String(auditId),
        "--json",
        "--db",
        path,
      ]),
    ]);
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr);
      assertNoControlBytes(result.stdoutBytes, "audit-history");
    }
    assert.match(
      results[0].stdout,
      /^skill\/s\\x1b\[31m\\x9b2J\\u202e: 2 snapshot/,
    );
    assert.match(results[0].stdout, /name: "a" → "\\u001b\]0;pwned\\u0007/);
    const [newest] = cliJson<History>(results[1]).snapshots;
    assert.equal(newest.tag, evil);
    assert.equal(newest.versionHash, evil);
    assert.deepEqual(newest.message, { name: evil, labels: { [evil]: evil } });
    assert.equal(cliJson<Snapshot>(results[3]).tag, evil);
    const unknown = await runCli([
      "audit-history",
      "skill",
      `${id}${evil}`,
      "--db",
      path,
    ]);
    assertFailure(unknown, 1);
    assertNoControlBytes(new TextEncoder().encode(unknown.stderr), "stderr");
  });
});

Deno.test("audit-history stops quietly when the reader closes the pipe early", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    {
      using store = openStore(path);
      store.saveResource(SkillSchema, "skill", "big", skill("big"));
      const payload = skill("x".repeat(200), { tools: ["a", "b", "c"] });
      store.transaction(() => {
        for (let i = 0; i < 3000; i++) {
          store.saveAudit(SkillSchema, "skill", "big", payload, {
            tag: `t${i}`,
          });
        }
      });
    }
    // ~1.5 MB of JSON: far more than a pipe buffers, so the CLI is still writing.
    const child = cliCommand([
      "audit-history",
      "skill",
      "big",
      "--json",
      "--db",
      path,
    ]).spawn();
    const reader = child.stdout.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0);
    await reader.cancel();
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    assert.equal(stderr, "", "no error report for a closed pipe");
    assert.equal(status.code, 0);
  });
});

Deno.test("audit-history --json has the live resource, and with --diff its changes against the newest snapshot", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    const ids = writeHistory(path);
    const [plain, diffed, human] = await Promise.all([
      runCli(["audit-history", "skill", "s1", "--json", "--db", path]),
      runCli([
        "audit-history",
        "skill",
        "s1",
        "--json",
        "--diff",
        "--db",
        path,
      ]),
      runCli(["audit-history", "skill", "s1", "--diff", "--db", path]),
    ]);
    const withoutDiff = cliJson<History>(plain);
    assert.equal(withoutDiff.total, 4);
    assert.equal(withoutDiff.orphaned, false);
    assert.deepEqual(
      (withoutDiff.live?.message as { description: string }).description,
      "live",
    );
    assert.match(withoutDiff.live?.updatedAt ?? "", ISO);
    assert.equal(withoutDiff.live?.type, "example.v1.Skill");
    assert.equal(
      withoutDiff.live?.changes,
      undefined,
      "changes only with --diff",
    );
    const history = cliJson<History>(diffed);
    assert.deepEqual(history.snapshots.map((s) => s.id), ids);
    // The same change the text output shows under the live row.
    assert.deepEqual(history.live?.changes, [
      { path: "description", op: "added", after: "live" },
    ]);
    assert.match(human.stdout, /^ +live .*\n +\+ description: "live"$/m);
  });
});

Deno.test("audit-history, inspect KIND ID and restore on another application's file say it is not protostore's, untouched", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/notes.db`;
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi')");
    db.close();
    const before = await Deno.readFile(path);
    for (
      const args of [
        ["audit-history", "skill", "s1"],
        ["inspect", "skill", "s1"],
        ["restore", "skill", "s1", "--tag", "v1", "--yes"],
      ]
    ) {
      const message = assertFailure(await runCli([...args, "--db", path]), 1);
      assert.match(
        message,
        /notes\.db is not a protostore database: it has no resources table \(it holds table notes\)/,
        args[0],
      );
    }
    assert.deepEqual(await Deno.readFile(path), before);
  });
});
