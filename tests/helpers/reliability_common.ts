/**
 * Shared tools of the reliability harness (`tests/reliability_*_test.ts` and the child
 * scripts they run): case counts for CI and `--long` mode, child processes whose output
 * is read line by line, and the checks run on a database after a crash (integrity,
 * foreign keys, schema version vs tables, a canonical dump of the stored data). The
 * seeded PRNG is in `prng.ts`, Go-shaped databases in `go_store.ts`, temporary
 * directories in `temp_dir.ts`.
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
 * import assert from "node:assert/strict";
 * import { cases } from "./reliability_common.ts";
 *
 * assert(cases(30, 300) >= 30);
 * ```
 */
export function cases(ci: number, long: number): number {
  return LONG ? long : ci;
}

/** The repository root, where `deno.json` is. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

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
 * import assert from "node:assert/strict";
 * import { Child } from "./reliability_common.ts";
 *
 * const child = new Child("reliability_worker.ts", ["echo", "hello"]);
 * const result = await child.finish();
 * assert(result.success && result.lines[0] === "hello");
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
 * import assert from "node:assert/strict";
 * import { runChild } from "./reliability_common.ts";
 *
 * assert((await runChild("reliability_worker.ts", ["echo", "x"])).lines[0] === "x");
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
 * and the cascade in place; 4: and the time checks; no half-built `*_new` table).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDatabase } from "./reliability_common.ts";
 * import { openStore } from "../../mod.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * openStore(path).close();
 * assert(checkDatabase(path).version === 5);
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
    } else if (version >= 3 && version <= 5) {
      expect(!tables.has("resources_new"), "resources_new left over");
      for (
        const t of [
          "resources",
          "resource_audit",
          "resource_audit_orphans",
          "message_schemas",
        ]
      ) expect(tables.has(t), `version ${version} without ${t}`);
      expect(
        columns("resources").includes("schema_id") &&
          columns("resource_audit").includes("schema_id"),
        `version ${version} without schema_id columns`,
      );
      const fk = db.prepare(
        "SELECT \"table\" AS t, on_delete FROM pragma_foreign_key_list('resource_audit')",
      ).all() as { t: string; on_delete: string }[];
      expect(
        fk.some((r) => r.t === "resources" && r.on_delete === "CASCADE"),
        `version ${version} without the audit cascade`,
      );
      const rows = (db.prepare(
        "SELECT version FROM schema_version ORDER BY version",
      ).all() as { version: number }[]).map((r) => r.version);
      expect(
        rows.join(",") === [1, 2, 3, 4, 5].slice(0, version).join(","),
        `schema_version rows ${rows.join(",")}`,
      );
      // From 0004 on, times are checked: the Go daemon's text is refused.
      const sql = (db.prepare(
        "SELECT group_concat(sql) AS s FROM sqlite_schema WHERE name IN ('resources', 'resource_audit')",
      ).get() as { s: string }).s;
      expect(
        (sql.match(/is not ISO-8601/g)?.length ?? 0) === (version >= 4 ? 2 : 0),
        `version ${version} with the wrong time checks`,
      );
      // From 0005 on: revisions and the change log.
      expect(
        (tables.has("resource_changes") && tables.has("change_log") &&
          columns("resources").includes("revision")) === (version >= 5),
        `version ${version} with${
          version >= 5 ? "out" : ""
        } revisions and the change log`,
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
 * import assert from "node:assert/strict";
 * import { dumpDatabase } from "./reliability_common.ts";
 * import { openStore } from "../../mod.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * openStore(path).close();
 * assert(dumpDatabase(path).length === 0);
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
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { dumpConnection } from "./reliability_common.ts";
 *
 * assert(dumpConnection(new DatabaseSync(":memory:")).length === 0);
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
 * import assert from "node:assert/strict";
 * import { digestLines } from "./reliability_common.ts";
 *
 * assert(digestLines(["a"]).length === 64);
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
 * import assert from "node:assert/strict";
 * import { fileDigest } from "./reliability_common.ts";
 *
 * const path = await Deno.makeTempFile();
 * assert(fileDigest(path).length === 64);
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
