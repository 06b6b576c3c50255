/**
 * Deterministic workloads of the reliability harness and an in-memory model of what
 * they leave in the database. The child scripts apply the operations through the Store;
 * the tests replay them on the {@linkcode Model} and compare the database with it.
 *
 * @module
 */
import { create, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import {
  importBadgerBackup,
  NotFoundError,
  openStore,
  type Store,
} from "../../mod.ts";
import { Rng } from "./prng.ts";

/** A Skill message as the workloads write it. */
export type Skill = MessageShape<typeof SkillSchema>;

/** One Store call. */
export type Op =
  | { t: "save"; kind: string; id: string; message: Skill }
  | {
    t: "audit";
    kind: string;
    id: string;
    message: Skill;
    versionHash?: string;
    tag?: string;
  }
  | { t: "delete"; kind: string; id: string }
  | { t: "deleteAudits"; kind: string; id: string };

/** Size of the crash-test save workload. */
export interface SaveWorkload {
  /** Transactions. */
  batches: number;
  /** Store calls per transaction (plus the progress marker). */
  opsPerBatch: number;
  /** Distinct ids per kind. */
  ids: number;
  /** Maximum payload bytes per message. */
  payload: number;
}

/** The crash-test save workload: about a second of real work. */
export const CRASH_SAVES: SaveWorkload = {
  batches: 150,
  opsPerBatch: 40,
  ids: 150,
  payload: 3000,
};

/** Kind and id of the marker each transaction writes: the number of that transaction. */
export const PROGRESS = { kind: "_progress", id: "batch" } as const;

const KINDS = ["agent", "skill", "tool"];

/**
 * The Store calls of transaction `k` of a seeded save workload: saves, audits of
 * resources saved earlier in the same transaction, deletes (cascading their history),
 * history deletes, and last the progress marker.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchOps, CRASH_SAVES } from "./reliability_workload.ts";
 *
 * assert(batchOps(1, 0, CRASH_SAVES).length === CRASH_SAVES.opsPerBatch + 1);
 * ```
 */
export function batchOps(seed: number, k: number, w: SaveWorkload): Op[] {
  const rng = new Rng((seed * 1_000_003 + k * 7919) >>> 0);
  const ops: Op[] = [];
  const saved: [string, string][] = [];
  for (let j = 0; j < w.opsPerBatch; j++) {
    const kind = rng.pick(KINDS);
    const id = `r${rng.int(w.ids)}`;
    const r = rng.next();
    if (r < 0.5 || (r < 0.85 && saved.length === 0)) {
      ops.push({ t: "save", kind, id, message: skill(rng, `${k}.${j}`, w) });
      saved.push([kind, id]);
    } else if (r < 0.85) {
      const [k2, id2] = rng.pick(saved);
      ops.push({
        t: "audit",
        kind: k2,
        id: id2,
        message: skill(rng, `${k}.${j}`, w),
        versionHash: rng.chance(0.7) ? `sha256:${rng.u32().toString(16)}` : "",
        tag: rng.chance(0.4) ? `v${rng.int(5)}` : undefined,
      });
    } else if (r < 0.95) {
      ops.push({ t: "delete", kind, id });
      for (let i = saved.length - 1; i >= 0; i--) {
        if (saved[i][0] === kind && saved[i][1] === id) saved.splice(i, 1);
      }
    } else {
      ops.push({ t: "deleteAudits", kind, id });
    }
  }
  ops.push({
    t: "save",
    kind: PROGRESS.kind,
    id: PROGRESS.id,
    message: create(SkillSchema, { name: String(k) }),
  });
  return ops;
}

function skill(rng: Rng, name: string, w: SaveWorkload): Skill {
  return create(SkillSchema, {
    name,
    description: `written by step ${name}`,
    tools: rng.chance(0.5) ? ["lint", "fmt"] : [],
    labels: rng.chance(0.3) ? { team: `t${rng.int(9)}` } : {},
    visibility: rng.int(3),
    limits: { maxTokens: rng.int(100_000), timeoutMs: BigInt(rng.u32()) },
    payload: rng.bytes(rng.int(w.payload)),
  });
}

/**
 * Applies one operation through the Store.
 *
 * @example
 * ```ts
 * import { applyOp, batchOps, CRASH_SAVES } from "./reliability_workload.ts";
 * import { openStore } from "../../mod.ts";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * store.transaction(() => batchOps(1, 0, CRASH_SAVES).forEach((op) => applyOp(store, op)));
 * ```
 */
export function applyOp(store: Store, op: Op): void {
  switch (op.t) {
    case "save":
      store.saveResource(SkillSchema, op.kind, op.id, op.message);
      break;
    case "audit":
      store.saveAudit(SkillSchema, op.kind, op.id, op.message, {
        versionHash: op.versionHash,
        tag: op.tag,
      });
      break;
    case "delete":
      store.deleteResource(op.kind, op.id);
      break;
    case "deleteAudits":
      store.deleteAuditByResourceId(op.kind, op.id);
      break;
  }
}

interface ModelAudit {
  kind: string;
  id: string;
  data: string;
  versionHash?: string;
  tag?: string;
}

/**
 * What the database should hold after a sequence of operations, as the canonical lines
 * of `dumpConnection` (no timestamps, no audit ids).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchOps, CRASH_SAVES, Model } from "./reliability_workload.ts";
 *
 * const model = new Model();
 * batchOps(1, 0, CRASH_SAVES).forEach((op) => model.apply(op));
 * assert(model.lines().length > 0);
 * ```
 */
export class Model {
  // Data is kept as hex: the lines are rebuilt after every transaction of a workload.
  #resources = new Map<string, { kind: string; id: string; data: string }>();
  #audits: ModelAudit[] = [];

  /** Applies one operation. */
  apply(op: Op): void {
    const key = `${op.kind}\u0000${op.id}`;
    switch (op.t) {
      case "save":
        this.#resources.set(key, {
          kind: op.kind,
          id: op.id,
          data: hex(toBinary(SkillSchema, op.message)),
        });
        break;
      case "audit":
        if (!this.#resources.has(key)) {
          throw new Error(`model: audit of missing ${key}`);
        }
        this.#audits.push({
          kind: op.kind,
          id: op.id,
          data: hex(toBinary(SkillSchema, op.message)),
          versionHash: op.versionHash || undefined,
          tag: op.tag || undefined,
        });
        break;
      case "delete":
        if (this.#resources.delete(key)) this.#dropAudits(op.kind, op.id);
        break;
      case "deleteAudits":
        this.#dropAudits(op.kind, op.id);
        break;
    }
  }

  /** Whether (kind, id) exists. */
  has(kind: string, id: string): boolean {
    return this.#resources.has(`${kind}\u0000${id}`);
  }

  #dropAudits(kind: string, id: string): void {
    this.#audits = this.#audits.filter((a) => a.kind !== kind || a.id !== id);
  }

  /**
   * The canonical lines; audits in save order, or grouped by resource (save order
   * within each) with `byResource`.
   */
  lines(byResource = false): string[] {
    const resources = [...this.#resources.values()].sort((a, b) =>
      compareBytes(a.kind, b.kind) || compareBytes(a.id, b.id)
    );
    const lines = resources.map((r) =>
      `R ${hexText(r.kind)} ${hexText(r.id)} ${r.data} `
    );
    const audits = byResource
      ? this.#audits.map((a, i) => ({ a, i })).sort((x, y) =>
        compareBytes(x.a.kind, y.a.kind) || compareBytes(x.a.id, y.a.id) ||
        x.i - y.i
      ).map((x) => x.a)
      : this.#audits;
    for (const a of audits) {
      lines.push(
        auditLine("A", "", a.kind, a.id, a.data, "", a.versionHash, a.tag),
      );
    }
    return lines;
  }
}

/**
 * One audit line of the canonical dump, as `dumpConnection` prints it; `data` as bytes
 * or upper-case hex.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { auditLine } from "./reliability_workload.ts";
 *
 * assert(auditLine("A", "", "k", "i", new Uint8Array([1]), "", "h", undefined) === "A  6B 69 01  'h' NULL");
 * ```
 */
export function auditLine(
  table: "A" | "O",
  id: string,
  kind: string,
  resourceId: string,
  data: Uint8Array | string,
  time: string,
  versionHash: string | undefined,
  tag: string | undefined,
): string {
  const dataHex = typeof data === "string" ? data : hex(data);
  return `${table} ${id} ${hexText(kind)} ${
    hexText(resourceId)
  } ${dataHex} ${time} ${quote(versionHash)} ${quote(tag)}`;
}

function quote(value: string | undefined): string {
  return value === undefined || value === ""
    ? "NULL"
    : `'${value.replaceAll("'", "''")}'`;
}

const encoder = new TextEncoder();

/**
 * Upper-case hex of bytes, like SQLite's `hex()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex } from "./reliability_workload.ts";
 *
 * assert(hex(new Uint8Array([0xab, 1])) === "AB01");
 * ```
 */
export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s.toUpperCase();
}

/**
 * Upper-case hex of a string's UTF-8 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hexText } from "./reliability_workload.ts";
 *
 * assert(hexText("a") === "61");
 * ```
 */
export function hexText(text: string): string {
  return hex(encoder.encode(text));
}

/** SQLite's BINARY order of two strings: their UTF-8 bytes. */
function compareBytes(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

/** One step of a concurrent writer. */
export type WriterOp =
  | Op
  | { t: "hot"; tag: string; message: Skill }
  | { t: "pair"; name: string; version: number; message: Skill }
  | { t: "unpair"; name: string };

/** The resource every writer archives snapshots of, so their counts add up. */
export const HOT = { kind: "shared", id: "hot" } as const;

/**
 * The deterministic steps of concurrent writer `p`: saves, audits and deletes of its
 * own resources, snapshots of the shared {@linkcode HOT} resource, and pairs of
 * resources written or deleted together in one transaction (each save of a pair also
 * archives a snapshot of each half, so a pair at version v has v snapshots per half).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writerOps } from "./reliability_workload.ts";
 *
 * assert(writerOps(0, 100, 1).length === 100);
 * ```
 */
export function writerOps(p: number, n: number, seed: number): WriterOp[] {
  const rng = new Rng((seed * 7_777_777 + p * 104_729) >>> 0);
  const own = new Model();
  const ids: [string, string][] = [];
  const pairs = new Map<string, number>();
  const ops: WriterOp[] = [];
  const small: SaveWorkload = {
    batches: 0,
    opsPerBatch: 0,
    ids: 0,
    payload: 200,
  };
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    const kind = rng.pick(["alpha", "beta"]);
    const id = `w${p}-${rng.int(60)}`;
    let op: WriterOp;
    if (r < 0.3) {
      op = { t: "save", kind, id, message: skill(rng, `w${p}.${i}`, small) };
      if (!own.has(kind, id)) ids.push([kind, id]);
    } else if (r < 0.5) {
      const live = ids.filter(([k, d]) => own.has(k, d));
      if (live.length === 0) {
        op = { t: "save", kind, id, message: skill(rng, `w${p}.${i}`, small) };
        ids.push([kind, id]);
      } else {
        const [k2, d2] = rng.pick(live);
        op = {
          t: "audit",
          kind: k2,
          id: d2,
          message: skill(rng, `w${p}.${i}`, small),
          versionHash: `h${i}`,
          tag: rng.chance(0.5) ? `t${rng.int(3)}` : undefined,
        };
      }
    } else if (r < 0.6) {
      op = { t: "delete", kind, id };
    } else if (r < 0.65) {
      op = { t: "deleteAudits", kind, id };
    } else if (r < 0.75) {
      op = {
        t: "hot",
        tag: `w${p}`,
        message: create(SkillSchema, { name: `w${p}.${i}` }),
      };
    } else {
      const name = `${p}-${rng.int(25)}`;
      if (r < 0.93 || !pairs.has(name)) {
        const version = (pairs.get(name) ?? 0) + 1;
        pairs.set(name, version);
        op = {
          t: "pair",
          name,
          version,
          message: create(SkillSchema, {
            name,
            description: String(version),
            payload: rng.bytes(rng.int(300)),
          }),
        };
      } else {
        pairs.delete(name);
        op = { t: "unpair", name };
      }
    }
    if (op.t !== "hot" && op.t !== "pair" && op.t !== "unpair") own.apply(op);
    ops.push(op);
  }
  return ops;
}

/**
 * The halves of a pair: the same message, told apart by `tools`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pairHalves } from "./reliability_workload.ts";
 * import { create } from "@bufbuild/protobuf";
 * import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
 *
 * assert(pairHalves(create(SkillSchema, { name: "0-1" }))[1].id === "0-1-b");
 * ```
 */
export function pairHalves(message: Skill): { id: string; message: Skill }[] {
  return ["a", "b"].map((half) => ({
    id: `${message.name}-${half}`,
    message: { ...message, tools: [half] },
  }));
}

/**
 * Applies one writer step through the Store (pairs in one transaction).
 *
 * @example
 * ```ts
 * import { applyWriterOp, HOT, writerOps } from "./reliability_workload.ts";
 * import { openStore } from "../../mod.ts";
 * import { create } from "@bufbuild/protobuf";
 * import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * store.saveResource(SkillSchema, HOT.kind, HOT.id, create(SkillSchema, {}));
 * writerOps(0, 50, 1).forEach((op) => applyWriterOp(store, op));
 * ```
 */
export function applyWriterOp(store: Store, op: WriterOp): void {
  switch (op.t) {
    case "hot":
      store.saveAudit(SkillSchema, HOT.kind, HOT.id, op.message, {
        tag: op.tag,
      });
      break;
    case "pair":
      store.transaction(() => {
        for (const half of pairHalves(op.message)) {
          store.saveResource(SkillSchema, "pair", half.id, half.message);
          store.saveAudit(SkillSchema, "pair", half.id, half.message);
        }
      });
      break;
    case "unpair":
      store.transaction(() => {
        store.deleteResource("pair", `${op.name}-a`);
        store.deleteResource("pair", `${op.name}-b`);
      });
      break;
    default:
      applyOp(store, op);
  }
}

/**
 * The model of everything writers `0..writers-1` leave, except the snapshots of
 * {@linkcode HOT} (whose order interleaves): lines with audits grouped by resource,
 * and the expected number of HOT snapshots per tag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expectedAfterWriters } from "./reliability_workload.ts";
 *
 * assert(expectedAfterWriters(2, 50, 1).lines.length > 0);
 * ```
 */
export function expectedAfterWriters(
  writers: number,
  n: number,
  seed: number,
): { lines: string[]; hot: Record<string, number> } {
  const model = new Model();
  model.apply({
    t: "save",
    kind: HOT.kind,
    id: HOT.id,
    message: create(SkillSchema, { name: "hot" }),
  });
  const hot: Record<string, number> = {};
  for (let p = 0; p < writers; p++) {
    for (const op of writerOps(p, n, seed)) {
      if (op.t === "hot") hot[op.tag] = (hot[op.tag] ?? 0) + 1;
      else if (op.t === "pair") {
        for (const half of pairHalves(op.message)) {
          model.apply({
            t: "save",
            kind: "pair",
            id: half.id,
            message: half.message,
          });
          model.apply({
            t: "audit",
            kind: "pair",
            id: half.id,
            message: half.message,
          });
        }
      } else if (op.t === "unpair") {
        model.apply({ t: "delete", kind: "pair", id: `${op.name}-a` });
        model.apply({ t: "delete", kind: "pair", id: `${op.name}-b` });
      } else model.apply(op);
    }
  }
  return { lines: model.lines(true), hot };
}

/** The clock of crash-test imports, so that their `updated_at` values are repeatable. */
export const IMPORT_NOW: Date = new Date("2026-01-25T10:00:00.000Z");

/**
 * Runs the crash-test saves ({@linkcode CRASH_SAVES}) on `path` from where it left off
 * (its progress marker): prints `ready K`, `committed K` after each commit, and `done`.
 * The worker runs it in a child to be killed; the crash test runs it in process to
 * complete a killed database.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runSaves } from "./reliability_workload.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const lines: string[] = [];
 * runSaves(`${dir}/db.sqlite`, 1, (line) => lines.push(line));
 * assert.equal(lines[0], "ready 0");
 * assert.equal(lines.at(-1), "done");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function runSaves(
  path: string,
  seed: number,
  print: (line: string) => void,
): void {
  using store = openStore(path);
  let start = 0;
  try {
    start = Number(
      store.getResource(SkillSchema, PROGRESS.kind, PROGRESS.id).name,
    ) + 1;
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
  print(`ready ${start}`);
  for (let k = start; k < CRASH_SAVES.batches; k++) {
    const ops = batchOps(seed, k, CRASH_SAVES);
    store.transaction(() => {
      for (const op of ops) applyOp(store, op);
    });
    print(`committed ${k}`);
  }
  print("done");
}

/**
 * Imports the Badger dump at `dump` into `path` as the crash test does (clock
 * {@linkcode IMPORT_NOW}, staging in `tempDir`): prints `ready`, then `result JSON`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runImport } from "./reliability_workload.ts";
 * import { writeGeneratedDump } from "./badger_writer.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await writeGeneratedDump(`${dir}/dump.bak`, { keys: 10, seed: 1 });
 * const lines: string[] = [];
 * await runImport(`${dir}/db.sqlite`, `${dir}/dump.bak`, dir, (l) => lines.push(l));
 * assert.equal(lines[0], "ready");
 * assert.match(lines[1], /^result /);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runImport(
  path: string,
  dump: string,
  tempDir: string,
  print: (line: string) => void,
): Promise<void> {
  using store = openStore(path);
  print("ready");
  const summary = await importBadgerBackup(store, dump, {
    now: IMPORT_NOW,
    tempDir,
  });
  print(`result ${JSON.stringify(summary)}`);
}
