/**
 * Online backup: a copy taken while 4 processes write opens, passes integrity_check and
 * holds the database of one moment (each writer's rows a prefix of what it wrote);
 * compacted copies after a prune are smaller; nothing is overwritten without force;
 * the copy is owner-only and never half-written.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { backupDatabase, openStore, StoreError } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { exists } from "../helpers/fs.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const CHILD = fileURLToPath(
  new URL("../helpers/concurrent_child.ts", import.meta.url),
);
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

function seed(path: string, resources: number, snapshots: number): void {
  using store = openStore(path);
  store.transaction(() => {
    for (let r = 0; r < resources; r++) {
      const msg = create(SkillSchema, {
        name: `seed-${r}`,
        description: "x".repeat(400),
      });
      store.saveResource(SkillSchema, "seed", `s${r}`, msg);
      for (let i = 0; i < snapshots; i++) {
        store.saveAudit(
          SkillSchema,
          "seed",
          `s${r}`,
          msg,
          i === 0 ? { tag: "v1" } : {},
        );
      }
    }
  });
}

/** Ids of `kind` rows whose id starts with `writer-`, as numbers, sorted. */
function writerRows(db: DatabaseSync, table: string, writer: string): number[] {
  const column = table === "resources" ? "id" : "resource_id";
  const rows = db.prepare(
    `SELECT ${column} AS id FROM ${table} WHERE kind = 'skill' AND ${column} LIKE ?`,
  ).all(`${writer}-%`) as { id: string }[];
  return rows.map((r) => Number(r.id.slice(writer.length + 1))).sort((a, b) =>
    a - b
  );
}

Deno.test("backup while 4 processes write: the copy opens, passes integrity_check, and is the database of one moment", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    seed(path, 300, 3);
    const sync = `${dir}/sync`;
    Deno.mkdirSync(sync);
    const writers = ["w0", "w1", "w2", "w3"];
    const children = writers.map((name) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          CONFIG,
          CHILD,
          "write",
          path,
          sync,
          name,
          "400",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn()
    );
    while (!writers.every((w) => exists(`${sync}/ready-${w}`))) {
      await new Promise((r) => setTimeout(r, 10));
    }
    Deno.writeTextFileSync(`${sync}/go`, "");
    // Wait until every writer has committed something, then copy one page per step so
    // that the copy spans many of their commits.
    const probe = new DatabaseSync(path, { readOnly: true, timeout: 5000 });
    while (
      writers.some((w) => writerRows(probe, "resources", w).length === 0)
    ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    probe.close();
    let steps = 0;
    const result = await backupDatabase(path, `${dir}/copy.sqlite`, {
      pagesPerStep: 1,
      onProgress: () => steps++,
    });
    const outputs = await Promise.all(children.map((c) => c.output()));
    for (const out of outputs) {
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    }
    assert.equal(result.integrity, "ok");
    assert(steps > 10, `the copy took ${steps} steps`);
    assert.equal(Deno.statSync(`${dir}/copy.sqlite`).mode! & 0o777, 0o600);

    const copy = new DatabaseSync(`${dir}/copy.sqlite`, { readOnly: true });
    const check = copy.prepare("PRAGMA integrity_check").all() as {
      integrity_check: string;
    }[];
    assert.deepEqual(check.map((r) => r.integrity_check), ["ok"]);
    const seeded = copy.prepare(
      "SELECT count(*) AS n FROM resource_audit WHERE kind = 'seed'",
    ).get() as { n: number };
    assert.equal(seeded.n, 900);
    for (const w of writers) {
      // Each writer commits resource i, then snapshot i, then resource i+1: a copy of
      // one moment holds resources 0..k-1 and snapshots 0..k-1 or 0..k-2.
      const resources = writerRows(copy, "resources", w);
      const snapshots = writerRows(copy, "resource_audit", w);
      assert.deepEqual(
        resources,
        resources.map((_, i) => i),
        `${w}: resources a prefix`,
      );
      assert.deepEqual(
        snapshots,
        snapshots.map((_, i) => i),
        `${w}: snapshots a prefix`,
      );
      assert(
        snapshots.length === resources.length ||
          snapshots.length === resources.length - 1,
        `${w}: ${resources.length} resources, ${snapshots.length} snapshots`,
      );
    }
    // The copy is the source at one revision R: exactly the resources created at or
    // before R (the writers only create), and every snapshot archived before R.
    const revisionOf = (db: DatabaseSync) =>
      (db.prepare(
        `SELECT max(coalesce((SELECT max(revision) FROM resource_changes), 0),
                    coalesce((SELECT compacted_through FROM change_log WHERE id = 1), 0)) AS r`,
      ).get() as { r: number }).r;
    const r = revisionOf(copy);
    const source = new DatabaseSync(path, { readOnly: true });
    const keys = (db: DatabaseSync, where: string) =>
      (db.prepare(
        `SELECT kind || '/' || id AS k FROM resources WHERE ${where} ORDER BY 1`,
      )
        .all(r) as { k: string }[]).map((row) => row.k);
    assert.deepEqual(
      keys(copy, "?1 = ?1"),
      keys(source, "create_revision <= ?1"),
    );
    const audits = (db: DatabaseSync, where: string) =>
      (db.prepare(`SELECT id FROM resource_audit WHERE ${where} ORDER BY id`)
        .all(r) as {
          id: number;
        }[]).map((row) => row.id);
    const copied = new Set(audits(copy, "?1 = ?1"));
    for (const id of audits(source, "revision < ?1")) {
      assert(copied.has(id), `snapshot ${id}`);
    }
    const upToR = new Set(audits(source, "revision <= ?1"));
    for (const id of copied) {
      assert(upToR.has(id), `snapshot ${id} is from after revision ${r}`);
    }
    source.close();
    copy.close();
  });
});

Deno.test("backup refuses an existing file without force, replaces it with force, and leaves no partial file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    seed(path, 5, 1);
    const to = `${dir}/copy.sqlite`;
    Deno.writeTextFileSync(to, "precious");
    await assert.rejects(backupDatabase(path, to), StoreError);
    assert.equal(Deno.readTextFileSync(to), "precious");
    // A stale WAL beside the old file must not be replayed into the new one.
    Deno.writeTextFileSync(`${to}-wal`, "stale");
    await backupDatabase(path, to, { force: true });
    assert(!exists(`${to}-wal`));
    using copy = openStore(to, { readOnly: true });
    assert.equal(copy.listResources(SkillSchema, "seed").length, 5);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.includes("partial")
      ),
      [],
    );
    await assert.rejects(
      backupDatabase(`${dir}/missing.sqlite`, `${dir}/x.sqlite`),
      StoreError,
    );
    assert(!exists(`${dir}/x.sqlite`));
  });
});

Deno.test("a big prune leaves the file its size; a compacted backup (VACUUM INTO) is smaller and holds the same rows", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/db.sqlite`;
    seed(path, 100, 20);
    {
      using store = openStore(path);
      assert.equal(store.pruneAudit({ keepLast: 1 }), 100 * 18);
    }
    const plain = await backupDatabase(path, `${dir}/plain.sqlite`);
    const compact = await backupDatabase(path, `${dir}/compact.sqlite`, {
      vacuum: true,
    });
    assert.equal(
      Deno.statSync(path).size,
      plain.bytes,
      "the prune freed pages but kept them",
    );
    assert(
      compact.bytes < plain.bytes / 3,
      `${compact.bytes} vs ${plain.bytes}`,
    );
    assert.equal(Deno.statSync(`${dir}/compact.sqlite`).mode! & 0o777, 0o600);
    using a = openStore(`${dir}/plain.sqlite`, { readOnly: true });
    using b = openStore(`${dir}/compact.sqlite`, { readOnly: true });
    assert.deepEqual(
      b.listAuditHistory(SkillSchema, "seed", "s7"),
      a.listAuditHistory(SkillSchema, "seed", "s7"),
    );
  });
});
