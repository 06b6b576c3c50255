/**
 * Hostile input: corrupt and mutated message bytes written behind the Store's back
 * (seeded fuzzing), SQL metacharacters and odd Unicode in every key, database files
 * crafted by someone else, and the permissions of the files the Store creates.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { StructSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AuditNotFoundError,
  migrate,
  MigrationError,
  migrationStatus,
  NotFoundError,
  openStore,
  Store,
  StoreError,
} from "../../mod.ts";
import {
  AgentSchema,
  SkillSchema,
} from "../fixtures/gen/example/v1/example_pb.ts";
import { cases, fileDigest, LONG } from "../helpers/reliability_common.ts";
import { goSchemaSql } from "../helpers/go_store.ts";
import { Rng } from "../helpers/prng.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { runCli } from "../helpers/cli.ts";
import { hex, hexText } from "../helpers/reliability_workload.ts";

// --- Fuzzing message decoding through the Store -------------------------------------

/** Valid messages to mutate: every field type of Skill and Agent, and nested Structs. */
function corpus(): Uint8Array[] {
  const skill = create(SkillSchema, {
    name: "lint",
    versionHash: "sha256:00ff",
    tag: "v1",
    description: "ünïcödé ✓",
    tools: ["a", "bb", ""],
    labels: { team: "x", "": "empty" },
    visibility: 2,
    createdAt: timestampFromDate(new Date("2026-01-25T10:00:00Z")),
    limits: { maxTokens: -5, temperature: 0.25, timeoutMs: -(2n ** 63n) },
    payload: new Uint8Array([0, 1, 2, 255]),
  });
  const agent = create(AgentSchema, {
    name: "a",
    model: "m",
    skills: ["s1", "s2"],
    trigger: { case: "webhook", value: "https://x" },
    limits: { maxTokens: 2 ** 31 - 1 },
  });
  // Struct{fields: {a: Value{struct_value: …}}} nested `depth` deep around
  // Value{number_value: 1}.
  const writeStruct = (w: BinaryWriter, depth: number): BinaryWriter => {
    w.tag(1, WireType.LengthDelimited).fork() // fields: one map entry
      .tag(1, WireType.LengthDelimited).string("a")
      .tag(2, WireType.LengthDelimited).fork(); // its Value
    if (depth > 1) {
      writeStruct(w.tag(5, WireType.LengthDelimited).fork(), depth - 1).join();
    } else w.tag(2, WireType.Bit64).double(1);
    return w.join().join();
  };
  const struct = (depth: number) =>
    writeStruct(new BinaryWriter(), depth).finish();
  return [
    toBinary(SkillSchema, skill),
    toBinary(AgentSchema, agent),
    struct(3),
    struct(40),
    new Uint8Array(0),
  ];
}

/** One fuzz case: random bytes, a mutated valid message, or a crafted edge case. */
function fuzzBlob(rng: Rng, seeds: Uint8Array[]): Uint8Array | string | number {
  const strategy = rng.int(12);
  if (strategy === 0) return rng.bytes(rng.int(64));
  if (strategy === 1) {
    // A field claiming a huge length: must be rejected before allocating.
    const field = 1 + rng.int(12);
    return new BinaryWriter()
      .tag(field, WireType.LengthDelimited)
      .uint64(rng.pick([2 ** 31 - 1, 2 ** 32 + 5, 2 ** 53 - 1, 1e9]))
      .raw(rng.bytes(rng.int(8)))
      .finish();
  }
  if (strategy === 2) {
    // An over-long varint (more than 10 bytes) or one cut short.
    const bytes = new Array(1 + rng.int(14)).fill(0xff);
    return new Uint8Array([0x38, ...bytes]);
  }
  if (strategy === 3) {
    // Deeply nested groups of an unknown field (recursion).
    const depth = rng.pick([10, 1000, 100_000]);
    // Start-group tags (a3 06), then end-group tags (a4 06, or ac 06 of another field),
    // written byte by byte: `set` with a two-element array is slow at 100,000 deep.
    const close = rng.chance(0.8) ? 0xa4 : 0xac;
    const out = new Uint8Array(depth * 4);
    for (let i = 0; i < depth * 2; i += 2) {
      out[i] = 0xa3;
      out[i + 1] = 0x06;
      out[depth * 2 + i] = close;
      out[depth * 2 + i + 1] = 0x06;
    }
    return rng.chance(0.3) ? out.subarray(0, rng.int(out.length)) : out;
  }
  if (strategy === 4) {
    // Values of other SQLite types in the BLOB column (it is not STRICT).
    return rng.pick<string | number>([
      "",
      "abc",
      "\u0000",
      0,
      -1,
      1.5,
      2 ** 60,
    ]);
  }
  if (strategy === 5) {
    // Every wire type on every field number of the schema.
    const field = 1 + rng.int(11);
    const wire = rng.int(8);
    return new Uint8Array([(field << 3) | wire, ...rng.bytes(rng.int(12))]);
  }
  // Mutations of a valid message.
  const bytes = Array.from(rng.pick(seeds));
  const edits = 1 + rng.int(6);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(bytes.length + 1);
    switch (rng.int(6)) {
      case 0:
        if (bytes.length) bytes[at % bytes.length] ^= 1 << rng.int(8);
        break;
      case 1:
        if (bytes.length) bytes[at % bytes.length] = rng.int(256);
        break;
      case 2:
        bytes.splice(at, 0, ...rng.bytes(1 + rng.int(4)));
        break;
      case 3:
        bytes.splice(at, 1 + rng.int(4));
        break;
      case 4:
        bytes.length = Math.min(bytes.length, at);
        break;
      case 5: {
        const from = rng.int(bytes.length + 1);
        bytes.splice(at, 0, ...bytes.slice(from, from + rng.int(16)));
        break;
      }
    }
  }
  return new Uint8Array(bytes);
}

Deno.test("fuzzing stored message bytes: every read returns a message or throws a StoreError naming kind and id", () =>
  withTempDir((dir) => {
    const total = cases(20_000, 300_000);
    const rng = new Rng(1234);
    const seeds = corpus();
    using store = openStore(`${dir}/fuzz.sqlite`);
    const db = Store.connectionOf(store);
    const kind = "fuzz";
    const id = "row";
    const initial = create(SkillSchema, { name: "x" });
    store.saveResource(SkillSchema, kind, id, initial);
    store.saveAudit(SkillSchema, kind, id, initial, {
      versionHash: "h",
      tag: "t",
    });
    const setResource = db.prepare(
      "UPDATE resources SET data = ? WHERE kind = ? AND id = ?",
    );
    const setAudit = db.prepare(
      "UPDATE resource_audit SET data = ? WHERE kind = ? AND resource_id = ?",
    );
    // The rows are recorded as Skills: reading them as other types (to fuzz those
    // decoders too) has to say so, or it stops at TypeMismatchError.
    const asOther = { acceptTypes: ["example.v1.Skill"] };
    const reads: [string, () => unknown][] = [
      ["get Skill", () => store.getResource(SkillSchema, kind, id)],
      ["get Agent", () => store.getResource(AgentSchema, kind, id, asOther)],
      ["get Struct", () => store.getResource(StructSchema, kind, id, asOther)],
      ["list", () => store.listResources(SkillSchema, kind)],
      ["history", () => store.listAuditHistory(AgentSchema, kind, id, asOther)],
      [
        "by tag",
        () => store.getAuditByTag(StructSchema, kind, id, "t", asOther),
      ],
      ["by hash", () => store.getAuditByHash(SkillSchema, kind, id, "h")],
    ];
    const heapBefore = Deno.memoryUsage().heapUsed;
    const outcomes = { decoded: 0, storeErrors: 0 };
    let slowest = 0;
    for (let c = 0; c < total; c++) {
      const blob = fuzzBlob(rng, seeds);
      setResource.run(blob as Uint8Array, kind, id);
      setAudit.run(blob as Uint8Array, kind, id);
      const started = performance.now();
      for (const [name, read] of reads) {
        try {
          read();
          outcomes.decoded++;
        } catch (error) {
          if (!(error instanceof StoreError)) {
            const shown = blob instanceof Uint8Array
              ? hex(blob.subarray(0, 64))
              : JSON.stringify(blob);
            assert.fail(
              `case ${c} (${name}): ${error} is not a StoreError; blob ${shown}`,
            );
          }
          assert.ok(
            error.message.includes(`"${kind}"`),
            `case ${c} (${name}): the error does not name the row: ${error.message}`,
          );
          outcomes.storeErrors++;
        }
      }
      slowest = Math.max(slowest, performance.now() - started);
    }
    const heapGrowth = Deno.memoryUsage().heapUsed - heapBefore;
    // Lengths are checked before allocating: nothing near the claimed gigabytes (what
    // grows is garbage not yet collected: ~5 MB after 20,000 cases, ~200 MB after 300,000).
    assert.ok(
      heapGrowth < 512 * 1024 * 1024,
      `heap grew by ${heapGrowth} bytes`,
    );
    console.log(
      `${total} blobs × ${reads.length} reads: ${
        JSON.stringify(outcomes)
      }, slowest ` +
        `case ${slowest.toFixed(1)} ms, heap growth ${
          (heapGrowth / 1e6).toFixed(1)
        } MB${LONG ? " (long)" : ""}`,
    );
  }));

// --- SQL metacharacters and Unicode in keys ------------------------------------------

const NASTY = [
  "'",
  "''",
  '"',
  "`",
  ";",
  "--",
  "/*",
  "*/",
  "%",
  "_",
  "%_",
  "*",
  "?",
  "?1",
  ":name",
  "@x",
  "$1",
  "[",
  "]",
  "[a-z]",
  "\\",
  "\\%",
  "\u0000",
  "a\u0000b",
  "\u0000\u0000x",
  "\n",
  "\r\n",
  "\t",
  " ",
  " padded ",
  "NULL",
  "null",
  "' OR '1'='1",
  "x'); DROP TABLE resources; --",
  '"); DELETE FROM resource_audit; --',
  "🦕",
  "e\u0301",
  "é",
  "\u202Eevil",
  "\uFEFFbom",
  "\u200B",
  "日本語",
  "\u{10FFFF}",
  "\uFFFD",
  "\x1b[31mred",
  "a/b/c",
  "skill_audit/x/123",
];

Deno.test("SQL metacharacters, quotes, NUL and Unicode in kinds, ids, hashes and tags are stored and found literally", () =>
  withTempDir((dir) => {
    using store = openStore(`${dir}/nasty.sqlite`);
    const db = Store.connectionOf(store);
    const schemaBefore = db.prepare(
      "SELECT sql FROM sqlite_schema ORDER BY name",
    )
      .all();
    const rng = new Rng(99);
    const plain = new Set<string>();
    let checks = 0;
    for (const [n, text] of NASTY.entries()) {
      // Each string as kind, as id, as hash and as tag, next to a plain neighbour.
      const kind = text;
      const id = text;
      const other = NASTY[(n + 1) % NASTY.length];
      const message = create(SkillSchema, { name: `m${n}`, description: text });
      store.saveResource(SkillSchema, kind, id, message);
      store.saveResource(SkillSchema, "plain", id, message);
      store.saveResource(SkillSchema, kind, `${id}${other}`, message);
      assert.equal(store.getResource(SkillSchema, kind, id).description, text);
      assert.equal(store.getResource(SkillSchema, "plain", id).name, `m${n}`);
      assert.equal(store.listResources(SkillSchema, kind).length, 2);
      const stored = db.prepare(
        "SELECT hex(kind) AS k, hex(id) AS i FROM resources WHERE kind = ? AND id = ?",
      ).get(kind, id) as { k: string; i: string };
      assert.deepEqual({ ...stored }, { k: hexText(kind), i: hexText(id) });

      store.saveAudit(SkillSchema, kind, id, message, {
        versionHash: text,
        tag: text,
      });
      store.saveAudit(
        SkillSchema,
        kind,
        id,
        create(SkillSchema, { name: "newer" }),
        {
          versionHash: other,
          tag: `${text}2`,
        },
      );
      assert.equal(
        store.getAuditByHash(SkillSchema, kind, id, text).name,
        `m${n}`,
      );
      assert.equal(
        store.getAuditByTag(SkillSchema, kind, id, text).name,
        `m${n}`,
      );
      assert.throws(
        () => store.getAuditByTag(SkillSchema, kind, id, `${text}3`),
        AuditNotFoundError,
      );
      const history = store.listAuditHistory(SkillSchema, kind, id);
      assert.deepEqual(
        history.map((h) => [h.versionHash, h.tag]),
        [[other, `${text}2`], [text, text]],
      );
      // A prefix is literal text, never a pattern.
      plain.add(id);
      const prefixed = [...plain].filter((p) => p.startsWith(text));
      assert.equal(
        store.deleteResourcesByIdPrefix("plain", text),
        prefixed.length,
      );
      for (const p of prefixed) plain.delete(p);
      assert.throws(
        () => store.getResource(SkillSchema, "plain", id),
        NotFoundError,
      );
      assert.equal(store.deleteResourcesByIdPrefix(kind, `${id}${other}`), 1);
      assert.equal(store.deleteResource(kind, id), true);
      assert.equal(store.listAuditHistory(SkillSchema, kind, id).length, 0);
      assert.equal(store.deleteResource(kind, id), false);
      checks++;
      if (rng.chance(0.1)) store.deleteResourcesByKind(kind);
    }
    assert.deepEqual(
      db.prepare("SELECT sql FROM sqlite_schema ORDER BY name").all(),
      schemaBefore,
      "no SQL was built from the input",
    );
    assert.deepEqual(
      {
        ...db.prepare(
          "SELECT count(*) AS n FROM resources WHERE kind <> 'plain'",
        ).get(),
      },
      { n: 0 },
    );
    console.log(`${checks} strings × (kind, id, hash, tag, prefix)`);
  }));

Deno.test("keys, hashes, tags and prefixes with a lone surrogate are refused with a StoreError (they cannot be stored as UTF-8)", () =>
  withTempDir((dir) => {
    using store = openStore(`${dir}/surrogates.sqlite`);
    const message = create(SkillSchema, { name: "x" });
    store.saveResource(SkillSchema, "k", "\uFFFD", message);
    store.saveAudit(SkillSchema, "k", "\uFFFD", message, { tag: "\uFFFD" });
    for (const lone of ["\uD800", "\uDFFF", "a\uDC00b", "\uDBFF"]) {
      const attempts: (() => unknown)[] = [
        () => store.saveResource(SkillSchema, lone, "i", message),
        () => store.saveResource(SkillSchema, "k", lone, message),
        () => store.getResource(SkillSchema, "k", lone),
        () =>
          store.saveAudit(SkillSchema, "k", "\uFFFD", message, { tag: lone }),
        () =>
          store.saveAudit(SkillSchema, "k", "\uFFFD", message, {
            versionHash: lone,
          }),
        () => store.getAuditByTag(SkillSchema, "k", "\uFFFD", lone),
        () => store.getAuditByHash(SkillSchema, "k", "\uFFFD", lone),
        () => store.deleteResource("k", lone),
        () => store.deleteResourcesByIdPrefix("k", lone),
        () => store.listResources(SkillSchema, lone),
      ];
      for (const attempt of attempts) {
        assert.throws(
          attempt,
          (error: Error) =>
            error instanceof StoreError && !(error instanceof NotFoundError) &&
            /well-formed/.test(error.message),
        );
      }
    }
    // The U+FFFD row was never confused with a lone surrogate.
    assert.equal(store.listAuditHistory(SkillSchema, "k", "\uFFFD").length, 1);
    assert.equal(store.getResource(SkillSchema, "k", "\uFFFD").name, "x");
  }));

// --- Database files crafted by someone else --------------------------------------------

function v3(db: DatabaseSync, path: string): void {
  db.close();
  openStore(path).close();
  const again = new DatabaseSync(path);
  again.exec("PRAGMA journal_mode = DELETE");
  again.close();
}

interface Craft {
  name: string;
  /** Builds the file at `path` (left in rollback-journal mode, so a WAL switch shows). */
  make: (path: string) => void;
  /** What the refusal must say. */
  message: RegExp;
}

function craft(sql: string, base: "none" | "go" | "v3" = "go") {
  return (path: string) => {
    if (base === "v3") {
      v3(new DatabaseSync(path), path);
    }
    const db = new DatabaseSync(path);
    if (base === "go") db.exec(goSchemaSql(2));
    db.exec(
      `INSERT INTO resources (kind, id, data, updated_at)
       VALUES ('k', 'i', x'0a0178', '2026-01-25T10:00:00.000Z')`,
    );
    db.exec(sql);
    db.close();
  };
}

/** A Go v2 file whose `schema_version.version` is a `type` column, also holding `value`. */
function goWithVersionColumn(type: "TEXT" | "REAL", value: string) {
  return (path: string) => {
    const db = new DatabaseSync(path);
    db.exec(
      goSchemaSql(2).replace(
        "schema_version (version INTEGER PRIMARY KEY",
        `schema_version (version ${type} PRIMARY KEY`,
      ),
    );
    db.exec(`INSERT INTO schema_version (version) VALUES (${value})`);
    db.close();
  };
}

const CRAFTS: Craft[] = [
  {
    name: "a trigger on resources (current schema)",
    make: craft(
      "CREATE TRIGGER t AFTER INSERT ON resources BEGIN DELETE FROM resource_audit; END;",
      "v3",
    ),
    message: /trigger t on resources was not created by protostore/,
  },
  {
    name: "a trigger on resources (Go v2 schema, migration pending)",
    make: craft(
      "CREATE TRIGGER t BEFORE UPDATE ON resources BEGIN SELECT 1; END;",
    ),
    message: /trigger t on resources/,
  },
  {
    name: "a view (current schema)",
    make: craft("CREATE VIEW v AS SELECT * FROM resources;", "v3"),
    message: /view v was not created by protostore/,
  },
  {
    name: "a view on resource_audit (Go v2 schema, migration pending)",
    make: craft("CREATE VIEW v AS SELECT * FROM resource_audit;"),
    message: /view v/,
  },
  {
    name: "schema_version claiming 99",
    make: craft("INSERT INTO schema_version (version) VALUES (99);", "v3"),
    message: /schema version 99.*newer code/,
  },
  {
    name: "schema_version claiming -1",
    make: craft("INSERT INTO schema_version (version) VALUES (-1);"),
    message: /version -1, which no migration has/,
  },
  {
    name: "schema_version claiming 0",
    make: craft("INSERT INTO schema_version (version) VALUES (0);"),
    message: /version 0, which no migration has/,
  },
  {
    name: "schema_version claiming 'abc' (a text primary key)",
    make: goWithVersionColumn("TEXT", "'abc'"),
    message: /not a whole number: abc/,
  },
  {
    name: "schema_version claiming 2.5",
    make: goWithVersionColumn("REAL", "2.5"),
    message: /not a whole number: 2\.5/,
  },
  {
    name: "schema_version with other columns",
    make: craft(
      "DROP TABLE schema_version; CREATE TABLE schema_version (v INTEGER, at TEXT);",
    ),
    message: /schema_version has columns \(v, at\)/,
  },
  {
    name: "resources without updated_at (Go v2 claimed)",
    make: craft(
      `DROP TABLE resources;
       CREATE TABLE resources (kind TEXT, id TEXT, data BLOB, PRIMARY KEY (kind, id));`,
    ),
    message: /table resources lacks column\(s\) updated_at/,
  },
  {
    name: "resources with other columns and no schema_version",
    make: (path) => {
      const db = new DatabaseSync(path);
      db.exec("CREATE TABLE resources (kind TEXT, id TEXT, payload BLOB)");
      db.close();
    },
    message: /table resources lacks column\(s\) data, updated_at/,
  },
  {
    name: "resource_audit without schema_id (current schema claimed)",
    make: craft(
      `PRAGMA foreign_keys = OFF;
       CREATE TABLE a2 AS SELECT id, kind, resource_id, data, archived_at, version_hash, tag
         FROM resource_audit;
       DROP TABLE resource_audit; ALTER TABLE a2 RENAME TO resource_audit;`,
      "v3",
    ),
    message: /table resource_audit lacks column\(s\) schema_id/,
  },
  {
    name: "resource_audit without its cascade (current schema claimed)",
    make: craft(
      `PRAGMA foreign_keys = OFF;
       CREATE TABLE a2 AS SELECT * FROM resource_audit;
       DROP TABLE resource_audit; ALTER TABLE a2 RENAME TO resource_audit;`,
      "v3",
    ),
    message: /lacks its foreign key to resources ON DELETE CASCADE/,
  },
  {
    name: "message_schemas before the migration that creates it",
    make: craft("CREATE TABLE message_schemas (id INTEGER PRIMARY KEY, x);"),
    message: /table message_schemas exists, but schema version 2 predates/,
  },
  {
    name: "a schema_id column before the migration that adds it",
    make: craft("ALTER TABLE resources ADD COLUMN schema_id INTEGER;"),
    message: /already has column\(s\) schema_id/,
  },
  {
    name: "a leftover resource_audit_new",
    make: craft("CREATE TABLE resource_audit_new (x);"),
    message: /table resource_audit_new exists/,
  },
  {
    name: "protostore's table missing (current schema claimed)",
    make: craft("DROP TABLE resource_audit_orphans;", "v3"),
    message: /table resource_audit_orphans is missing/,
  },
];

function dirListing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

for (const c of CRAFTS) {
  Deno.test(`crafted file with ${c.name}: opening for writes, migrate, read-only open and status refuse or report it and leave the file byte-identical`, () =>
    withTempDir((dir) => {
      const path = `${dir}/crafted.sqlite`;
      c.make(path);
      const digest = fileDigest(path);
      const files = dirListing(dir);
      const refusals: [string, () => unknown][] = [
        ["openStore", () => openStore(path).close()],
        [
          "openStore migrate:false",
          () => openStore(path, { migrate: false }).close(),
        ],
        [
          "openStore readOnly",
          () => openStore(path, { readOnly: true }).close(),
        ],
        ["migrate", () => migrate(path)],
        ["migrate dryRun", () => migrate(path, { dryRun: true })],
      ];
      for (const [what, attempt] of refusals) {
        assert.throws(
          attempt,
          (error: Error) => {
            assert.ok(
              error instanceof MigrationError,
              `${what}: ${error.name}: ${error.message}`,
            );
            assert.match(error.message, c.message, what);
            return true;
          },
        );
        assert.equal(fileDigest(path), digest, `${what} changed the file`);
        assert.deepEqual(dirListing(dir), files, `${what} created files`);
      }
      const status = migrationStatus(path);
      assert.ok(
        status.problems.some((p) => c.message.test(p)),
        `status reports it: ${status.problems.join("; ")}`,
      );
      assert.equal(fileDigest(path), digest, "status changed the file");
    }));
}

Deno.test("connections run in defensive mode with trusted_schema off", () =>
  withTempDir((dir) => {
    using store = openStore(`${dir}/defensive.sqlite`);
    const db = Store.connectionOf(store);
    assert.deepEqual(
      { ...db.prepare("PRAGMA trusted_schema").get() },
      { trusted_schema: 0 },
    );
    // Defensive mode: the schema table cannot be edited even with writable_schema.
    db.exec("PRAGMA writable_schema = ON");
    assert.throws(
      () =>
        db.exec("UPDATE sqlite_schema SET sql = sql WHERE name = 'resources'"),
      /table sqlite_master may not be modified|not authorized|read.?only/i,
    );
    db.exec("PRAGMA writable_schema = OFF");
  }));

// --- Permissions ----------------------------------------------------------------------

Deno.test("new database files, their -wal and -shm files and new directories are owner-only, whatever the umask", () =>
  withTempDir((dir) => {
    for (const mask of [0o022, 0o000]) {
      const previous = process.umask(mask);
      try {
        const path = `${dir}/u${mask}/a/b/store.sqlite`;
        using store = openStore(path);
        store.saveResource(SkillSchema, "k", "i", create(SkillSchema, {}));
        const mode = (p: string) => Deno.statSync(p).mode! & 0o777;
        for (
          const d of [
            `${dir}/u${mask}`,
            `${dir}/u${mask}/a`,
            `${dir}/u${mask}/a/b`,
          ]
        ) {
          assert.equal(mode(d).toString(8), "700", `directory ${d}`);
        }
        for (const f of [path, `${path}-wal`, `${path}-shm`]) {
          assert.equal(mode(f).toString(8), "600", `file ${f}`);
        }
        const migrated = `${dir}/u${mask}/m/db.sqlite`;
        migrate(migrated);
        assert.equal(mode(migrated).toString(8), "600");
        assert.equal(mode(`${dir}/u${mask}/m`).toString(8), "700");
      } finally {
        process.umask(previous);
      }
    }
  }));

// --- The CLI on hostile databases -------------------------------------------------------

/** The CLI run in process; stdout and stderr together (what a terminal would show). */
async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await runCli(args);
  return { code, out: stdout + stderr };
}

/** Characters a terminal acts on: C0 (but \n, \t), DEL, C1, bidi overrides and isolates. */
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

Deno.test({
  name:
    "the CLI never prints control characters from keys, labels or messages raw (inspect, audit-history, --diff, --json)",
  fn: () =>
    withTempDir(async (dir) => {
      const path = `${dir}/hostile.sqlite`;
      // Arguments cannot hold NUL; stored text can.
      const evil = "x\x1b[2J\x07\r\x9b31m\u202Eevil\x08\u2066";
      const body = `${evil}\u0000nul`;
      {
        using store = openStore(path);
        const message = create(SkillSchema, {
          name: body,
          description: body,
          tools: [body],
          labels: { [body]: body },
          payload: new TextEncoder().encode(body),
        });
        store.saveResource(SkillSchema, evil, evil, message);
        store.saveAudit(SkillSchema, evil, evil, message, {
          versionHash: body,
          tag: body,
        });
        store.saveAudit(
          SkillSchema,
          evil,
          evil,
          create(SkillSchema, { name: `${body}2` }),
          { versionHash: `${evil}2`, tag: evil },
        );
      }
      const runs = [
        ["inspect"],
        ["inspect", "--json"],
        ["inspect", "--check"],
        ["inspect", evil, evil],
        ["inspect", evil, evil, "--json"],
        ["inspect", evil, "missing"],
        ["audit-history", evil, evil],
        ["audit-history", evil, evil, "--json"],
        ["audit-history", evil, evil, "--diff"],
        ["migrate", "--status"],
      ];
      for (const args of runs) {
        const { out } = await cli([...args, "--db", path]);
        const raw = RAW_CONTROL.exec(out);
        assert.equal(
          raw,
          null,
          `${args.map((a) => a === evil ? "EVIL" : a).join(" ")} printed ${
            JSON.stringify(raw?.[0])
          } raw: ${
            JSON.stringify(
              out.slice(Math.max(0, (raw?.index ?? 0) - 40)).slice(0, 80),
            )
          }`,
        );
      }
    }),
});

Deno.test({
  name:
    "inspecting crafted files stays read-only and reports what is wrong (cli.ts inspect --json, migrate --status)",
  fn: () =>
    withTempDir(async (dir) => {
      for (const [n, c] of CRAFTS.entries()) {
        const path = `${dir}/crafted-${n}.sqlite`;
        c.make(path);
        const digest = fileDigest(path);
        const files = dirListing(dir);
        for (const args of [["inspect", "--json"], ["migrate", "--status"]]) {
          const { code, out } = await cli([...args, "--db", path]);
          assert.ok(
            code === 0 || code === 1,
            `${c.name}: ${args[0]} exit ${code}`,
          );
          assert.match(
            out,
            c.message,
            `${c.name}: ${args.join(" ")} reports it`,
          );
          assert.equal(
            fileDigest(path),
            digest,
            `${c.name}: ${args[0]} changed it`,
          );
          assert.deepEqual(
            dirListing(dir),
            files,
            `${c.name}: ${args[0]} created files`,
          );
        }
      }
    }),
});
