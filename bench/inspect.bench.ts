/**
 * `deno bench` suite for `inspectDatabase` (the CLI's `inspect`) on 1,000,000 resources
 * in 5 kinds, against the raw `GROUP BY kind` aggregate it cannot beat. About 5 s of
 * setup.
 *
 * @module
 */
import { inspectDatabase } from "../src/admin/inspect.ts";
import { openConnection } from "../src/sqlite/connection.ts";
import { buildKindsDb, tempDir } from "./_data.ts";

const RESOURCES = 1_000_000;
const dir = tempDir();
const path = `${dir.path}/inspect.sqlite`;
buildKindsDb(path, RESOURCES, 5);
const db = openConnection(path, { readOnly: true });
globalThis.addEventListener("unload", () => {
  db.close();
  dir[Symbol.dispose]();
});
const groupBy = db.prepare(
  "SELECT kind, count(*) AS n FROM resources GROUP BY kind",
);
const groupBySizes = db.prepare(
  `SELECT kind, count(*) AS n, sum(length(data)) AS bytes, max(updated_at) AS last
   FROM resources GROUP BY kind`,
);

Deno.bench({
  name: `raw SELECT kind, count(*) … GROUP BY kind (${RESOURCES} rows)`,
  group: "inspect",
  baseline: true,
  n: 10,
  warmup: 2,
  fn() {
    groupBy.all();
  },
});
Deno.bench({
  name: "raw GROUP BY kind with sum(length(data)), max(updated_at)",
  group: "inspect",
  n: 10,
  warmup: 2,
  fn() {
    groupBySizes.all();
  },
});
Deno.bench({
  name: `inspectDatabase (${RESOURCES} resources)`,
  group: "inspect",
  n: 10,
  warmup: 2,
  fn() {
    inspectDatabase(path);
  },
});
