/**
 * Concurrency across processes on one database file: writers that must all succeed
 * (SQLite's busy waits, no SQLITE_BUSY surfaced) with exact final data, a reader that
 * must never see half a transaction, and migrations racing each other and applications.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import { openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import {
  assertSameLines,
  cases,
  checkDatabase,
  Child,
  type ChildResult,
  copyDatabase,
  dumpDatabase,
  since,
} from "../helpers/reliability_common.ts";
import { writeSeededGoDb } from "../helpers/go_store.ts";
import { MIGRATIONS } from "../../src/migrate/files.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import {
  expectedAfterWriters,
  hexText,
  HOT,
} from "../helpers/reliability_workload.ts";

const WORKER = "reliability_worker.ts";
const WRITERS = 4;
const STEPS = 2_000;

/** Starts children, waits until all are ready, then releases them together. */
async function startTogether(
  goFile: string,
  argsList: string[][],
): Promise<Child[]> {
  const children = argsList.map((args) => new Child(WORKER, args));
  for (const child of children) {
    const ready = await child.waitFor((l) => l === "ready");
    if (ready === undefined) {
      const result = await child.finish();
      throw new Error(`child never got ready: ${result.stderr}`);
    }
  }
  Deno.writeTextFileSync(goFile, "go");
  return children;
}

function resultOf(result: ChildResult): Record<string, unknown> {
  const line = result.lines.find((l) => l.startsWith("result "));
  assert.ok(
    line,
    `child printed no result (exit ${result.code}): ${result.stderr}`,
  );
  return JSON.parse(line.slice("result ".length));
}

function assertClean(path: string): void {
  const check = checkDatabase(path);
  assert.equal(check.integrity, "ok");
  assert.equal(check.foreignKeyViolations, 0);
  assert.deepEqual(check.schemaMismatch, []);
  assert.equal(check.version, MIGRATIONS.at(-1)!.version);
}

Deno.test("4 processes × 2,000 mixed saves, audits and deletes on one file all succeed with exact final data, while a reader never sees half a transaction", async () => {
  const rounds = cases(2, 10);
  for (let round = 0; round < rounds; round++) {
    const seed = 900 + round;
    await withTempDir(async (dir) => {
      const path = `${dir}/shared.sqlite`;
      {
        using store = openStore(path);
        store.saveResource(
          SkillSchema,
          HOT.kind,
          HOT.id,
          create(SkillSchema, { name: "hot" }),
        );
      }
      const started = performance.now();
      const stopFile = `${dir}/stop`;
      const reader = new Child(WORKER, ["reader", path, stopFile]);
      await reader.waitFor((l) => l === "ready");
      const writers = await startTogether(
        `${dir}/go`,
        Array.from(
          { length: WRITERS },
          (_, p) => [
            "writer",
            path,
            String(p),
            String(STEPS),
            String(seed),
            `${dir}/go`,
          ],
        ),
      );
      const results = await Promise.all(writers.map((w) => w.finish()));
      Deno.writeTextFileSync(stopFile, "stop");
      const readerResult = await reader.finish();
      for (const [p, result] of results.entries()) {
        assert.ok(
          result.success && result.lines.includes("done"),
          `writer ${p} failed: ${result.lines.at(-1)} ${result.stderr}`,
        );
      }
      assert.ok(
        readerResult.success,
        `the reader failed: ${
          readerResult.lines.at(-1)
        } ${readerResult.stderr}`,
      );
      const checked = readerResult.lines.find((l) => l.startsWith("checked "));
      assert.ok(checked);

      assertClean(path);
      const expected = expectedAfterWriters(WRITERS, STEPS, seed);
      const hotPrefix = `A  ${hexText(HOT.kind)} ${hexText(HOT.id)} `;
      const actual = dumpDatabase(path, { auditsByResource: true })
        .filter((l) => !l.startsWith(hotPrefix));
      assertSameLines(actual, expected.lines, "final data");
      const db = new DatabaseSync(path, { readOnly: true });
      const hot = Object.fromEntries(
        (db.prepare(
          "SELECT tag, count(*) AS n FROM resource_audit WHERE kind = ? AND resource_id = ? GROUP BY tag",
        ).all(HOT.kind, HOT.id) as { tag: string; n: number }[]).map((
          r,
        ) => [r.tag, r.n]),
      );
      db.close();
      assert.deepEqual(hot, expected.hot, "snapshots of the shared resource");
      console.log(
        `round ${round}: ${WRITERS}×${STEPS} steps, reader ${
          checked.slice(8)
        } (iterations, complete pairs seen), ${since(started)} ms`,
      );
    });
  }
});

/**
 * Writes a Go v2 file of 2,000 resources from `seed` at `go`, and returns the dump
 * (timestamps and audit ids included) of a copy migrated on its own, for comparison.
 */
function goFileAndMigratedDump(
  dir: string,
  go: string,
  seed: number,
): string[] {
  writeSeededGoDb(go, seed, {
    resources: 2_000,
    auditsPerResource: 2,
    payload: 200,
  });
  const reference = `${dir}/reference.sqlite`;
  copyDatabase(go, reference);
  openStore(reference).close();
  return dumpDatabase(reference, { timestamps: true, auditIds: true });
}

Deno.test("two migrate processes at once apply each file exactly once and both succeed", async () => {
  const rounds = cases(20, 200);
  await withTempDir(async (dir) => {
    const go = `${dir}/go.sqlite`;
    const migrated = goFileAndMigratedDump(dir, go, 5);
    const outcomes: Record<string, number> = {};
    for (let round = 0; round < rounds; round++) {
      const fromGo = round % 2 === 1;
      const path = `${dir}/race-${round}.sqlite`;
      if (fromGo) copyDatabase(go, path);
      const goFile = `${dir}/go-${round}`;
      const children = await startTogether(goFile, [
        ["race-migrate", path, goFile],
        ["race-migrate", path, goFile],
      ]);
      const results = (await Promise.all(children.map((c) => c.finish())))
        .map(resultOf);
      for (const r of results) {
        assert.equal(r.ok, true, `a migrate failed: ${JSON.stringify(r)}`);
      }
      const applied = results.flatMap((r) =>
        (r.applied as { name: string }[]).map((a) => a.name)
      );
      const expected = MIGRATIONS.slice(fromGo ? 2 : 0).map((m) => m.name);
      assert.deepEqual(applied.toSorted(), expected, "each file once");
      const split = results.map((r) => (r.applied as unknown[]).length).join(
        "+",
      );
      outcomes[split] = (outcomes[split] ?? 0) + 1;
      assertClean(path);
      if (fromGo) {
        assertSameLines(
          dumpDatabase(path, { timestamps: true, auditIds: true }),
          migrated,
          `round ${round}: data after racing migrations`,
        );
      }
    }
    console.log(
      `${rounds} races; files applied by first+second process: ${
        JSON.stringify(outcomes)
      }`,
    );
  });
});

Deno.test("migrate racing an application that opens the store: both succeed and nothing is lost", async () => {
  const rounds = cases(12, 100);
  await withTempDir(async (dir) => {
    const go = `${dir}/go.sqlite`;
    const migrated = goFileAndMigratedDump(dir, go, 6);
    const appKind = hexText("app");
    const outcomes: Record<string, number> = {};
    for (let round = 0; round < rounds; round++) {
      // Half the applications open with migrate: false, as a deployed app might.
      const appMigrates = round % 2 === 0;
      const path = `${dir}/race-${round}.sqlite`;
      copyDatabase(go, path);
      const goFile = `${dir}/go-${round}`;
      const children = await startTogether(goFile, [
        ["race-migrate", path, goFile],
        ["race-app", path, goFile, "100", String(appMigrates)],
      ]);
      const [migration, app] = (await Promise.all(
        children.map((c) => c.finish()),
      )).map(resultOf);
      assert.equal(
        migration.ok,
        true,
        `migrate failed: ${JSON.stringify(migration)}`,
      );
      if (appMigrates || app.ok) {
        assert.equal(app.ok, true, `the app failed: ${JSON.stringify(app)}`);
      } else {
        // Opened before migrate committed: told clearly to run migrate.
        assert.equal(app.name, "MigrationError", JSON.stringify(app));
        assert.match(String(app.message), /pending.*migrate/s);
      }
      const key = `app migrate=${appMigrates}: ${app.ok ? "ok" : app.name}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      assertClean(path);
      const dump = dumpDatabase(path, { timestamps: true, auditIds: true });
      const appLines = dump.filter((l) =>
        l.split(" ")[l[0] === "R" ? 1 : 2] === appKind
      );
      assert.equal(appLines.length, app.ok ? 200 : 0, "the app's writes");
      assertSameLines(
        dump.filter((l) => !appLines.includes(l)),
        migrated,
        `round ${round}: migrated data`,
      );
    }
    console.log(`${rounds} races: ${JSON.stringify(outcomes)}`);
  });
});

Deno.test("migrate while an application holds the store open and writes finds nothing to do and disturbs nothing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/held.sqlite`;
    openStore(path).close();
    const stopFile = `${dir}/stop`;
    const holder = new Child(WORKER, ["hold", path, stopFile]);
    await holder.waitFor((l) => l === "ready");
    const runs = cases(5, 25);
    for (let i = 0; i < runs; i++) {
      const goFile = `${dir}/go-${i}`;
      const [migration] = await startTogether(goFile, [[
        "race-migrate",
        path,
        goFile,
      ]]);
      const result = resultOf(await migration.finish());
      assert.deepEqual(result, { ok: true, applied: [] });
    }
    Deno.writeTextFileSync(stopFile, "stop");
    const held = resultOf(await holder.finish());
    assert.equal(held.ok, true, JSON.stringify(held));
    assertClean(path);
    console.log(`${runs} migrate runs next to ${held.writes} writes`);
  });
});
