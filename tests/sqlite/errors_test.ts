import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import { openStore, StoreError } from "../../mod.ts";
import { openConnection } from "../../src/sqlite/connection.ts";
import { sqliteErrorCode, sqliteFailure } from "../../src/sqlite/errors.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const skill = create(SkillSchema, { name: "lint" });

/** What `fn` threw, which must be a StoreError. */
function storeErrorOf(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof StoreError, `not a StoreError: ${error}`);
    return error;
  }
  assert.fail("expected a StoreError");
}

/** What `fn` threw, unwrapped. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected a throw");
}

Deno.test("a write while another connection holds the write lock is code busy", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    using holder = openStore(path);
    using waiter = openStore(path, { busyTimeoutMs: 0 });
    holder.transaction(() => {
      holder.saveResource(SkillSchema, "skill", "a", skill);
      const error = storeErrorOf(() =>
        waiter.saveResource(SkillSchema, "skill", "b", skill)
      );
      assert.equal(error.code, "busy");
      assert.ok(error.cause instanceof Error);
    });
    assert.equal(waiter.listResources(SkillSchema, "skill").length, 1);
  });
});

Deno.test("BEGIN IMMEDIATE refused by a lock, through exec(), is code busy", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const a = openConnection(path);
    const b = openConnection(path, { busyTimeoutMs: 0 });
    try {
      a.exec("BEGIN IMMEDIATE");
      // exec() errors carry no errcode in Deno: the fixed SQLite text is classified.
      const error = thrown(() => b.exec("BEGIN IMMEDIATE"));
      assert.equal((error as { errcode?: number }).errcode, undefined);
      assert.equal(sqliteErrorCode(error), "busy");
      a.exec("ROLLBACK");
    } finally {
      a.close();
      b.close();
    }
  });
});

Deno.test("a write to a store opened read-only is code read_only", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    openStore(path).close();
    using store = openStore(path, { readOnly: true });
    const error = storeErrorOf(() =>
      store.saveResource(SkillSchema, "skill", "a", skill)
    );
    assert.equal(error.code, "read_only");
  });
});

Deno.test("SQLite refusing a write on a read-only connection is code read_only", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const writer = openConnection(path);
    writer.exec("CREATE TABLE t (x)");
    writer.close();
    const db = openConnection(path, { readOnly: true });
    try {
      const byStatement = thrown(() =>
        db.prepare("INSERT INTO t VALUES (1)").run()
      );
      assert.equal(sqliteFailure("insert", byStatement).code, "read_only");
      const byExec = thrown(() => db.exec("INSERT INTO t VALUES (1)"));
      assert.equal(sqliteFailure("insert", byExec).code, "read_only");
    } finally {
      db.close();
    }
  });
});

Deno.test("a file that is not a database is code corrupt, and is left as it was", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const garbage = new TextEncoder().encode("not a database ".repeat(300));
    Deno.writeFileSync(path, garbage);
    const error = storeErrorOf(() => openStore(path));
    assert.equal(error.code, "corrupt");
    assert.deepEqual(Deno.readFileSync(path), garbage);
  });
});

Deno.test("a damaged page of a real database is code corrupt", async () => {
  await withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(10000))");
    db.close();
    // Page 2 is the table's root: overwrite its b-tree header with nonsense.
    const bytes = Deno.readFileSync(path);
    bytes.fill(0xff, 4096, 4096 + 64);
    Deno.writeFileSync(path, bytes);
    const damaged = openConnection(path, { readOnly: true });
    try {
      const error = thrown(() => damaged.prepare("SELECT * FROM t").all());
      assert.equal(sqliteErrorCode(error), "corrupt");
      assert.equal(sqliteFailure("read t", error).code, "corrupt");
    } finally {
      damaged.close();
    }
  });
});

Deno.test("a value over SQLite's length limit is code too_big", async () => {
  await withTempDir((dir) => {
    const db = openConnection(`${dir}/db.sqlite`);
    try {
      const error = thrown(() =>
        db.prepare("SELECT zeroblob(2000000000)").get()
      );
      const wrapped = sqliteFailure("make a blob", error);
      assert.equal(wrapped.code, "too_big");
      assert.equal(wrapped.cause, error);
    } finally {
      db.close();
    }
  });
});

Deno.test("a constraint refusing a write is code constraint, by statement and by exec()", async () => {
  await withTempDir((dir) => {
    const db = openConnection(`${dir}/db.sqlite`);
    try {
      db.exec("CREATE TABLE t (x UNIQUE NOT NULL); INSERT INTO t VALUES (1)");
      const byStatement = thrown(() =>
        db.prepare("INSERT INTO t VALUES (?)").run(1)
      );
      // The extended code (SQLITE_CONSTRAINT_UNIQUE, 2067) maps by its primary code.
      assert.equal((byStatement as { errcode?: number }).errcode, 2067);
      assert.equal(sqliteFailure("insert", byStatement).code, "constraint");
      const byExec = thrown(() => db.exec("INSERT INTO t VALUES (NULL)"));
      assert.equal(sqliteFailure("insert", byExec).code, "constraint");
    } finally {
      db.close();
    }
  });
});

Deno.test("a full database is code disk_full", async () => {
  await withTempDir((dir) => {
    const db = openConnection(`${dir}/db.sqlite`);
    try {
      db.exec("CREATE TABLE t (x)");
      const pages = (db.prepare("PRAGMA page_count").get() as {
        page_count: number;
      }).page_count;
      db.exec(`PRAGMA max_page_count = ${pages}`);
      const error = thrown(() =>
        db.prepare("INSERT INTO t VALUES (randomblob(100000))").run()
      );
      assert.equal(sqliteErrorCode(error), "disk_full");
    } finally {
      db.close();
    }
  });
});

Deno.test("a database file that cannot be opened is code cant_open", async () => {
  await withTempDir((dir) => {
    // The constructor's errors carry no errcode: the fixed text is classified.
    const error = thrown(() => new DatabaseSync(`${dir}/missing/db.sqlite`));
    assert.equal(sqliteErrorCode(error), "cant_open");
  });
});

Deno.test("errors that are not SQLite failures of a known class get no code", () => {
  const db = new DatabaseSync(":memory:");
  try {
    const syntax = thrown(() => db.prepare("SELEC 1"));
    assert.equal(sqliteErrorCode(syntax), undefined);
    assert.equal(sqliteFailure("query", syntax).code, undefined);
  } finally {
    db.close();
  }
  // SQLite's wording in an error that SQLite did not throw is not classified.
  assert.equal(sqliteErrorCode(new Error("database is locked")), undefined);
  assert.equal(sqliteErrorCode("database is locked"), undefined);
  const already = new StoreError("explained", { code: "busy" });
  assert.equal(sqliteFailure("again", already), already);
});
