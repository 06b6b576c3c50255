/**
 * A child process for the concurrency tests of `tests/migrate_test.ts`: several of these
 * work on one database file at once. Prints one JSON line with its result on stdout.
 *
 * ```
 * deno run -A tests/helpers/concurrent_child.ts <mode> <db> <syncDir> <name> [count]
 * ```
 * Modes:
 * - `migrate`: wait for the start signal, then `migrate(db)`; prints the applied names.
 * - `write`: wait for the start signal, then save `count` resources and snapshots of kind
 *   `skill` with ids `<name>-<i>`, one write transaction each; prints the count.
 * - `hold`: save resource `<name>` inside a transaction and keep the write lock until
 *   the file `<syncDir>/attempting` appears (then a little longer), signalling
 *   `<syncDir>/locked` once it holds the lock.
 * - `wait-and-write`: wait for `<syncDir>/locked`, signal `<syncDir>/attempting`, then
 *   save resource `<name>` (it must wait for the holder's lock).
 * - `hold-raw`: take the write lock of `<db>` with plain node:sqlite (`BEGIN IMMEDIATE`,
 *   writing nothing), signal `<syncDir>/locked`, keep it for `count` ms, then commit.
 *
 * The start signal: each child creates `<syncDir>/ready-<name>` and then waits for
 * `<syncDir>/go`, so the parent can release all of them at the same moment.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { DatabaseSync } from "node:sqlite";
import { migrate, openStore } from "../../mod.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { exists } from "./fs.ts";

const [mode, db, syncDir, name, countText] = Deno.args;

/** Blocks the thread for `ms` (the holder must not return to the event loop). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function waitFor(path: string): void {
  const deadline = Date.now() + 20_000;
  while (!exists(path)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}`);
    sleepSync(2);
  }
}

function startSignal(): void {
  Deno.writeTextFileSync(`${syncDir}/ready-${name}`, "");
  waitFor(`${syncDir}/go`);
}

const skill = (label: string) => create(SkillSchema, { name: label });

switch (mode) {
  case "migrate": {
    startSignal();
    const result = migrate(db);
    console.log(JSON.stringify({ applied: result.applied.map((a) => a.name) }));
    break;
  }
  case "write": {
    const count = Number(countText);
    startSignal();
    using store = openStore(db);
    for (let i = 0; i < count; i++) {
      store.saveResource(SkillSchema, "skill", `${name}-${i}`, skill(name));
      store.saveAudit(SkillSchema, "skill", `${name}-${i}`, skill(name));
    }
    console.log(JSON.stringify({ written: count }));
    break;
  }
  case "hold": {
    using store = openStore(db);
    store.transaction(() => {
      store.saveResource(SkillSchema, "skill", name, skill(name));
      Deno.writeTextFileSync(`${syncDir}/locked`, "");
      waitFor(`${syncDir}/attempting`);
      // The other process is now blocked on our lock; keep it waiting a little.
      sleepSync(300);
    });
    console.log(JSON.stringify({ written: 1 }));
    break;
  }
  case "wait-and-write": {
    waitFor(`${syncDir}/locked`);
    using store = openStore(db);
    Deno.writeTextFileSync(`${syncDir}/attempting`, "");
    store.saveResource(SkillSchema, "skill", name, skill(name));
    console.log(JSON.stringify({ written: 1 }));
    break;
  }
  case "hold-raw": {
    const conn = new DatabaseSync(db);
    conn.exec("BEGIN IMMEDIATE");
    Deno.writeTextFileSync(`${syncDir}/locked`, "");
    sleepSync(Number(countText));
    conn.exec("COMMIT");
    conn.close();
    console.log(JSON.stringify({ held: true }));
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
