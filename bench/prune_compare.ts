/**
 * `pruneAudit` against a hand-written DELETE doing the same, on 1,000,000 snapshots over
 * 10,000 resources (100 each, every 25th tagged), keeping the last 10: both remove the
 * same rows and keep the tagged ones (checked), the time ratio, what a writer in another
 * process sees during each (its latency and any "database is locked"), and the file size
 * after the prune and after a compaction.
 *
 * ```
 * deno run -A bench/prune_compare.ts [--resources N] [--per-resource N] [--json]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import { buildStoreDb, copyDb, tempDir } from "./_data.ts";
import { openStore } from "../src/store/store.ts";
import { backupDatabase } from "../src/admin/backup.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    resources: { type: "string", default: "10000" },
    "per-resource": { type: "string", default: "100" },
    json: { type: "boolean" },
  },
});
const RESOURCES = Number(values.resources);
const PER = Number(values["per-resource"]);
const KEEP = 10;
const WRITER = fileURLToPath(new URL("./prune_writer.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));
const log = (text: string) => console.error(text);

// The rule as one statement: rank per resource, newest first, as listAuditHistory orders.
const HAND_DELETE = `DELETE FROM resource_audit WHERE id IN (
  SELECT id FROM (
    SELECT id, tag, row_number() OVER (
      PARTITION BY kind, resource_id ORDER BY archived_at DESC, id DESC) AS rank
    FROM resource_audit WHERE kind = 'skill')
  WHERE rank > ${KEEP} AND coalesce(tag, '') = '')`;

using dir = tempDir();
const base = `${dir.path}/base.sqlite`;
log(`building ${RESOURCES * PER} snapshots over ${RESOURCES} resources…`);
let t = performance.now();
buildStoreDb(base, { resources: RESOURCES, snapshotsPerResource: PER });
{
  const db = new DatabaseSync(base);
  db.exec("UPDATE resource_audit SET tag = iif(id % 25 = 0, 'keep', NULL)");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}
log(`built in ${((performance.now() - t) / 1000).toFixed(1)} s`);

function counts(path: string) {
  const db = new DatabaseSync(path, { readOnly: true });
  const one = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  const result = {
    snapshots: one(
      "SELECT count(*) AS n FROM resource_audit WHERE kind = 'skill'",
    ),
    tagged: one("SELECT count(*) AS n FROM resource_audit WHERE tag = 'keep'"),
    idsDigest: one(
      "SELECT sum(id * (id % 7919)) % 1000000007 AS n FROM resource_audit WHERE kind = 'skill'",
    ),
    fileBytes: Deno.statSync(path).size,
  };
  db.close();
  return result;
}

async function withWriter<T>(path: string, fn: () => T | Promise<T>) {
  const ready = `${path}.ready`;
  const stop = `${path}.stop`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, WRITER, path, ready, stop],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  while (true) {
    try {
      Deno.statSync(ready);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  await new Promise((r) => setTimeout(r, 200)); // the writer's steady state
  const start = performance.now();
  const result = await fn();
  const ms = performance.now() - start;
  Deno.writeTextFileSync(stop, "");
  const out = await child.output();
  return {
    result,
    ms,
    writer: JSON.parse(new TextDecoder().decode(out.stdout)),
  };
}

const before = counts(base);
const handPath = `${dir.path}/hand.sqlite`;
const storePath = `${dir.path}/store.sqlite`;
copyDb(base, handPath);
copyDb(base, storePath);

log("hand-written DELETE (one transaction), a writer running…");
const hand = await withWriter(handPath, () => {
  const db = new DatabaseSync(handPath, { timeout: 5000 });
  db.exec(
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 1073741824",
  );
  db.exec("BEGIN IMMEDIATE");
  const n = db.prepare(HAND_DELETE).run().changes;
  db.exec("COMMIT");
  db.close();
  return Number(n);
});
log(
  `  ${hand.result} removed in ${(hand.ms / 1000).toFixed(1)} s; writer ${
    JSON.stringify(hand.writer)
  }`,
);

log('store.pruneAudit({ kind: "skill", keepLast: 10 }), a writer running…');
const store = await withWriter(storePath, () => {
  using s = openStore(storePath);
  // Only the generated kind: the writer's own snapshots are not part of the comparison.
  return s.pruneAudit({ kind: "skill", keepLast: KEEP });
});
log(
  `  ${store.result} removed in ${(store.ms / 1000).toFixed(1)} s; writer ${
    JSON.stringify(store.writer)
  }`,
);

const afterHand = counts(handPath);
const afterStore = counts(storePath);
if (
  hand.result !== store.result || afterHand.idsDigest !== afterStore.idsDigest
) {
  throw new Error(
    `the two prunes differ: ${JSON.stringify({ afterHand, afterStore })}`,
  );
}
if (afterStore.tagged !== before.tagged) {
  throw new Error("a tagged snapshot went");
}
const expected = RESOURCES * (PER - KEEP) -
  RESOURCES * Math.floor((PER - KEEP) / 25);
log(
  `removed ${store.result} (expected about ${expected}); tagged kept: ${afterStore.tagged}`,
);

t = performance.now();
const compact = await backupDatabase(storePath, `${dir.path}/compact.sqlite`, {
  vacuum: true,
});
const compactMs = performance.now() - t;
const result = {
  snapshots: before.snapshots,
  resources: RESOURCES,
  keepLast: KEEP,
  removed: store.result,
  taggedKept: afterStore.tagged,
  handDeleteMs: Math.round(hand.ms),
  pruneAuditMs: Math.round(store.ms),
  ratio: Number((store.ms / hand.ms).toFixed(2)),
  writerDuringHandDelete: hand.writer,
  writerDuringPrune: store.writer,
  fileBytesBefore: before.fileBytes,
  fileBytesAfterPrune: afterStore.fileBytes,
  fileBytesCompactCopy: compact.bytes,
  compactCopyMs: Math.round(compactMs),
};
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
  const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
  console.log(
    `| snapshots | removed | hand DELETE | pruneAudit | ratio | writer during DELETE (max, errors) | writer during prune (max, errors) | file before → after prune → compact copy |
| --- | --- | --- | --- | --- | --- | --- | --- |
| ${before.snapshots} | ${store.result} | ${(hand.ms / 1000).toFixed(1)} s | ${
      (store.ms / 1000).toFixed(1)
    } s | ${result.ratio}x | ${
      hand.writer.maxMs.toFixed(0)
    } ms, ${hand.writer.errors} | ${
      store.writer.maxMs.toFixed(0)
    } ms, ${store.writer.errors} | ${mb(before.fileBytes)} → ${
      mb(afterStore.fileBytes)
    } → ${mb(compact.bytes)} (${(compactMs / 1000).toFixed(1)} s) |`,
  );
}
