/**
 * Faults and limits: a full disk (simulated with `PRAGMA max_page_count`), very large
 * values, very long ids, many kinds, and databases that cannot be written (read-only
 * file, read-only directory). The failing operation must throw a clear StoreError, the
 * database must stay consistent, and work must continue once the cause is gone.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import {
  migrate,
  MigrationError,
  openStore,
  Store,
  StoreError,
} from "../../mod.ts";
import { openConnection } from "../../src/sqlite/connection.ts";
import { prepareDatabase } from "../../src/migrate/runner.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import {
  assertSameLines,
  cases,
  checkDatabase,
  Child,
  copyDatabase,
  dumpConnection,
  dumpDatabase,
  fileDigest,
} from "../helpers/reliability_common.ts";
import { writeSeededGoDb } from "../helpers/go_store.ts";
import { Rng } from "../helpers/prng.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { Model, type Op } from "../helpers/reliability_workload.ts";

function skill(rng: Rng, name: string, maxPayload: number) {
  return create(SkillSchema, {
    name,
    payload: rng.bytes(rng.int(maxPayload)),
  });
}

function integrity(db: DatabaseSync): void {
  assert.equal(
    (db.prepare("PRAGMA integrity_check").get() as { integrity_check: string })
      .integrity_check,
    "ok",
  );
  assert.equal(db.prepare("PRAGMA foreign_key_check").all().length, 0);
}

Deno.test("a full disk fails the write with a clear StoreError, keeps the database consistent, and work continues after space is freed", async () => {
  const rounds = cases(6, 60);
  for (let round = 0; round < rounds; round++) {
    await withTempDir((dir) => {
      const rng = new Rng(31 + round);
      const path = `${dir}/full.sqlite`;
      const model = new Model();
      const store = openStore(path);
      const db = Store.connectionOf(store);
      const apply = (ops: Op[], inTransaction: boolean) => {
        const run = () => {
          for (const op of ops) {
            if (op.t === "save") {
              store.saveResource(SkillSchema, op.kind, op.id, op.message);
            } else if (op.t === "audit") {
              store.saveAudit(SkillSchema, op.kind, op.id, op.message, {
                tag: op.tag,
              });
            }
          }
        };
        if (inTransaction) store.transaction(run);
        else run();
        for (const op of ops) model.apply(op);
      };
      const randomOps = (step: number): Op[] => {
        const ops: Op[] = [];
        const n = 1 + rng.int(6);
        for (let i = 0; i < n; i++) {
          const id = `r${rng.int(40)}`;
          ops.push({
            t: "save",
            kind: "k",
            id,
            message: skill(rng, `${step}.${i}`, 12_000),
          });
          if (rng.chance(0.5)) {
            ops.push({
              t: "audit",
              kind: "k",
              id,
              message: skill(rng, `${step}.${i}a`, 12_000),
              tag: "t",
            });
          }
        }
        return ops;
      };
      for (let step = 0; step < 10; step++) apply(randomOps(step), true);

      const pages = (db.prepare("PRAGMA page_count").get() as {
        page_count: number;
      }).page_count;
      db.exec(`PRAGMA max_page_count = ${pages + 2 + rng.int(30)}`);
      let failures = 0;
      for (let step = 10; failures < 3 && step < 10_000; step++) {
        const ops = randomOps(step);
        // Single writes (one op) or transactions of several.
        const inTransaction = ops.length > 1;
        try {
          apply(inTransaction ? ops : ops.slice(0, 1), inTransaction);
        } catch (error) {
          assert.ok(error instanceof StoreError, `not a StoreError: ${error}`);
          assert.equal(error.code, "disk_full", error.message);
          failures++;
        }
      }
      assert.equal(failures, 3);
      integrity(db);
      assertSameLines(dumpConnection(db), model.lines(), "data while full");

      db.exec("PRAGMA max_page_count = 1073741823");
      for (let step = 20_000; step < 20_010; step++) {
        apply(randomOps(step), true);
      }
      integrity(db);
      store.close();
      assertSameLines(
        dumpDatabase(path),
        model.lines(),
        "data after reopening",
      );
      const check = checkDatabase(path);
      assert.equal(check.integrity, "ok");
    });
  }
});

Deno.test("a full disk during migrate rolls the migration back with a MigrationError; after space is freed it completes", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/go.sqlite`;
    writeSeededGoDb(path, 3, {
      resources: 1_500,
      auditsPerResource: 2,
      payload: 300,
    });
    const before = dumpDatabase(path, { timestamps: true, auditIds: true });
    const reference = `${dir}/reference.sqlite`;
    copyDatabase(path, reference);
    migrate(reference);
    const after = dumpDatabase(reference, { timestamps: true, auditIds: true });

    const db = openConnection(path);
    const pages = (db.prepare("PRAGMA page_count").get() as {
      page_count: number;
    }).page_count;
    db.exec(`PRAGMA max_page_count = ${pages + 10}`);
    assert.throws(
      () => prepareDatabase(db),
      (error: Error) =>
        error instanceof MigrationError &&
        error.file === "0003_cascade_ms_types.sql" &&
        error.code === "disk_full",
    );
    integrity(db);
    db.close();
    const check = checkDatabase(path);
    assert.equal(check.version, 2);
    assert.deepEqual(check.schemaMismatch, []);
    assertSameLines(
      dumpDatabase(path, { timestamps: true, auditIds: true }),
      before,
      "after the failed migration",
    );
    migrate(path);
    assertSameLines(
      dumpDatabase(path, { timestamps: true, auditIds: true }),
      after,
      "after migrating with space",
    );
  });
});

Deno.test("a 64 MB message is saved, read back, archived and listed intact", async () => {
  await withTempDir((dir) => {
    using store = openStore(`${dir}/big.sqlite`);
    const payload = new Uint8Array(64 * 1024 * 1024);
    const chunk = new Rng(64).bytes(1024 * 1024);
    for (let at = 0; at < payload.length; at += chunk.length) {
      payload.set(chunk, at);
      chunk[at % chunk.length] ^= 0xff; // no two megabytes alike
    }
    const message = create(SkillSchema, { name: "big", payload });
    store.saveResource(SkillSchema, "blob", "b1", message);
    const same = (bytes: Uint8Array) =>
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(
        Buffer.from(payload.buffer),
      );
    assert.ok(same(store.getResource(SkillSchema, "blob", "b1").payload));
    store.saveAudit(SkillSchema, "blob", "b1", message, {
      versionHash: "h",
      tag: "v1",
    });
    const history = store.listAuditHistory(SkillSchema, "blob", "b1");
    assert.equal(history.length, 1);
    assert.ok(same(history[0].message.payload));
    assert.ok(
      same(store.getAuditByTag(SkillSchema, "blob", "b1", "v1").payload),
    );
    assert.equal(store.listResources(SkillSchema, "blob").length, 1);
    assert.equal(store.deleteResource("blob", "b1"), true);
    assert.equal(store.listAuditHistory(SkillSchema, "blob", "b1").length, 0);
  });
});

Deno.test("100,000-character kinds, ids, hashes and tags work everywhere", async () => {
  await withTempDir((dir) => {
    using store = openStore(`${dir}/long.sqlite`);
    for (const unit of ["i", "é", "🦕", "'\u0000%_"]) {
      const long = unit.repeat(Math.ceil(100_000 / unit.length)).slice(
        0,
        100_000,
      );
      const kind = `k${long}`;
      const id = `${long}/x`;
      const message = create(SkillSchema, { name: long });
      store.saveResource(SkillSchema, kind, id, message);
      store.saveResource(SkillSchema, kind, `${long}/y`, message);
      assert.ok(store.getResource(SkillSchema, kind, id).name === long, "get");
      assert.equal(store.listResources(SkillSchema, kind).length, 2);
      store.saveAudit(SkillSchema, kind, id, message, {
        versionHash: long,
        tag: long,
      });
      assert.ok(
        store.getAuditByHash(SkillSchema, kind, id, long).name === long,
        "by hash",
      );
      assert.ok(
        store.getAuditByTag(SkillSchema, kind, id, long).name === long,
        "by tag",
      );
      const [entry] = store.listAuditHistory(SkillSchema, kind, id);
      // Not assert.equal: a failure would print 100,000 characters twice.
      assert.ok(
        entry.versionHash === long,
        `history hash of ${JSON.stringify(unit)}`,
      );
      assert.ok(entry.tag === long, `history tag of ${JSON.stringify(unit)}`);
      assert.equal(
        store.deleteResourcesByIdPrefix(kind, long.slice(0, 50_000)),
        2,
      );
      assert.equal(store.listResources(SkillSchema, kind).length, 0);
    }
  });
});

Deno.test("10,000 kinds are stored, listed and deleted one by one", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/kinds.sqlite`;
    using store = openStore(path);
    const kinds = Array.from({ length: 10_000 }, (_, i) => `kind-${i}`);
    store.transaction(() => {
      for (const kind of kinds) {
        store.saveResource(
          SkillSchema,
          kind,
          "x",
          create(SkillSchema, { name: kind }),
        );
        store.saveAudit(
          SkillSchema,
          kind,
          "x",
          create(SkillSchema, { name: kind }),
        );
      }
    });
    for (const kind of kinds) {
      const [only] = store.listResources(SkillSchema, kind);
      assert.equal(only.name, kind);
    }
    const db = Store.connectionOf(store);
    assert.deepEqual(
      {
        ...db.prepare("SELECT count(DISTINCT kind) AS n FROM resources").get(),
      },
      { n: 10_000 },
    );
    for (const kind of kinds) {
      assert.equal(store.deleteResourcesByKind(kind), 1);
    }
    assert.deepEqual(
      {
        ...db.prepare(
          "SELECT (SELECT count(*) FROM resources) AS r, (SELECT count(*) FROM resource_audit) AS a",
        ).get(),
      },
      { r: 0, a: 0 },
    );
  });
});

/**
 * Root ignores file permissions; the probe then runs without the capabilities that let
 * it (`setpriv`), so a 0444 file really is read-only to it.
 */
function readOnlyWrapper(): string[] | null {
  if (Deno.uid() !== 0) return [];
  try {
    const ok = new Deno.Command("setpriv", {
      args: ["--bounding-set=-dac_override,-dac_read_search,-fowner", "true"],
    }).outputSync().success;
    return ok
      ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
      : null;
  } catch {
    return null;
  }
}
const WRAPPER = readOnlyWrapper();

/** A database with resource agent/a1 (tagged snapshot v1) and agent/a2. */
function seedDatabase(path: string, journal: "wal" | "delete"): void {
  {
    using store = openStore(path);
    for (const id of ["a1", "a2"]) {
      const message = create(SkillSchema, { name: id });
      store.saveResource(SkillSchema, "agent", id, message);
      store.saveAudit(SkillSchema, "agent", id, message, { tag: "v1" });
    }
  }
  if (journal === "delete") {
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = DELETE");
    db.close();
  }
}

/**
 * `<dir>/ro/db.sqlite` (the directory created, still writable) with `-wal` and `-shm`:
 * a copy of a seeded WAL database taken while a connection held the un-checkpointed
 * frames of a save of agent/a3, as a crash would leave it.
 */
function copyWithPendingWal(dir: string): string {
  Deno.mkdirSync(`${dir}/ro`);
  const source = `${dir}/live.sqlite`;
  seedDatabase(source, "wal");
  const store = openStore(source);
  store.saveResource(
    SkillSchema,
    "agent",
    "a3",
    create(SkillSchema, { name: "a3" }),
  );
  const path = `${dir}/ro/db.sqlite`;
  copyDatabase(source, path);
  store.close();
  return path;
}

interface Layout {
  name: string;
  make: (dir: string) => string;
  /** Files in the directory that opening may create. */
  mayCreate?: string[];
}

const LAYOUTS: Layout[] = [
  {
    name: "read-only file (WAL database at rest)",
    make: (dir) => {
      const path = `${dir}/db.sqlite`;
      seedDatabase(path, "wal");
      Deno.chmodSync(path, 0o444);
      return path;
    },
    mayCreate: ["db.sqlite-wal", "db.sqlite-shm"],
  },
  {
    name: "read-only file (rollback-journal database)",
    make: (dir) => {
      const path = `${dir}/db.sqlite`;
      seedDatabase(path, "delete");
      Deno.chmodSync(path, 0o444);
      return path;
    },
  },
  {
    name: "read-only directory (WAL database at rest, no -wal/-shm)",
    make: (dir) => {
      Deno.mkdirSync(`${dir}/ro`);
      const path = `${dir}/ro/db.sqlite`;
      seedDatabase(path, "wal");
      Deno.chmodSync(`${dir}/ro`, 0o555);
      return path;
    },
  },
  {
    name: "read-only directory and file with -wal/-shm left by a crash",
    make: (dir) => {
      const path = copyWithPendingWal(dir);
      for (const f of ["", "-wal", "-shm"]) Deno.chmodSync(path + f, 0o444);
      Deno.chmodSync(`${dir}/ro`, 0o555);
      return path;
    },
  },
  {
    name: "read-only directory (rollback-journal database)",
    make: (dir) => {
      Deno.mkdirSync(`${dir}/ro`);
      const path = `${dir}/ro/db.sqlite`;
      seedDatabase(path, "delete");
      Deno.chmodSync(`${dir}/ro`, 0o555);
      return path;
    },
  },
];

for (const layout of LAYOUTS) {
  Deno.test({
    name:
      `${layout.name}: reads work, writes fail with a clear StoreError, nothing changes`,
    ignore: WRAPPER === null,
    fn: async () => {
      await withTempDir(async (dir) => {
        const path = layout.make(dir);
        const digest = fileDigest(path);
        const parent = path.slice(0, path.lastIndexOf("/"));
        const files = () =>
          [...Deno.readDirSync(parent)].map((e) => e.name).filter((n) =>
            !(layout.mayCreate ?? []).includes(n)
          ).sort();
        const before = files();
        let result;
        try {
          const child = new Child("reliability_worker.ts", ["readonly", path], {
            wrapper: WRAPPER!,
          });
          result = await child.finish();
        } finally {
          Deno.chmodSync(parent, 0o755);
        }
        const line = result.lines.find((l) => l.startsWith("result "));
        assert.ok(line, `probe failed: ${result.stderr}`);
        const report = JSON.parse(line.slice(7));
        const expectedNames = layout.name.includes("crash")
          ? ["a1", "a2", "a3"]
          : ["a1", "a2"];
        for (const mode of ["readOnly", "default"]) {
          const entry = report[mode];
          assert.deepEqual(entry.open, { ok: true }, `${mode} open`);
          assert.deepEqual(entry.read, { ok: true }, `${mode} reads`);
          assert.deepEqual(entry.names, expectedNames);
          assert.equal(entry.get, "a1");
          assert.equal(entry.history, 1);
          assert.equal(entry.byTag, "a1");
          for (const [op, outcome] of Object.entries(entry.writes)) {
            const o = outcome as {
              ok: boolean;
              name: string;
              message: string;
              code?: string;
            };
            assert.equal(o.ok, false, `${mode} ${op} must fail`);
            assert.equal(o.name, "StoreError", `${mode} ${op}: ${o.message}`);
            assert.equal(o.code, "read_only", `${mode} ${op}: ${o.message}`);
          }
          assert.deepEqual(entry.close, { ok: true });
        }
        assert.equal(
          fileDigest(path),
          digest,
          "the database file is unchanged",
        );
        assert.deepEqual(files(), before, "no files created or removed");
      });
    },
  });
}

Deno.test({
  name:
    "a read-only directory holding a WAL with un-checkpointed changes but no -shm: opening fails with a StoreError that names the -wal file and says what to do",
  ignore: WRAPPER === null,
  fn: async () => {
    await withTempDir(async (dir) => {
      const path = copyWithPendingWal(dir);
      Deno.removeSync(`${path}-shm`);
      const digest = fileDigest(path);
      Deno.chmodSync(`${dir}/ro`, 0o555);
      let result;
      try {
        result = await new Child("reliability_worker.ts", ["readonly", path], {
          wrapper: WRAPPER!,
        }).finish();
      } finally {
        Deno.chmodSync(`${dir}/ro`, 0o755);
      }
      const line = result.lines.find((l) => l.startsWith("result "));
      assert.ok(line, `probe failed: ${result.stderr}`);
      const report = JSON.parse(line.slice(7));
      for (const mode of ["readOnly", "default"]) {
        const open = report[mode].open;
        assert.equal(open.ok, false, `${mode}: reading would miss the WAL`);
        assert.equal(open.name, "StoreError");
        assert.match(
          open.message,
          /db\.sqlite-wal that were never checkpointed/,
        );
        assert.match(open.message, /directory is writable|writable directory/);
      }
      assert.equal(fileDigest(path), digest);
      assert.deepEqual(
        [...Deno.readDirSync(`${dir}/ro`)].map((e) => e.name).sort(),
        ["db.sqlite", "db.sqlite-wal"],
      );
    });
  },
});
