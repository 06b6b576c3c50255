/**
 * Shared tools of the reliability harness (`tests/reliability_*_test.ts` and the child
 * scripts they run): case counts for CI and `--long` mode, a seeded PRNG, child
 * processes whose output is read line by line, Go-shaped v2 databases, and the checks
 * run on a database after a crash (integrity, foreign keys, schema version vs tables,
 * a canonical dump of the stored data).
 *
 * `PROTOSTORE_LONG=1 deno test -A tests/reliability_*` (or `-- --long`) runs the long
 * mode.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";

/**
 * True in the long local mode: `PROTOSTORE_LONG=1`, or `--long` after `--`
 * (`deno test -A tests/reliability_crash_test.ts -- --long`).
 */
export const LONG = Deno.env.get("PROTOSTORE_LONG") === "1" ||
  Deno.args.includes("--long");

/**
 * How many cases to run: `ci` normally, `long` with `PROTOSTORE_LONG=1`.
 *
 * @example
 * ```ts
 * import { cases } from "./reliability_common.ts";
 *
 * console.assert(cases(30, 300) >= 30);
 * ```
 */
export function cases(ci: number, long: number): number {
  return LONG ? long : ci;
}

/** The repository root, where `deno.json` is. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/**
 * A small seeded PRNG (mulberry32), so every case can be replayed from its seed.
 *
 * @example
 * ```ts
 * import { Rng } from "./reliability_common.ts";
 *
 * console.assert(new Rng(7).int(10) === new Rng(7).int(10));
 * ```
 */
export class Rng {
  #a: number;

  /** Starts the sequence of `seed`. */
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }

  /** A uint32. */
  u32(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` pseudo-random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const r = this.u32();
      out[i] = r;
      if (i + 1 < n) out[i + 1] = r >>> 8;
      if (i + 2 < n) out[i + 2] = r >>> 16;
      if (i + 3 < n) out[i + 3] = r >>> 24;
    }
    return out;
  }
}

/**
 * Runs `fn` with a fresh temporary directory, removed afterwards (also after a failure).
 *
 * @example
 * ```ts
 * import { withTempDir } from "./reliability_common.ts";
 *
 * await withTempDir((dir) => Deno.writeTextFileSync(`${dir}/x`, "x"));
 * ```
 */
export async function withTempDir<T>(
  fn: (dir: string) => T | Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "protostore-reliability-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** How a child process ended, with everything it printed. */
export interface ChildResult {
  /** Exit code (137-ish codes are not used: see `signal`). */
  code: number;
  /** The signal that ended it, e.g. `SIGKILL`, or null. */
  signal: Deno.Signal | null;
  /** True when it exited with code 0. */
  success: boolean;
  /** Its stdout, split into lines. */
  lines: string[];
  /** Its stderr. */
  stderr: string;
}

/**
 * A `deno run -A tests/helpers/<script>` child process whose stdout is read line by line
 * while it runs, so a test can wait for "ready" and then kill it.
 *
 * @example
 * ```ts
 * import { Child } from "./reliability_common.ts";
 *
 * const child = new Child("reliability_worker.ts", ["echo", "hello"]);
 * const result = await child.finish();
 * console.assert(result.success && result.lines[0] === "hello");
 * ```
 */
export class Child {
  /** The process. */
  readonly process: Deno.ChildProcess;
  /** Lines printed so far. */
  readonly lines: string[] = [];
  #waiters: {
    pred: (line: string) => boolean;
    resolve: (l?: string) => void;
  }[] = [];
  #ended = false;
  #stdout: Promise<void>;
  #stderr: Promise<string>;

  /** Starts `tests/helpers/<script>` with `args`. */
  constructor(
    script: string,
    args: string[],
    options: { env?: Record<string, string>; wrapper?: string[] } = {},
  ) {
    const deno = [
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}tests/helpers/${script}`,
      ...args,
    ];
    const argv = [...(options.wrapper ?? []), ...deno];
    this.process = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: options.env,
    }).spawn();
    this.#stdout = this.#pump();
    this.#stderr = new Response(this.process.stderr).text();
  }

  async #pump(): Promise<void> {
    let rest = "";
    const reader = this.process.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
        let at: number;
        while ((at = rest.indexOf("\n")) >= 0) {
          this.#line(rest.slice(0, at));
          rest = rest.slice(at + 1);
        }
      }
      if (rest !== "") this.#line(rest);
    } finally {
      this.#ended = true;
      for (const w of this.#waiters) w.resolve(undefined);
      this.#waiters = [];
    }
  }

  #line(line: string): void {
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** The first line (already printed or coming) matching `pred`; undefined if it exits first. */
  waitFor(pred: (line: string) => boolean): Promise<string | undefined> {
    const seen = this.lines.find(pred);
    if (seen !== undefined || this.#ended) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ pred, resolve }));
  }

  /** Sends SIGKILL unless it already exited. */
  kill(): void {
    try {
      this.process.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }

  /** Waits for the exit and all output. */
  async finish(): Promise<ChildResult> {
    const status = await this.process.status;
    await this.#stdout;
    const stderr = await this.#stderr;
    return {
      code: status.code,
      signal: status.signal,
      success: status.success,
      lines: this.lines,
      stderr,
    };
  }
}

/**
 * Runs a helper script to completion and returns its result; throws with its stderr
 * when it fails.
 *
 * @example
 * ```ts
 * import { runChild } from "./reliability_common.ts";
 *
 * console.assert((await runChild("reliability_worker.ts", ["echo", "x"])).lines[0] === "x");
 * ```
 */
export async function runChild(
  script: string,
  args: string[],
): Promise<ChildResult> {
  const result = await new Child(script, args).finish();
  if (!result.success) {
    throw new Error(
      `${script} ${
        args.join(" ")
      } exited with ${result.code}: ${result.stderr}`,
    );
  }
  return result;
}

/**
 * Sleeps `ms` milliseconds.
 *
 * @example
 * ```ts
 * import { sleep } from "./reliability_common.ts";
 *
 * await sleep(1);
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The Go store's v1 and v2 DDL, verbatim from the issue, plus its `schema_version`. */
export const GO_V2_DDL = `
CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,
  updated_at TEXT NOT NULL DEFAULT (datetime('now')), PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_resources_kind_id ON resources(kind, id);
CREATE TABLE IF NOT EXISTS resource_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
  resource_id TEXT NOT NULL, data BLOB NOT NULL, archived_at TEXT NOT NULL DEFAULT (datetime('now')),
  version_hash TEXT, tag TEXT);
CREATE INDEX IF NOT EXISTS idx_audit_resource ON resource_audit(kind, resource_id);
CREATE INDEX IF NOT EXISTS idx_audit_hash ON resource_audit(kind, resource_id, version_hash);
CREATE INDEX IF NOT EXISTS idx_audit_tag ON resource_audit(kind, resource_id, tag, archived_at DESC);
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,
  applied_at TEXT NOT NULL DEFAULT (datetime('now')));
INSERT INTO schema_version (version, applied_at) VALUES (1, '2025-01-01 10:00:00'), (2, '2025-06-01 10:00:00');
`;

/** Size of a generated Go database. */
export interface GoDatabaseOptions {
  /** Live resources. */
  resources: number;
  /** Audit snapshots per resource (0..2×, random). */
  auditsPerResource: number;
  /** Mean payload bytes per row. */
  payload: number;
  /** Share of audit snapshots whose resource was deleted (orphans after 0003). */
  orphanFraction?: number;
}

/**
 * Writes a database shaped like one the Go store left at schema version 2: its DDL,
 * `datetime('now')`-style second timestamps, empty-string hashes and tags next to real
 * ones and NULLs, audit rows whose resource was deleted, rows of several kinds.
 * Deterministic for a seed. The file is left in rollback-journal mode, as Go left it.
 *
 * @example
 * ```ts
 * import { writeGoV2Database } from "./reliability_common.ts";
 *
 * const path = `${await Deno.makeTempDir()}/go.sqlite`;
 * writeGoV2Database(path, 1, { resources: 10, auditsPerResource: 2, payload: 50 });
 * ```
 */
export function writeGoV2Database(
  path: string,
  seed: number,
  options: GoDatabaseOptions,
): void {
  const rng = new Rng(seed);
  const db = new DatabaseSync(path);
  try {
    db.exec(GO_V2_DDL);
    db.exec("BEGIN");
    const res = db.prepare(
      "INSERT OR REPLACE INTO resources (kind, id, data, updated_at) VALUES (?, ?, ?, ?)",
    );
    const aud = db.prepare(
      `INSERT INTO resource_audit (kind, resource_id, data, archived_at, version_hash, tag)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    const base = Date.UTC(2025, 0, 1) / 1000;
    const time = (s: number) =>
      new Date((base + s) * 1000).toISOString().slice(0, 19).replace("T", " ");
    const kinds = ["agent", "skill", "workflow"];
    const orphanFraction = options.orphanFraction ?? 0.05;
    for (let i = 0; i < options.resources; i++) {
      const kind = kinds[i % kinds.length];
      const id = `${kind}-${i.toString(36)}-${rng.u32().toString(16)}`;
      const payload = () =>
        protoBytes(
          `${kind}/${id}`,
          rng.bytes(rng.int(options.payload * 2) + 1),
        );
      const t = rng.int(10_000_000);
      const audits = rng.int(options.auditsPerResource * 2 + 1);
      for (let a = 0; a < audits; a++) {
        const hashChoice = rng.int(3);
        aud.run(
          kind,
          id,
          payload(),
          time(t - audits + a),
          hashChoice === 0 ? null : hashChoice === 1 ? "" : `h${rng.u32()}`,
          rng.chance(0.3) ? `v${a}` : rng.chance(0.5) ? "" : null,
        );
      }
      // The Go store deleted resources without their history: those become orphans.
      if (!rng.chance(orphanFraction)) res.run(kind, id, payload(), time(t));
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

/** A small valid protobuf (`Skill{name, payload}`) built by hand, for raw-SQL rows. */
function protoBytes(name: string, payload: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const out: number[] = [0x0a, ...varint(nameBytes.length), ...nameBytes];
  out.push(0x52, ...varint(payload.length));
  const head = new Uint8Array(out);
  const all = new Uint8Array(head.length + payload.length);
  all.set(head);
  all.set(payload, head.length);
  return all;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** What a database looks like after a crash. */
export interface DatabaseCheck {
  /** `PRAGMA integrity_check` rows joined; `ok` when clean. */
  integrity: string;
  /** Rows of `PRAGMA foreign_key_check`. */
  foreignKeyViolations: number;
  /** The highest `schema_version.version`, 0 when there is none. */
  version: number;
  /** Problems where the tables do not match `version`; empty when consistent. */
  schemaMismatch: string[];
}

/**
 * Opens `path` the way an application would (recovering a hot journal or WAL) and
 * checks integrity, foreign keys, and that the tables are exactly those of the
 * recorded schema version (Go v2: no protostore tables, no `schema_id`; 3: every table
 * and the cascade in place; no half-built `resource_audit_new`).
 *
 * @example
 * ```ts
 * import { checkDatabase } from "./reliability_common.ts";
 * import { openStore } from "../../mod.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * openStore(path).close();
 * console.assert(checkDatabase(path).version === 3);
 * ```
 */
export function checkDatabase(path: string): DatabaseCheck {
  const db = new DatabaseSync(path);
  try {
    const integrity = (db.prepare("PRAGMA integrity_check").all() as {
      integrity_check: string;
    }[]).map((r) => r.integrity_check).join("; ");
    db.exec("PRAGMA foreign_keys = ON");
    const foreignKeyViolations =
      db.prepare("PRAGMA foreign_key_check").all().length;
    const tables = new Set(
      (db.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table'",
      ).all() as { name: string }[]).map((r) => r.name),
    );
    const version = tables.has("schema_version")
      ? Number(
        (db.prepare("SELECT coalesce(max(version), 0) AS v FROM schema_version")
          .get() as { v: number }).v,
      )
      : 0;
    const columns = (table: string) =>
      (db.prepare("SELECT name FROM pragma_table_info(?)").all(table) as {
        name: string;
      }[]).map((r) => r.name);
    const schemaMismatch: string[] = [];
    const expect = (ok: boolean, what: string) => {
      if (!ok) schemaMismatch.push(what);
    };
    expect(!tables.has("resource_audit_new"), "resource_audit_new left over");
    if (version === 0) {
      expect(
        !tables.has("resources") && !tables.has("resource_audit"),
        "version 0 but tables exist",
      );
    } else if (version === 1 || version === 2) {
      expect(tables.has("resources"), `version ${version} without resources`);
      expect(
        tables.has("resource_audit") === (version === 2),
        `version ${version} and resource_audit ${
          tables.has("resource_audit") ? "exists" : "is missing"
        }`,
      );
      expect(!tables.has("message_schemas"), "message_schemas before 0003");
      expect(
        !tables.has("resource_audit_orphans"),
        "resource_audit_orphans before 0003",
      );
      expect(
        !columns("resources").includes("schema_id"),
        "schema_id before 0003",
      );
    } else if (version === 3) {
      for (
        const t of [
          "resources",
          "resource_audit",
          "resource_audit_orphans",
          "message_schemas",
        ]
      ) expect(tables.has(t), `version 3 without ${t}`);
      expect(
        columns("resources").includes("schema_id") &&
          columns("resource_audit").includes("schema_id"),
        "version 3 without schema_id columns",
      );
      const fk = db.prepare(
        "SELECT \"table\" AS t, on_delete FROM pragma_foreign_key_list('resource_audit')",
      ).all() as { t: string; on_delete: string }[];
      expect(
        fk.some((r) => r.t === "resources" && r.on_delete === "CASCADE"),
        "version 3 without the audit cascade",
      );
      const rows = (db.prepare(
        "SELECT version FROM schema_version ORDER BY version",
      ).all() as { version: number }[]).map((r) => r.version);
      expect(
        rows.join(",") === "1,2,3",
        `schema_version rows ${rows.join(",")}`,
      );
    } else {
      schemaMismatch.push(`unexpected version ${version}`);
    }
    return { integrity, foreignKeyViolations, version, schemaMismatch };
  } finally {
    db.close();
  }
}

/** Options of {@linkcode dumpDatabase}. */
export interface DumpOptions {
  /** Include `updated_at` / `archived_at` (deterministic in migrate and import runs). */
  timestamps?: boolean;
  /** Include audit row ids. */
  auditIds?: boolean;
  /** Order audit rows by (kind, resource_id, id) instead of id. */
  auditsByResource?: boolean;
}

/**
 * The stored data of `path` as canonical text lines: resources by (kind, id), audit
 * snapshots and orphans by id, with hex data. Works on Go v2 and protostore v3 files.
 *
 * @example
 * ```ts
 * import { dumpDatabase } from "./reliability_common.ts";
 * import { openStore } from "../../mod.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * openStore(path).close();
 * console.assert(dumpDatabase(path).length === 0);
 * ```
 */
export function dumpDatabase(
  path: string,
  options: DumpOptions = {},
): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return dumpConnection(db, options);
  } finally {
    db.close();
  }
}

/**
 * {@linkcode dumpDatabase} on an open connection.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { dumpConnection } from "./reliability_common.ts";
 *
 * console.assert(dumpConnection(new DatabaseSync(":memory:")).length === 0);
 * ```
 */
export function dumpConnection(
  db: DatabaseSync,
  options: DumpOptions = {},
): string[] {
  const has = (t: string) =>
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?")
      .get(t) !== undefined;
  const ts = options.timestamps ?? false;
  // Text is read as hex: node:sqlite in Deno cuts TEXT values at a NUL.
  const lines: string[] = [];
  if (has("resources")) {
    for (
      const r of db.prepare(
        `SELECT hex(kind) k, hex(id) i, hex(data) d, ${
          ts ? "updated_at" : "''"
        } t FROM resources ORDER BY kind, id`,
      ).all() as Record<string, string>[]
    ) lines.push(`R ${r.k} ${r.i} ${r.d} ${r.t}`);
  }
  for (const table of ["resource_audit", "resource_audit_orphans"]) {
    if (!has(table)) continue;
    for (
      const r of db.prepare(
        `SELECT ${options.auditIds ? "id" : "''"} n, hex(kind) k,
          hex(resource_id) i, hex(data) d, ${ts ? "archived_at" : "''"} t,
          quote(nullif(version_hash, '')) h, quote(nullif(tag, '')) g
         FROM ${table} ORDER BY ${
          options.auditsByResource ? "kind, resource_id, id" : "id"
        }`,
      ).all() as Record<string, string>[]
    ) {
      lines.push(
        `${
          table === "resource_audit" ? "A" : "O"
        } ${r.n} ${r.k} ${r.i} ${r.d} ${r.t} ${r.h} ${r.g}`,
      );
    }
  }
  return lines;
}

/**
 * Throws a short message naming the first differing line when `actual` and `expected`
 * differ (assert.deepEqual would print megabytes of hex).
 *
 * @example
 * ```ts
 * import { assertSameLines } from "./reliability_common.ts";
 *
 * assertSameLines(["a"], ["a"], "same");
 * ```
 */
export function assertSameLines(
  actual: readonly string[],
  expected: readonly string[],
  what: string,
): void {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      throw new Error(
        `${what}: ${actual.length} lines vs ${expected.length} expected; first difference ` +
          `at line ${i}: got ${short(actual[i])}, expected ${
            short(expected[i])
          }`,
      );
    }
  }
}

function short(line: string | undefined): string {
  if (line === undefined) return "(none)";
  return line.length > 160 ? `${line.slice(0, 160)}…` : line;
}

/**
 * SHA-256 of a list of lines, hex.
 *
 * @example
 * ```ts
 * import { digestLines } from "./reliability_common.ts";
 *
 * console.assert(digestLines(["a"]).length === 64);
 * ```
 */
export function digestLines(lines: readonly string[]): string {
  const hash = createHash("sha256");
  for (const line of lines) hash.update(line).update("\n");
  return hash.digest("hex");
}

/**
 * SHA-256 of a file's bytes, hex.
 *
 * @example
 * ```ts
 * import { fileDigest } from "./reliability_common.ts";
 *
 * const path = await Deno.makeTempFile();
 * console.assert(fileDigest(path).length === 64);
 * ```
 */
export function fileDigest(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

/**
 * Copies a database file (and its -wal/-shm when present) to `to`.
 *
 * @example
 * ```ts
 * import { copyDatabase } from "./reliability_common.ts";
 *
 * const dir = await Deno.makeTempDir();
 * Deno.writeTextFileSync(`${dir}/a`, "x");
 * copyDatabase(`${dir}/a`, `${dir}/b`);
 * ```
 */
export function copyDatabase(from: string, to: string): void {
  Deno.copyFileSync(from, to);
  for (const suffix of ["-wal", "-shm"]) {
    try {
      Deno.removeSync(to + suffix);
    } catch { /* absent */ }
    try {
      Deno.copyFileSync(from + suffix, to + suffix);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/** Milliseconds since `start` (for reports, never asserted). */
export function since(start: number): number {
  return Math.round(performance.now() - start);
}
