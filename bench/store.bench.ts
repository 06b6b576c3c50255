/**
 * `deno bench` suites for the Store's operations. Each group puts the Store call next to
 * the same SQL through raw `node:sqlite` prepared statements on the same connection with
 * the bytes already encoded (the baseline), so `deno bench` prints the ratio. The
 * side-by-side overhead split (SQLite / protobuf / store) is `bench/compare.ts`.
 *
 * Data: 10,000 resources with 10 audit snapshots each (100,000 audit rows), a separate
 * database of 100,000 resources for listing; ~2 s of setup.
 *
 * @module
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { openStore, Store } from "../src/store/store.ts";
import { SchemaIds } from "../src/store/schemas.ts";
import {
  auditHash,
  auditRow,
  auditTag,
  buildStoreDb,
  encodeAll,
  isoNow,
  KIND,
  makeSkills,
  rawStatements,
  resourceId,
  SkillSchema,
  tempDir,
} from "./_data.ts";
import { prng } from "../tests/helpers/prng.ts";

const N = 10_000;
const SNAPSHOTS = 10;
const LIST_ROWS = 100_000;
const DELETE_SNAPSHOTS = 1_000;

const dir = tempDir();
const path = `${dir.path}/store.sqlite`;
buildStoreDb(path, { resources: N, snapshotsPerResource: SNAPSHOTS });
const store = openStore(path);
const db = Store.connectionOf(store);
const raw = rawStatements(db);
db.exec("BEGIN IMMEDIATE");
const schemaId = new SchemaIds(db).idOf(SkillSchema);
db.exec("COMMIT");

const listPath = `${dir.path}/list.sqlite`;
buildStoreDb(listPath, { resources: LIST_ROWS, snapshotsPerResource: 0 });
const listStore = openStore(listPath);
const listRaw = rawStatements(Store.connectionOf(listStore));
globalThis.addEventListener("unload", () => {
  store.close();
  listStore.close();
  dir[Symbol.dispose]();
});

const messages = makeSkills(N, 42);
const bytes = encodeAll(messages);
const ids = Array.from({ length: N }, (_, i) => resourceId(i));
const rng = prng(3);
const random = Array.from({ length: 4096 }, () => Math.floor(rng() * N));
const randomJ = Array.from(
  { length: 4096 },
  () => Math.floor(rng() * SNAPSHOTS),
);
let k = 0;
const next = () => (k = (k + 1) & 4095);

// saveAudit appends to resources outside the 10-snapshot histories read below.
const TARGETS = 100;
const targets = Array.from({ length: TARGETS }, (_, i) => `target-${i}`);
for (const id of targets) {
  store.saveResource(SkillSchema, "target", id, messages[0]);
}

// ------------------------------------------------------------------ saveResource

Deno.bench({
  name: "raw upsert (autocommit)",
  group: "saveResource",
  baseline: true,
  fn() {
    const i = random[next()];
    raw.upsert.run(KIND, ids[i], bytes[i], isoNow(), schemaId, 1);
  },
});
Deno.bench({
  name: "Store.saveResource (autocommit)",
  group: "saveResource",
  fn() {
    const i = random[next()];
    store.saveResource(SkillSchema, KIND, ids[i], messages[i]);
  },
});

const TX = 100;
Deno.bench({
  name: `raw upsert ×${TX} in BEGIN IMMEDIATE … COMMIT`,
  group: "saveResource in transaction",
  baseline: true,
  fn() {
    const iso = isoNow();
    db.exec("BEGIN IMMEDIATE");
    for (let t = 0; t < TX; t++) {
      const i = random[next()];
      raw.upsert.run(KIND, ids[i], bytes[i], iso, schemaId, 1);
    }
    db.exec("COMMIT");
  },
});
Deno.bench({
  name: `Store.saveResource ×${TX} in Store.transaction`,
  group: "saveResource in transaction",
  fn() {
    store.transaction(() => {
      for (let t = 0; t < TX; t++) {
        const i = random[next()];
        store.saveResource(SkillSchema, KIND, ids[i], messages[i]);
      }
    });
  },
});

// ------------------------------------------------------------------ reads

Deno.bench({
  name: "raw get",
  group: "getResource",
  baseline: true,
  fn() {
    raw.get.get(KIND, ids[random[next()]]);
  },
});
Deno.bench({
  name: "raw get + fromBinary",
  group: "getResource",
  fn() {
    const row = raw.get.get(KIND, ids[random[next()]]) as unknown as [
      Uint8Array,
    ];
    fromBinary(SkillSchema, row[0]);
  },
});
Deno.bench({
  name: "Store.getResource",
  group: "getResource",
  fn() {
    store.getResource(SkillSchema, KIND, ids[random[next()]]);
  },
});

Deno.bench({
  name: `raw list (${LIST_ROWS} rows)`,
  group: "listResources",
  baseline: true,
  n: 10,
  warmup: 2,
  fn() {
    listRaw.list.all(KIND);
  },
});
Deno.bench({
  name: `raw list + fromBinary (${LIST_ROWS} rows)`,
  group: "listResources",
  n: 10,
  warmup: 2,
  fn() {
    const rows = listRaw.list.all(KIND) as unknown as [Uint8Array][];
    const out = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      out[i] = fromBinary(SkillSchema, rows[i][0]);
    }
  },
});
Deno.bench({
  name: `Store.listResources (${LIST_ROWS} rows)`,
  group: "listResources",
  n: 10,
  warmup: 2,
  fn() {
    listStore.listResources(SkillSchema, KIND);
  },
});

// ------------------------------------------------------------------ audit

let audits = 0;
Deno.bench({
  name: "raw insert audit (autocommit)",
  group: "saveAudit",
  baseline: true,
  fn() {
    const n = audits++;
    raw.insertAudit.all(
      "target",
      targets[n % TARGETS],
      bytes[n % N],
      isoNow(),
      `bench-${n}`,
      "bench",
      schemaId,
    );
  },
});
Deno.bench({
  name: "Store.saveAudit",
  group: "saveAudit",
  fn() {
    const n = audits++;
    store.saveAudit(
      SkillSchema,
      "target",
      targets[n % TARGETS],
      messages[n % N],
      {
        versionHash: `bench-${n}`,
        tag: "bench",
      },
    );
  },
});

const hashKeys = random.map((r, i) => auditHash(auditRow(N, r, randomJ[i])));
const tagKeys = randomJ.map(auditTag);
Deno.bench({
  name: "raw audit by hash",
  group: "getAuditByHash",
  baseline: true,
  fn() {
    const i = next();
    raw.auditByHash.get(KIND, ids[random[i]], hashKeys[i]);
  },
});
Deno.bench({
  name: "Store.getAuditByHash",
  group: "getAuditByHash",
  fn() {
    const i = next();
    store.getAuditByHash(SkillSchema, KIND, ids[random[i]], hashKeys[i]);
  },
});
Deno.bench({
  name: "raw audit by tag",
  group: "getAuditByTag",
  baseline: true,
  fn() {
    const i = next();
    raw.auditByTag.get(KIND, ids[random[i]], tagKeys[i]);
  },
});
Deno.bench({
  name: "Store.getAuditByTag",
  group: "getAuditByTag",
  fn() {
    const i = next();
    store.getAuditByTag(SkillSchema, KIND, ids[random[i]], tagKeys[i]);
  },
});
Deno.bench({
  name: `raw history (${SNAPSHOTS} snapshots)`,
  group: "listAuditHistory",
  baseline: true,
  fn() {
    raw.history.all(KIND, ids[random[next()]]);
  },
});
Deno.bench({
  name: `Store.listAuditHistory (${SNAPSHOTS} snapshots)`,
  group: "listAuditHistory",
  fn() {
    store.listAuditHistory(SkillSchema, KIND, ids[random[next()]]);
  },
});

// ------------------------------------------------------------------ delete

const insertSnapshot = db.prepare(
  `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag, schema_id)
   VALUES (?, ?, ?, ?, ?, NULL, ?)`,
);
let victims = 0;
/** A resource with DELETE_SNAPSHOTS snapshots, written untimed. */
function victim(): string {
  const id = `victim-${victims++}`;
  const iso = new Date().toISOString();
  db.exec("BEGIN IMMEDIATE");
  raw.upsert.run(KIND, id, bytes[0], iso, schemaId, 1);
  for (let j = 0; j < DELETE_SNAPSHOTS; j++) {
    insertSnapshot.run(KIND, id, bytes[j % N], iso, `h${j}`, schemaId);
  }
  db.exec("COMMIT");
  return id;
}
Deno.bench({
  name: `raw delete (cascade of ${DELETE_SNAPSHOTS} snapshots)`,
  group: "deleteResource",
  baseline: true,
  n: 50,
  warmup: 5,
  fn(b) {
    const id = victim();
    b.start();
    raw.delete.run(KIND, id);
    b.end();
  },
});
Deno.bench({
  name: `Store.deleteResource (cascade of ${DELETE_SNAPSHOTS} snapshots)`,
  group: "deleteResource",
  n: 50,
  warmup: 5,
  fn(b) {
    const id = victim();
    b.start();
    store.deleteResource(KIND, id);
    b.end();
  },
});

// ------------------------------------------------------------------ protobuf alone

Deno.bench({
  name: "toBinary (one Skill)",
  group: "protobuf",
  fn() {
    toBinary(SkillSchema, messages[random[next()]]);
  },
});
Deno.bench({
  name: "fromBinary (one Skill)",
  group: "protobuf",
  fn() {
    fromBinary(SkillSchema, bytes[random[next()]]);
  },
});
