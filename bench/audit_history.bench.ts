/**
 * `deno bench` suite for `auditHistory` (the CLI's `audit-history`): one resource's
 * snapshots decoded with the descriptors recorded in the database, with and without
 * field diffs, against `Store.listAuditHistory` with the generated schema. 10,000
 * resources × 10 snapshots; under 1 s of setup.
 *
 * @module
 */
import { auditHistory } from "../src/admin/history.ts";
import { openStore } from "../src/store/store.ts";
import {
  buildStoreDb,
  KIND,
  resourceId,
  SkillSchema,
  tempDir,
} from "./_data.ts";
import { prng } from "../tests/helpers/prng.ts";

const N = 10_000;
const dir = tempDir();
const path = `${dir.path}/history.sqlite`;
buildStoreDb(path, { resources: N, snapshotsPerResource: 10 });
const store = openStore(path, { readOnly: true });
globalThis.addEventListener("unload", () => {
  store.close();
  dir[Symbol.dispose]();
});
const rng = prng(9);
const ids = Array.from(
  { length: 1024 },
  () => resourceId(Math.floor(rng() * N)),
);
let k = 0;
const next = () => ids[k = (k + 1) & 1023];

Deno.bench({
  name: "Store.listAuditHistory (10 snapshots, generated schema)",
  group: "audit-history",
  baseline: true,
  fn() {
    store.listAuditHistory(SkillSchema, KIND, next());
  },
});
Deno.bench({
  name: "auditHistory (open, 10 snapshots decoded from recorded descriptors)",
  group: "audit-history",
  fn() {
    using history = auditHistory(path, KIND, next());
    for (const _ of history.entries()) { /* decode every entry */ }
  },
});
Deno.bench({
  name: "auditHistory with diff",
  group: "audit-history",
  fn() {
    using history = auditHistory(path, KIND, next(), { diff: true });
    for (const _ of history.entries()) { /* decode and diff every entry */ }
  },
});
