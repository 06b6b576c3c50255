/**
 * The child process of the reliability harness: `deno run -A reliability_worker.ts
 * <mode> ...`. Each mode does one kind of real work on a database file and reports on
 * stdout, one line per event, so the parent can wait for "ready", kill it at a random
 * moment, or check what it saw.
 *
 * Modes:
 * - `echo TEXT`: prints TEXT (for examples).
 * - `saves PATH SEED`: the crash save workload, resuming after the last committed
 *   transaction; prints `ready K`, `committed K` after each commit, `done`.
 * - `migrate PATH`: prints `ready`, runs `migrate(PATH)`, prints `result JSON`.
 * - `import PATH DUMP TMPDIR`: prints `ready`, imports the Badger dump, prints `result JSON`.
 * - `writer PATH P N SEED GOFILE`: waits for GOFILE, applies writer P's N steps.
 * - `reader PATH STOPFILE`: lists and inspects pairs until STOPFILE exists; prints
 *   `checked N` (iterations); exits 1 on a partial pair.
 * - `race-migrate PATH GOFILE`, `race-app PATH GOFILE N MIGRATE`: migrate, or open the
 *   store (with `migrate: MIGRATE`) and write N resources, after GOFILE appears;
 *   print `result JSON` with the outcome (`ok`, error name and message).
 * - `hold PATH STOPFILE`: keeps a store open and writes until STOPFILE exists.
 * - `readonly PATH`: reads a database it cannot write; prints `result JSON`.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { migrate, openStore, type Store } from "../../mod.ts";
import {
  applyWriterOp,
  HOT,
  pairHalves,
  runImport,
  runSaves,
  writerOps,
} from "./reliability_workload.ts";
import { exists } from "./fs.ts";

const [mode, ...args] = Deno.args;

function print(line: string): void {
  console.log(line);
}

function outcome(error: unknown): Record<string, unknown> {
  return {
    ok: false,
    name: (error as Error)?.name,
    message: (error as Error)?.message,
    code: (error as { code?: string })?.code,
  };
}

async function waitForFile(path: string): Promise<void> {
  while (!exists(path)) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function main(): Promise<void> {
  switch (mode) {
    case "echo":
      print(args.join(" "));
      return;
    case "saves":
      runSaves(args[0], Number(args[1]), print);
      return;
    case "migrate": {
      print("ready");
      const result = migrate(args[0]);
      print(`result ${JSON.stringify(result)}`);
      return;
    }
    case "import":
      await runImport(args[0], args[1], args[2], print);
      return;
    case "writer": {
      const [path, p, n, seed, goFile] = args;
      using store = openStore(path);
      const ops = writerOps(Number(p), Number(n), Number(seed));
      print("ready");
      await waitForFile(goFile);
      for (const op of ops) applyWriterOp(store, op);
      print("done");
      return;
    }
    case "reader": {
      const [path, stopFile] = args;
      using store = openStore(path, { readOnly: true });
      print("ready");
      let checked = 0;
      let pairsSeen = 0;
      while (!exists(stopFile) || checked === 0) {
        // A single statement is one snapshot; so is a read transaction.
        const inTransaction = checked % 2 === 1;
        const check = () => {
          const halves = store.listResources(SkillSchema, "pair");
          const byName = new Map<string, string[]>();
          for (const m of halves) {
            const seen = byName.get(m.name) ?? [];
            seen.push(`${m.tools.join()}:${m.description}`);
            byName.set(m.name, seen);
          }
          for (const [name, seen] of byName) {
            const [a, b] = seen.sort();
            if (
              seen.length !== 2 || !a.startsWith("a:") || !b.startsWith("b:") ||
              a.slice(2) !== b.slice(2)
            ) {
              throw new Error(`partial pair ${name}: ${JSON.stringify(seen)}`);
            }
            pairsSeen++;
            if (!inTransaction) continue;
            const version = Number(a.slice(2));
            for (const half of pairHalves(create(SkillSchema, { name }))) {
              const history = store.listAuditHistory(
                SkillSchema,
                "pair",
                half.id,
              );
              const current = store.getResource(SkillSchema, "pair", half.id);
              if (
                history.length !== version ||
                history[0].message.description !== current.description
              ) {
                throw new Error(
                  `pair ${half.id} at version ${version} has ${history.length} snapshots`,
                );
              }
            }
          }
          store.listAuditHistory(SkillSchema, HOT.kind, HOT.id);
        };
        if (inTransaction) store.transaction(check);
        else check();
        checked++;
      }
      print(`checked ${checked} ${pairsSeen}`);
      return;
    }
    case "race-migrate": {
      const [path, goFile] = args;
      print("ready");
      await waitForFile(goFile);
      try {
        const result = migrate(path);
        print(
          `result ${JSON.stringify({ ok: true, applied: result.applied })}`,
        );
      } catch (error) {
        print(`result ${JSON.stringify(outcome(error))}`);
      }
      return;
    }
    case "race-app": {
      const [path, goFile, n, migrateFlag] = args;
      print("ready");
      await waitForFile(goFile);
      try {
        using store = openStore(path, { migrate: migrateFlag === "true" });
        for (let i = 0; i < Number(n); i++) {
          const message = create(SkillSchema, { name: `app-${i}` });
          store.saveResource(SkillSchema, "app", `app-${i}`, message);
          store.saveAudit(SkillSchema, "app", `app-${i}`, message, {
            tag: "v1",
          });
        }
        print(`result ${JSON.stringify({ ok: true })}`);
      } catch (error) {
        print(`result ${JSON.stringify(outcome(error))}`);
      }
      return;
    }
    case "hold": {
      const [path, stopFile] = args;
      using store = openStore(path);
      print("ready");
      let i = 0;
      while (!exists(stopFile) || i === 0) {
        const message = create(SkillSchema, { name: `hold-${i}` });
        store.saveResource(SkillSchema, "hold", `h${i % 50}`, message);
        store.saveAudit(SkillSchema, "hold", `h${i % 50}`, message);
        i++;
        if (i % 20 === 0) {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      }
      print(`result ${JSON.stringify({ ok: true, writes: i })}`);
      return;
    }
    case "readonly": {
      print(`result ${JSON.stringify(readOnlyProbe(args[0]))}`);
      return;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

/** Reads through a read-only open and a default open; tries to write through both. */
function readOnlyProbe(path: string): Record<string, unknown> {
  const report: Record<string, unknown> = {};
  for (const readOnly of [true, false]) {
    const label = readOnly ? "readOnly" : "default";
    let store: Store;
    try {
      store = openStore(path, { readOnly });
    } catch (error) {
      report[label] = { open: outcome(error) };
      continue;
    }
    const entry: Record<string, unknown> = { open: { ok: true } };
    try {
      entry.names = store.listResources(SkillSchema, "agent").map((m) =>
        m.name
      );
      entry.get = store.getResource(SkillSchema, "agent", "a1").name;
      entry.history = store.listAuditHistory(SkillSchema, "agent", "a1").length;
      entry.byTag = store.getAuditByTag(SkillSchema, "agent", "a1", "v1").name;
      entry.read = { ok: true };
    } catch (error) {
      entry.read = outcome(error);
    }
    const writes: Record<string, unknown> = {};
    const attempts: Record<string, () => unknown> = {
      save: () =>
        store.saveResource(
          SkillSchema,
          "agent",
          "new",
          create(SkillSchema, { name: "new" }),
        ),
      audit: () =>
        store.saveAudit(
          SkillSchema,
          "agent",
          "a1",
          create(SkillSchema, { name: "x" }),
        ),
      delete: () => store.deleteResource("agent", "a1"),
      transaction: () =>
        store.transaction(() => store.deleteResourcesByKind("agent")),
    };
    for (const [name, attempt] of Object.entries(attempts)) {
      try {
        attempt();
        writes[name] = { ok: true };
      } catch (error) {
        writes[name] = outcome(error);
      }
    }
    entry.writes = writes;
    try {
      store.close();
      entry.close = { ok: true };
    } catch (error) {
      entry.close = outcome(error);
    }
    report[label] = entry;
  }
  return report;
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(error instanceof Error ? error.stack : String(error));
    print(`error ${(error as Error)?.name}: ${(error as Error)?.message}`);
    Deno.exit(1);
  }
}
