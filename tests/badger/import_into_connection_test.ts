import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { importIntoConnection as importBadger } from "../../src/badger/import.ts";
import type { ImportSummary } from "../../src/badger/summary.ts";
import { DecodeError, StoreError } from "../../src/errors.ts";
import { createMigratedDb } from "../helpers/schema.ts";
import {
  chunkedStream,
  concat,
  encodeBackup,
  encodeKVList,
  frame,
  type KVInit,
  writeGeneratedDump,
} from "../helpers/badger_writer.ts";
import { mulberry32 } from "../helpers/prng.ts";

const FIXTURES = new URL("../fixtures/badger/", import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;
const hex = (b: Uint8Array) =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const hexOf = (s: string) => hex(new TextEncoder().encode(s));

interface Manifest {
  generated_at_unix: number;
  live: { key: string; value_b64: string }[];
}
const manifest = JSON.parse(
  await Deno.readTextFile(fixture("manifest.json")),
) as Manifest;
const BACKUP_TIME = new Date(manifest.generated_at_unix * 1000);
const NOW = new Date("2030-01-02T03:04:05.678Z");

interface Ctx {
  dir: string;
  path: string;
  tempDir: string;
}

async function withDb(
  fn: (db: DatabaseSync, ctx: Ctx) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "protostore-import-test-" });
  const path = `${dir}/db.sqlite`;
  const tempDir = `${dir}/tmp`;
  await Deno.mkdir(tempDir);
  const db = createMigratedDb(path);
  try {
    await fn(db, { dir, path, tempDir });
    // Staging files never outlive an import.
    assert.deepEqual([...Deno.readDirSync(tempDir)], []);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

type Row = Record<string, unknown>;

/** Every row of the tables an import may touch, blobs as hex. */
function contents(db: DatabaseSync) {
  const rows = (sql: string) =>
    (db.prepare(sql).all() as Row[]).map((row) => ({ ...row }));
  return {
    resources: rows(
      "SELECT kind, id, hex(data) AS data, updated_at, schema_id FROM resources ORDER BY kind, id",
    ),
    audit: rows(
      `SELECT id, kind, resource_id, hex(data) AS data, archived_at, version_hash, tag,
       schema_id FROM resource_audit ORDER BY id`,
    ),
    orphans: rows(
      `SELECT id, kind, resource_id, hex(data) AS data, archived_at, version_hash, tag,
       schema_id FROM resource_audit_orphans ORDER BY id`,
    ),
    schemas: rows("SELECT id, type_name FROM message_schemas ORDER BY id"),
  };
}

const AUDIT_KEY = /^([^/]+)\/\1_audit\/(.+)\/(\d{1,19})$/;

/** The database contents a manifest's live list must import to. */
function expectedFromManifest(live: Manifest["live"], updatedAt: string) {
  const resources: Row[] = [];
  const snapshots: Row[] = [];
  for (const entry of live) {
    const data = hex(Uint8Array.fromBase64(entry.value_b64)).toUpperCase();
    const audit = AUDIT_KEY.exec(entry.key);
    if (audit) {
      const ms = Number(BigInt(audit[3]) / 1_000_000n);
      snapshots.push({
        kind: audit[1],
        resource_id: audit[2],
        data,
        archived_at: new Date(ms).toISOString(),
        version_hash: null,
        tag: null,
        schema_id: null,
      });
    } else {
      const slash = entry.key.indexOf("/");
      resources.push({
        kind: entry.key.slice(0, slash),
        id: entry.key.slice(slash + 1),
        data,
        updated_at: updatedAt,
        schema_id: null,
      });
    }
  }
  const byKey = (a: Row, b: Row, keys: string[]) => {
    for (const k of keys) {
      if (a[k]! < b[k]!) return -1;
      if (a[k]! > b[k]!) return 1;
    }
    return 0;
  };
  resources.sort((a, b) => byKey(a, b, ["kind", "id"]));
  snapshots.sort((a, b) => byKey(a, b, ["kind", "resource_id", "archived_at"]));
  const exists = new Set(resources.map((r) => `${r.kind}\0${r.id}`));
  const number = (rows: Row[]) => rows.map((row, i) => ({ id: i + 1, ...row }));
  return {
    resources,
    audit: number(
      snapshots.filter((s) => exists.has(`${s.kind}\0${s.resource_id}`)),
    ),
    orphans: number(
      snapshots.filter((s) => !exists.has(`${s.kind}\0${s.resource_id}`)),
    ),
    schemas: [],
  };
}

function checkTotals(summary: ImportSummary): void {
  assert.equal(
    summary.keysSeen,
    summary.resources + summary.auditRecords + summary.orphanAuditRecords +
      summary.skippedDeleted + summary.skippedExpired + summary.skippedInvalid +
      summary.skippedInternal,
  );
}

for (const file of ["backup.bak", "badger-cli-backup.bak"]) {
  Deno.test(`importing ${file} gives exactly the manifest's live keys`, async () => {
    await withDb(async (db, { tempDir }) => {
      const summary = await importBadger(db, fixture(file), {
        now: BACKUP_TIME,
        tempDir,
      });
      assert.deepEqual(
        contents(db),
        expectedFromManifest(manifest.live, BACKUP_TIME.toISOString()),
      );
      assert.equal(summary.source, fixture(file));
      assert.equal(summary.resources, 19);
      assert.equal(summary.auditRecords, 4);
      assert.equal(summary.orphanAuditRecords, 0);
      assert.deepEqual(summary.kinds, { agent: 6, skill: 8, workflow: 5 });
      assert.equal(summary.skippedInvalid, 0);
      assert.equal(summary.skippedInternal, 0);
      assert.equal(summary.records, 1);
      assert.equal(summary.bytesRead, (await Deno.stat(fixture(file))).size);
      assert.equal(summary.totalBytes, summary.bytesRead);
      if (file === "backup.bak") {
        // Full history: the tombstoned workflow and the expired TTL key are counted.
        assert.equal(summary.kvs, 31);
        assert.equal(summary.keysSeen, 25);
        assert.equal(summary.skippedDeleted, 1);
        assert.equal(summary.skippedExpired, 1);
      } else {
        assert.equal(summary.keysSeen, 23);
      }
      checkTotals(summary);
    });
  });
}

Deno.test("TTLs are checked against the import's clock", async () => {
  await withDb(async (db, { tempDir }) => {
    // Ten years on, the agent with a 10-year TTL has expired too.
    const summary = await importBadger(db, fixture("backup.bak"), {
      now: new Date(2111333025 * 1000),
      tempDir,
    });
    assert.equal(summary.skippedExpired, 2);
    assert.equal(summary.resources, 18);
    assert.equal(
      db.prepare(
        "SELECT count(*) AS n FROM resources WHERE id LIKE '00001a65%'",
      ).get()!.n,
      0,
    );
  });
});

Deno.test("the newest version wins across records and unsorted ranges", async () => {
  const nowSec = Math.floor(NOW.getTime() / 1000);
  const records: KVInit[][] = [
    [
      { key: "k/a", value: "old", version: 3 },
      { key: "k/b", value: "b9", version: 9 },
      { key: "k/d", version: 6, meta: 1 },
      { key: "k/h", value: "h1", version: 1 },
      { key: "k/h", value: "h2", version: 2 }, // newer right after older, same record
      { key: "k/j", value: "j-top", version: 2n ** 64n - 1n },
      { key: "k/l", value: "l3", version: 3 },
      { key: "z/only", value: "z", version: 1 },
    ],
    [
      { key: "k/b", value: "b4", version: 4 }, // older version split into a later record
      { key: "k/c", value: "c2", version: 2 },
      { key: "k/e", value: "e10", version: 10, expiresAt: nowSec },
      { key: "k/e", value: "e5", version: 5 },
      { key: "k/f", value: "f", version: 1, expiresAt: nowSec + 1 },
      { key: "k/g", value: "hi", version: 2n ** 63n },
      { key: "k/i", version: 1 }, // live with an empty value
    ],
    [
      // A second key range, starting again from "k/a".
      { key: "k/a", value: "new", version: 7 },
      { key: "k/c", version: 6, meta: 1 },
      { key: "k/d", value: "d8", version: 8, meta: 0x04 },
      { key: "k/g", value: "top", version: 2n ** 64n - 1n },
      { key: "k/g", value: "low", version: 5 },
      // Unsigned order in the staging table, where these are stored as negative int64.
      { key: "k/j", value: "j-low", version: 7 },
      { key: "k/l", value: "l-big", version: 2n ** 63n },
      { key: "z/only", version: 2, meta: 1 },
      { key: "", version: 0, streamDone: true, streamId: 3 },
    ],
  ];
  await withDb(async (db, { tempDir }) => {
    const summary = await importBadger(
      db,
      chunkedStream(encodeBackup(records), 5),
      {
        now: NOW,
        tempDir,
      },
    );
    assert.deepEqual(
      contents(db).resources.map((r) => [r.id, r.data]),
      [
        ["a", hexOf("new").toUpperCase()],
        ["b", hexOf("b9").toUpperCase()],
        ["d", hexOf("d8").toUpperCase()],
        ["f", hexOf("f").toUpperCase()],
        ["g", hexOf("top").toUpperCase()],
        ["h", hexOf("h2").toUpperCase()],
        ["i", ""],
        ["j", hexOf("j-top").toUpperCase()],
        ["l", hexOf("l-big").toUpperCase()],
      ],
    );
    assert.equal(summary.source, null);
    assert.equal(summary.totalBytes, null);
    assert.equal(summary.records, 3);
    assert.equal(summary.kvs, 24);
    assert.equal(summary.streamMarkers, 1);
    assert.equal(summary.keysSeen, 12);
    assert.equal(summary.resources, 9);
    assert.deepEqual(summary.kinds, { k: 9 });
    assert.equal(summary.skippedDeleted, 2);
    assert.equal(summary.skippedExpired, 1);
    checkTotals(summary);
  });
});

Deno.test("a truncated dump fails naming the record's offset and leaves the database as it was", async () => {
  const records: KVInit[][] = [
    [{ key: "k/a", value: "x".repeat(40), version: 2 }, {
      key: "k/b",
      value: "y",
      version: 1,
    }],
    [{ key: "k/k_audit/a/1700000000000000000", value: "snap", version: 3 }],
    [{ key: "k/c", value: "z".repeat(20), version: 4 }, {
      key: "k/a",
      value: "old",
      version: 1,
    }],
  ];
  const framed = records.map((kvs) => frame(encodeKVList(kvs)));
  const dump = concat(framed);
  const starts: number[] = [];
  let at = 0;
  for (const f of framed) {
    starts.push(at);
    at += f.length;
  }
  await withDb(async (db, { path, tempDir }) => {
    await importBadger(
      db,
      ReadableStream.from([
        encodeBackup([[{ key: "k/a", value: "before", version: 1 }]]),
      ]),
      { tempDir, now: NOW },
    );
    const before = await Deno.readFile(path);
    const rows = contents(db);
    let failures = 0;
    for (let cut = 1; cut < dump.length; cut++) {
      if (starts.includes(cut)) continue; // a record boundary is a valid, shorter dump
      const recordStart = Math.max(...starts.filter((s) => s <= cut));
      await assert.rejects(
        () =>
          importBadger(db, ReadableStream.from([dump.slice(0, cut)]), {
            tempDir,
          }),
        (error: Error) => {
          assert.ok(error instanceof DecodeError, String(error));
          assert.equal(error.offset, recordStart);
          return true;
        },
      );
      failures++;
    }
    assert.equal(failures, dump.length - starts.length);
    assert.deepEqual(await Deno.readFile(path), before);
    assert.deepEqual(contents(db), rows);
  });
});

Deno.test("a corrupt record fails before anything is written", async () => {
  await withDb(async (db, { path, tempDir }) => {
    const good = frame(encodeKVList([{ key: "k/a", value: "x", version: 1 }]));
    const bad = frame(new Uint8Array([0x0a, 0x04, 0x0a, 0x09, 0x61, 0x2f])); // key overruns
    const before = await Deno.readFile(path);
    const dumpPath = `${tempDir}/../corrupt.bak`;
    await Deno.writeFile(dumpPath, concat([good, good, bad, good]));
    await assert.rejects(
      () => importBadger(db, dumpPath, { tempDir }),
      (error: Error) => {
        assert.ok(error instanceof DecodeError, String(error));
        // The key's length byte: 4 bytes into the third record's body.
        assert.equal(error.offset, 2 * good.length + 8 + 4);
        assert.match(error.message, /corrupt\.bak/);
        return true;
      },
    );
    assert.deepEqual(await Deno.readFile(path), before);
    assert.equal(contents(db).resources.length, 0);
  });
});

Deno.test("importing the same dump twice gives the same database as once", async () => {
  const records: KVInit[][] = [[
    { key: "skill/s1", value: "v1", version: 5 },
    { key: "skill/s2", value: "v2", version: 6 },
    { key: "skill/s3", version: 7, meta: 1 },
    {
      key: "skill/skill_audit/s1/1700000000000000001",
      value: "a1",
      version: 1,
    },
    {
      key: "skill/skill_audit/s1/1700000000000999999",
      value: "a2",
      version: 2,
    },
    {
      key: "skill/skill_audit/s3/1700000000000000003",
      value: "gone",
      version: 3,
    },
    {
      key: "skill/skill_audit/zz/1700000000000000004",
      value: "orphan",
      version: 4,
    },
  ]];
  const dump = encodeBackup(records);
  await withDb(async (db, { tempDir }) => {
    const first = await importBadger(db, ReadableStream.from([dump]), {
      now: NOW,
      tempDir,
    });
    const once = contents(db);
    const later = new Date(NOW.getTime() + 3_600_000);
    const second = await importBadger(db, ReadableStream.from([dump]), {
      now: later,
      tempDir,
    });
    assert.deepEqual(contents(db), once);
    assert.equal(once.audit.length, 2);
    assert.deepEqual(once.orphans.map((o) => o.resource_id), ["s3", "zz"]);
    assert.deepEqual(
      once.audit.map((a) => a.archived_at),
      ["2023-11-14T22:13:20.000Z", "2023-11-14T22:13:20.000Z"],
    );
    for (const s of [first, second]) {
      assert.equal(s.resources, 2);
      assert.equal(s.auditRecords, 2);
      assert.equal(s.orphanAuditRecords, 2);
      assert.equal(s.skippedDeleted, 1);
      checkTotals(s);
    }
    assert.equal(first.resourcesUnchanged, 0);
    assert.equal(first.auditUnchanged, 0);
    assert.equal(second.resourcesUnchanged, 2);
    assert.equal(second.auditUnchanged, 4);
  });
});

Deno.test("a changed resource is updated in place with its history kept", async () => {
  await withDb(async (db, { tempDir }) => {
    await importBadger(
      db,
      ReadableStream.from([encodeBackup([[
        { key: "skill/s1", value: "v1", version: 1 },
        { key: "skill/s2", value: "same", version: 2 },
        {
          key: "skill/skill_audit/s1/1700000000000000000",
          value: "h",
          version: 3,
        },
      ]])]),
      { now: NOW, tempDir },
    );
    const later = new Date(NOW.getTime() + 1000);
    const summary = await importBadger(
      db,
      ReadableStream.from([encodeBackup([[
        { key: "skill/s1", value: "v2", version: 9 },
        { key: "skill/s2", value: "same", version: 2 },
      ]])]),
      { now: later, tempDir },
    );
    assert.equal(summary.resourcesUnchanged, 1);
    const { resources, audit } = contents(db);
    assert.deepEqual(resources.map((r) => [r.id, r.data, r.updated_at]), [
      ["s1", hexOf("v2").toUpperCase(), later.toISOString()],
      ["s2", hexOf("same").toUpperCase(), NOW.toISOString()],
    ]);
    assert.deepEqual(audit.map((a) => [a.resource_id, a.data]), [
      ["s1", hexOf("h").toUpperCase()],
    ]);
  });
});

Deno.test("importing into a database with data overwrites only the dump's keys", async () => {
  await withDb(async (db, { tempDir }) => {
    const old = "2025-01-01T00:00:00.000Z";
    db.exec(`
      INSERT INTO message_schemas (id, type_name, digest, descriptor_set, created_at)
        VALUES (1, 'example.v1.Skill', 'd1', x'', '${old}');
      INSERT INTO resources (kind, id, data, updated_at, schema_id) VALUES
        ('note', 'n1', x'01', '${old}', 1),
        ('skill', 's1', x'02', '${old}', 1),
        ('skill', 's2', x'${hexOf("same")}', '${old}', 1);
      INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag, schema_id)
        VALUES ('skill', 's1', x'02', '2024-01-01T00:00:00.000Z', 'sha256:1', 'v1', 1),
               ('note', 'n1', x'01', '2024-01-01T00:00:00.000Z', NULL, NULL, NULL);
      INSERT INTO resource_audit_orphans (kind, resource_id, data, archived_at)
        VALUES ('gone', 'g0', x'09', '2020-01-01T00:00:00.000Z');
    `);
    const before = contents(db);
    const summary = await importBadger(
      db,
      ReadableStream.from([encodeBackup([[
        {
          key: "note/note_audit/n1/1700000000000000000",
          value: "snap",
          version: 1,
        },
        {
          key: "gone/gone_audit/g1/1700000000000000000",
          value: "lost",
          version: 1,
        },
        { key: "skill/s1", value: "new", version: 4 },
        { key: "skill/s2", value: "same", version: 4 },
        { key: "skill/s3", value: "fresh", version: 4 },
      ]])]),
      { now: NOW, tempDir },
    );
    const after = contents(db);
    assert.deepEqual(after.resources, [
      before.resources[0], // note/n1 untouched
      {
        kind: "skill",
        id: "s1",
        data: hexOf("new").toUpperCase(),
        updated_at: NOW.toISOString(),
        schema_id: null,
      },
      before.resources[2], // identical bytes: untouched, type record kept
      {
        kind: "skill",
        id: "s3",
        data: hexOf("fresh").toUpperCase(),
        updated_at: NOW.toISOString(),
        schema_id: null,
      },
    ]);
    // History kept; the snapshot of a resource that exists only in the database attaches.
    assert.deepEqual(after.audit.slice(0, 2), before.audit);
    assert.deepEqual(
      after.audit.slice(2).map((a) => [a.id, a.kind, a.resource_id]),
      [
        [3, "note", "n1"],
      ],
    );
    assert.deepEqual(after.orphans.slice(0, 1), before.orphans);
    assert.deepEqual(
      after.orphans.slice(1).map((a) => [a.kind, a.resource_id, a.data]),
      [
        ["gone", "g1", hexOf("lost").toUpperCase()],
      ],
    );
    assert.deepEqual(after.schemas, before.schemas);
    assert.equal(summary.resources, 3);
    assert.equal(summary.resourcesUnchanged, 1);
    assert.equal(summary.auditRecords, 1);
    assert.equal(summary.orphanAuditRecords, 1);
    assert.deepEqual(db.prepare("PRAGMA foreign_key_check").all(), []);
  });
});

Deno.test("a dry run writes nothing and reports what a real import would", async () => {
  await withDb(async (db, { dir, path, tempDir }) => {
    db.exec(`INSERT INTO resources (kind, id, data, updated_at)
      VALUES ('skill', '000015c1-005c-4001-8001-000000abc001', x'00', '2025-01-01T00:00:00.000Z')`);
    const before = await Deno.readFile(path);
    const dry = await importBadger(db, fixture("backup.bak"), {
      now: BACKUP_TIME,
      tempDir,
      dryRun: true,
    });
    assert.deepEqual(await Deno.readFile(path), before);
    assert.equal(dry.dryRun, true);
    // The same import for real, on a copy.
    const copyPath = `${dir}/copy.sqlite`;
    await Deno.copyFile(path, copyPath);
    const copy = new DatabaseSync(copyPath);
    try {
      const real = await importBadger(copy, fixture("backup.bak"), {
        now: BACKUP_TIME,
        tempDir,
      });
      assert.deepEqual(
        { ...dry, dryRun: false, elapsedMs: 0 },
        { ...real, elapsedMs: 0 },
      );
      const again = await importBadger(copy, fixture("backup.bak"), {
        now: BACKUP_TIME,
        tempDir,
        dryRun: true,
      });
      assert.equal(again.resourcesUnchanged, 19);
      assert.equal(again.auditUnchanged, 4);
    } finally {
      copy.close();
    }
  });
});

Deno.test("invalid keys are skipped and reported by hex key and reason", async () => {
  const records: KVInit[][] = [[
    { key: "noslash", value: "1", version: 1 },
    { key: "/x", value: "2", version: 1 },
    { key: "k/", value: "3", version: 1 },
    { key: new Uint8Array([0x6b, 0x2f, 0xff]), value: "4", version: 1 },
    { key: "deleted-invalid", version: 2, meta: 1 },
    { key: "k/ok", value: "5", version: 1 },
  ]];
  await withDb(async (db, { tempDir }) => {
    const seen: string[] = [];
    const summary = await importBadger(
      db,
      ReadableStream.from([encodeBackup(records)]),
      {
        tempDir,
        maxListedInvalidKeys: 2,
        onInvalidKey: (key) => seen.push(key.keyHex),
      },
    );
    const expected = [
      {
        keyHex: hexOf("/x"),
        reason: "key has an empty kind (starts with '/')",
      },
      {
        keyHex: hexOf("k/"),
        reason: "key has an empty id (ends with its first '/')",
      },
      { keyHex: "6b2fff", reason: "key is not valid UTF-8" },
      {
        keyHex: hexOf("noslash"),
        reason: "key has no '/' separating kind and id",
      },
    ];
    assert.deepEqual(seen, expected.map((e) => e.keyHex));
    assert.deepEqual(summary.invalidKeys, expected.slice(0, 2));
    assert.equal(summary.invalidKeysTruncated, true);
    assert.equal(summary.skippedInvalid, 4);
    assert.equal(summary.skippedDeleted, 1);
    assert.equal(summary.resources, 1);
    assert.deepEqual(contents(db).resources.map((r) => r.id), ["ok"]);
    checkTotals(summary);
    const all = await importBadger(
      db,
      ReadableStream.from([encodeBackup(records)]),
      {
        tempDir,
      },
    );
    assert.deepEqual(all.invalidKeys, expected);
    assert.equal(all.invalidKeysTruncated, false);
  });
});

Deno.test("Badger's own !badger! keys are skipped and counted", async () => {
  await withDb(async (db, { tempDir }) => {
    const summary = await importBadger(
      db,
      ReadableStream.from([encodeBackup([[
        { key: "!badger!head", value: "h", version: 1 },
        { key: "!badger!rewrite/x", value: "r", version: 2 },
        { key: "k/1", value: "v", version: 3 },
      ]])]),
      { tempDir },
    );
    assert.equal(summary.skippedInternal, 2);
    assert.equal(summary.skippedInvalid, 0);
    assert.equal(summary.resources, 1);
    assert.deepEqual(contents(db).resources.map((r) => `${r.kind}/${r.id}`), [
      "k/1",
    ]);
    checkTotals(summary);
  });
});

Deno.test("a kind named __proto__ is counted as an own property", async () => {
  await withDb(async (db, { tempDir }) => {
    const summary = await importBadger(
      db,
      ReadableStream.from([
        encodeBackup([[{ key: "__proto__/x", value: "v", version: 1 }]]),
      ]),
      { tempDir },
    );
    assert.equal(JSON.stringify(summary.kinds), '{"__proto__":1}');
  });
});

Deno.test("an import inside an open transaction is refused", async () => {
  await withDb(async (db, { tempDir }) => {
    db.exec("BEGIN");
    await assert.rejects(
      () => importBadger(db, fixture("backup.bak"), { tempDir }),
      /cannot run inside an open transaction/,
    );
    db.exec("ROLLBACK");
  });
});

Deno.test("an import into an unmigrated database is refused before the dump is read", async () => {
  const dir = await Deno.makeTempDir();
  const db = new DatabaseSync(`${dir}/empty.sqlite`);
  try {
    await assert.rejects(
      () =>
        importBadger(db, fixture("backup.bak"), {
          tempDir: dir,
          now: BACKUP_TIME,
        }),
      (error: Error) =>
        error instanceof StoreError &&
        /nothing was imported/.test(error.message) &&
        /is the database migrated/.test(error.message),
    );
    assert.equal(db.isTransaction, false);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "empty.sqlite",
    ]);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing dump file is a StoreError naming the path", async () => {
  await withDb(async (db, { dir, tempDir }) => {
    await assert.rejects(
      () => importBadger(db, `${dir}/missing.bak`, { tempDir }),
      new RegExp(`cannot open Badger backup ${dir}/missing.bak`),
    );
  });
});

Deno.test("a generated dump imports with the counts it was generated with", async () => {
  await withDb(async (db, { dir, tempDir }) => {
    const dumpPath = `${dir}/generated.bak`;
    const stats = await writeGeneratedDump(dumpPath, {
      keys: 20_000,
      seed: 42,
      recordBytes: 16 * 1024,
    });
    const progress: number[] = [];
    const summary = await importBadger(db, dumpPath, {
      tempDir,
      onProgress: (bytes) => progress.push(bytes),
    });
    assert.equal(summary.keysSeen, stats.keys);
    assert.equal(summary.kvs, stats.kvs);
    assert.equal(summary.records, stats.records);
    assert.equal(summary.bytesRead, stats.bytes);
    assert.equal(progress.at(-1), stats.bytes);
    assert.equal(summary.resources, stats.liveResources);
    assert.equal(summary.skippedDeleted, stats.tombstones);
    assert.equal(summary.auditRecords, stats.auditRecords);
    assert.equal(summary.orphanAuditRecords, stats.orphanAuditRecords);
    assert.deepEqual(summary.kinds, stats.kinds);
    const count = (table: string) =>
      (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number })
        .n;
    assert.equal(count("resources"), stats.liveResources);
    assert.equal(count("resource_audit"), stats.auditRecords);
    assert.equal(count("resource_audit_orphans"), stats.orphanAuditRecords);
    assert.deepEqual(
      db.prepare("PRAGMA integrity_check").get()!.integrity_check,
      "ok",
    );
  });
});

Deno.test("fuzz: mutated dumps import fully or throw StoreError with the database unchanged", async () => {
  const rand = mulberry32(99);
  const base: KVInit[][] = [
    [
      { key: "k/a", value: "aaaa", version: 3 },
      { key: "k/k_audit/a/1700000000000000000", value: "s", version: 2 },
    ],
    [{ key: "k/b", value: "bbbb", version: 4, expiresAt: 4102444800 }],
    [{ key: "k/c", version: 5, meta: 1 }, { key: "z", value: "?", version: 1 }],
  ];
  const dump = encodeBackup(base);
  await withDb(async (db, { path, tempDir }) => {
    let failed = 0;
    for (let i = 0; i < 300; i++) {
      const input = dump.slice();
      for (let e = 0; e <= rand() % 3; e++) {
        input[rand() % input.length] ^= 1 << (rand() % 8);
      }
      const cut = rand() % 4 === 0 ? rand() % input.length : input.length;
      const before = await Deno.readFile(path);
      try {
        const summary = await importBadger(
          db,
          ReadableStream.from([input.slice(0, cut)]),
          {
            tempDir,
            now: NOW,
          },
        );
        checkTotals(summary);
      } catch (error) {
        if (!(error instanceof StoreError)) throw error;
        assert.deepEqual(await Deno.readFile(path), before);
        failed++;
      }
    }
    assert.ok(failed > 50, `failed ${failed}`);
    assert.deepEqual(
      db.prepare("PRAGMA integrity_check").get()!.integrity_check,
      "ok",
    );
    assert.deepEqual(db.prepare("PRAGMA foreign_key_check").all(), []);
  });
});

Deno.test("a dry run works on a read-only connection, a real import there is refused", async () => {
  await withDb(async (_db, { path, tempDir }) => {
    const readOnly = new DatabaseSync(path, { readOnly: true });
    try {
      const dry = await importBadger(readOnly, fixture("backup.bak"), {
        dryRun: true,
        now: BACKUP_TIME,
        tempDir,
      });
      assert.equal(dry.resources, 19);
      await assert.rejects(
        () =>
          importBadger(readOnly, fixture("backup.bak"), {
            now: BACKUP_TIME,
            tempDir,
          }),
        (error: Error) =>
          error instanceof StoreError &&
          /nothing was imported/.test(error.message) &&
          error.code === "read_only",
      );
      assert.equal(readOnly.isTransaction, false);
    } finally {
      readOnly.close();
    }
  });
});

Deno.test("identical snapshots under two keys in one millisecond are both kept, once", async () => {
  const dump = encodeBackup([[
    { key: "k/a", value: "x", version: 1 },
    { key: "k/k_audit/a/1700000000000000001", value: "s", version: 2 },
    { key: "k/k_audit/a/1700000000000000002", value: "s", version: 3 },
  ]]);
  await withDb(async (db, { tempDir }) => {
    const first = await importBadger(db, ReadableStream.from([dump]), {
      tempDir,
    });
    const second = await importBadger(db, ReadableStream.from([dump]), {
      tempDir,
    });
    assert.deepEqual([first.auditRecords, first.auditUnchanged], [2, 0]);
    assert.deepEqual([second.auditRecords, second.auditUnchanged], [2, 2]);
    assert.equal(contents(db).audit.length, 2);
  });
});

Deno.test("randomised dumps: counts match a model of newest-version-wins", async () => {
  const rand = mulberry32(4242);
  const keys = [
    "k1/a",
    "k1/b",
    "k2/c",
    "k2/d/e",
    "k2/k2_audit/c/1700000000000000000",
    "k2/k2_audit/x/1700000000000000000",
    "nokind",
    "!badger!head",
  ];
  const nowSec = Math.floor(NOW.getTime() / 1000);
  const versions: (number | bigint)[] = [1, 2, 3, 4, 2n ** 63n, 2n ** 64n - 1n];
  await withDb(async (db, { tempDir }) => {
    for (let round = 0; round < 150; round++) {
      const records: KVInit[][] = [];
      const newest = new Map<string, KVInit>();
      for (let r = 0; r <= rand() % 4; r++) {
        const kvs: KVInit[] = [];
        for (let i = 0; i < rand() % 8; i++) {
          const kv: KVInit = {
            key: keys[rand() % keys.length],
            value: `v${round}-${r}-${i}`,
            version: versions[rand() % versions.length],
            meta: rand() % 4 === 0 ? 1 : 0,
            expiresAt: rand() % 4 === 0
              ? nowSec - (rand() % 2) + (rand() % 2)
              : 0,
          };
          kvs.push(kv);
          const seen = newest.get(kv.key as string);
          if (!seen || BigInt(kv.version) > BigInt(seen.version)) {
            newest.set(kv.key as string, kv);
          }
        }
        records.push(kvs);
      }
      const expected = {
        resources: 0,
        auditRecords: 0,
        orphanAuditRecords: 0,
        skippedDeleted: 0,
        skippedExpired: 0,
        skippedInvalid: 0,
        skippedInternal: 0,
        kinds: {} as Record<string, number>,
      };
      const live = (kv: KVInit) =>
        kv.meta !== 1 && !(kv.expiresAt && kv.expiresAt <= nowSec);
      for (const [key, kv] of newest) {
        if (key.startsWith("!badger!")) expected.skippedInternal++;
        else if (kv.meta === 1) expected.skippedDeleted++;
        else if (!live(kv)) expected.skippedExpired++;
        else if (!key.includes("/")) expected.skippedInvalid++;
        else if (key.includes("_audit/")) {
          const target = newest.get(`k2/${key.split("/")[2]}`);
          if (target && live(target)) expected.auditRecords++;
          else expected.orphanAuditRecords++;
        } else {
          expected.resources++;
          const kind = key.slice(0, key.indexOf("/"));
          expected.kinds[kind] = (expected.kinds[kind] ?? 0) + 1;
        }
      }
      const summary = await importBadger(
        db,
        ReadableStream.from([encodeBackup(records)]),
        {
          dryRun: true,
          now: NOW,
          tempDir,
        },
      );
      const { resources, auditRecords, orphanAuditRecords, kinds } = summary;
      assert.deepEqual(
        {
          resources,
          auditRecords,
          orphanAuditRecords,
          skippedDeleted: summary.skippedDeleted,
          skippedExpired: summary.skippedExpired,
          skippedInvalid: summary.skippedInvalid,
          skippedInternal: summary.skippedInternal,
          kinds,
        },
        expected,
        `round ${round}`,
      );
      assert.equal(summary.keysSeen, newest.size);
    }
    assert.equal(contents(db).resources.length, 0);
  });
});

Deno.test("an import removes staging directories left by imports that were killed", async () => {
  await withDb(async (db, { tempDir }) => {
    // A pid far above any real one stands for a process that no longer exists.
    const abandoned = `${tempDir}/protostore-badger-4000000000-abc`;
    const live = `${tempDir}/protostore-badger-${Deno.pid}-live`;
    await Deno.mkdir(abandoned);
    await Deno.writeFile(`${abandoned}/staging.sqlite`, new Uint8Array(16));
    await Deno.mkdir(live);
    const dump = encodeBackup([[{ key: "agent/a1", value: "x", version: 1 }]]);
    await importBadger(db, ReadableStream.from([dump]), { tempDir, now: NOW });
    const left = [...Deno.readDirSync(tempDir)].map((e) => e.name);
    assert.deepEqual(left, [`protostore-badger-${Deno.pid}-live`]);
    await Deno.remove(live);
  });
});
