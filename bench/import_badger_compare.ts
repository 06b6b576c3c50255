/**
 * import-badger against a raw bulk insert of the same rows.
 *
 * Generates a seeded Badger dump (default 1,000,000 keys: ~100-byte values, 5% legacy
 * audit keys, 3% tombstones, 10% with an older version), then, in fresh child processes
 * (so each peak RSS is its own), alternately:
 * - raw: one transaction of single-row prepared `INSERT INTO resources` for every key of
 *   the dump (same kind/id/value bytes, same order; rows prepared before the clock starts);
 * - import: `importBadgerBackup(dbPath, dump)` into a migrated database.
 * Prints medians, the rate ratio (target >= 0.6) and the import's peak RSS (target <= 300 MB).
 *
 * deno run -A bench/import_badger_compare.ts [--keys N] [--rounds N] [--seed N] [--json]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { enableWal, openConnection } from "../src/sqlite/connection.ts";
import { importBadgerBackup } from "../src/badger/import.ts";
import { readBadgerBackupFile } from "../src/badger/records.ts";
import { createMigratedDb } from "../tests/helpers/schema.ts";
import { writeGeneratedDump } from "../tests/helpers/badger_writer.ts";

interface ChildResult {
  mode: "raw" | "import";
  ms: number;
  rows: number;
  peakRssMb: number;
  dbBytes: number;
}

function peakRssMb(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Deno.memoryUsage().rss / 1048576;
}

function openTarget(path: string): DatabaseSync {
  createMigratedDb(path).close();
  const db = openConnection(path);
  enableWal(db);
  return db;
}

async function child(
  mode: string,
  dump: string,
  dbPath: string,
): Promise<ChildResult> {
  if (mode === "raw") {
    // Rows of the dump (first = newest version of each key), decoded before timing.
    const kinds: string[] = [];
    const ids: string[] = [];
    const values: Uint8Array[] = [];
    const decoder = new TextDecoder();
    let previous = "";
    for await (const record of readBadgerBackupFile(dump)) {
      for (const kv of record.kvs) {
        const key = decoder.decode(kv.key);
        if (key === previous) continue;
        previous = key;
        const slash = key.indexOf("/");
        kinds.push(key.slice(0, slash));
        ids.push(key.slice(slash + 1));
        values.push(kv.value.slice());
      }
    }
    const db = openTarget(dbPath);
    const insert = db.prepare(
      "INSERT INTO resources (kind, id, data, updated_at) VALUES (?, ?, ?, ?)",
    );
    const now = new Date().toISOString();
    const started = performance.now();
    db.exec("BEGIN IMMEDIATE");
    for (let i = 0; i < kinds.length; i++) {
      insert.run(kinds[i], ids[i], values[i], now);
    }
    db.exec("COMMIT");
    const ms = performance.now() - started;
    db.close();
    return {
      mode: "raw",
      ms,
      rows: kinds.length,
      peakRssMb: peakRssMb(),
      dbBytes: Deno.statSync(dbPath).size,
    };
  }
  openTarget(dbPath).close();
  const started = performance.now();
  const summary = await importBadgerBackup(dbPath, dump, {
    tempDir: join(dbPath, ".."),
  });
  const ms = performance.now() - started;
  return {
    mode: "import",
    ms,
    rows: summary.keysSeen,
    peakRssMb: peakRssMb(),
    dbBytes: Deno.statSync(dbPath).size,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function runChild(
  mode: string,
  dump: string,
  dir: string,
  round: number,
) {
  const dbPath = join(dir, `${mode}-${round}.sqlite`);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      mode,
      "--dump",
      dump,
      "--db",
      dbPath,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${mode} child failed`);
  for (const suffix of ["", "-wal", "-shm"]) {
    await Deno.remove(dbPath + suffix).catch(() => {});
  }
  return JSON.parse(new TextDecoder().decode(output.stdout)) as ChildResult;
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      keys: { type: "string", default: "1000000" },
      rounds: { type: "string", default: "3" },
      seed: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      child: { type: "string" },
      dump: { type: "string" },
      db: { type: "string" },
    },
  });

  if (args.child) {
    console.log(JSON.stringify(await child(args.child, args.dump!, args.db!)));
  } else {
    const dir = await Deno.makeTempDir({ prefix: "protostore-bench-" });
    try {
      const dump = join(dir, "dump.bak");
      const genStart = performance.now();
      const stats = await writeGeneratedDump(dump, {
        keys: Number(args.keys),
        seed: Number(args.seed),
      });
      const genMs = performance.now() - genStart;
      const raw: ChildResult[] = [];
      const imported: ChildResult[] = [];
      for (let round = 0; round < Number(args.rounds); round++) {
        raw.push(await runChild("raw", dump, dir, round));
        imported.push(await runChild("import", dump, dir, round));
      }
      const rawMs = median(raw.map((r) => r.ms));
      const importMs = median(imported.map((r) => r.ms));
      const rawRate = raw[0].rows / (rawMs / 1000);
      const importRate = imported[0].rows / (importMs / 1000);
      const result = {
        keys: stats.keys,
        kvs: stats.kvs,
        dumpMb: +(stats.bytes / 1048576).toFixed(1),
        generateMs: Math.round(genMs),
        rounds: raw.length,
        rawMs: Math.round(rawMs),
        rawRowsPerSec: Math.round(rawRate),
        rawPeakRssMb: Math.round(median(raw.map((r) => r.peakRssMb))),
        importMs: Math.round(importMs),
        importKeysPerSec: Math.round(importRate),
        importPeakRssMb: Math.round(
          Math.max(...imported.map((r) => r.peakRssMb)),
        ),
        rateRatio: +(importRate / rawRate).toFixed(3),
        targets: { rateRatio: ">= 0.6", importPeakRssMb: "<= 300" },
        allRawMs: raw.map((r) => Math.round(r.ms)),
        allImportMs: imported.map((r) => Math.round(r.ms)),
      };
      if (args.json) {
        console.log(JSON.stringify(result, null, 2));
      } else {
        console.log(
          `dump: ${result.keys} keys, ${result.kvs} KVs, ${result.dumpMb} MB ` +
            `(generated in ${result.generateMs} ms)`,
        );
        console.log(
          `raw insert  : ${result.rawMs} ms  ${result.rawRowsPerSec} rows/s  ` +
            `peak RSS ${result.rawPeakRssMb} MB  (rounds ${
              result.allRawMs.join(", ")
            })`,
        );
        console.log(
          `import      : ${result.importMs} ms  ${result.importKeysPerSec} keys/s  ` +
            `peak RSS ${result.importPeakRssMb} MB  (rounds ${
              result.allImportMs.join(", ")
            })`,
        );
        console.log(
          `ratio       : ${result.rateRatio}x raw rate (target >= 0.6); ` +
            `peak RSS ${result.importPeakRssMb} MB (target <= 300)`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
}

if (import.meta.main) await main();
