/**
 * Helpers for the end-to-end tests of `cli.ts`: run the CLI in process (`main` with
 * collected output, ~30x faster than a process) or as a real subprocess (exit codes of
 * the binary, working directory, pipes, terminals), both without an inherited
 * `PROTOSTORE_DB` or `NO_COLOR`; parse its one JSON document, check its output for raw
 * control bytes, and add orphaned snapshots to a migrated database.
 * Database files as the Go store wrote them are built with `go_store.ts`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath as fromFileUrl } from "node:url";
import assert from "node:assert/strict";
import { main } from "../../src/cli/main.ts";

/** The project root (where `cli.ts` and `deno.json` are). */
export const ROOT: string = fromFileUrl(new URL("../../", import.meta.url));
const CLI = fromFileUrl(new URL("../../cli.ts", import.meta.url));
const CONFIG = fromFileUrl(new URL("../../deno.json", import.meta.url));

/** The descriptor set of the test schema (`buf build` of tests/fixtures/proto). */
export const DESCRIPTORS: string = fromFileUrl(
  new URL("../fixtures/example.binpb", import.meta.url),
);

/** What one run of the CLI produced. */
export interface CliResult {
  /** The exit code. */
  code: number;
  /** Standard output as text. */
  stdout: string;
  /** Standard error as text. */
  stderr: string;
  /** Standard output as bytes (to look for raw control bytes). */
  stdoutBytes: Uint8Array;
}

/** Options of {@linkcode runCli}. */
export interface RunOptions {
  /** Extra environment variables (the CLI never inherits PROTOSTORE_DB or NO_COLOR). */
  env?: Record<string, string>;
  /** In process only: pretend stderr is a terminal (progress lines). Default false. */
  errIsTerminal?: boolean;
}

/** Options of the subprocess runs ({@linkcode runCliProcess}, {@linkcode cliCommand}). */
export interface ProcessRunOptions extends RunOptions {
  /** Working directory; default the project root. */
  cwd?: string;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Runs the CLI in this process: `main(args)` with stdout and stderr collected (neither a
 * terminal, so no colour or progress bar, as with pipes) and only `options.env` as its
 * environment. Same result as {@linkcode runCliProcess} for everything that does not
 * depend on the process: the working directory, signals, closed pipes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCli } from "./cli.ts";
 *
 * const { code, stdout } = await runCli(["--help"]);
 * assert(code === 0 && stdout.includes("inspect"));
 * ```
 */
export async function runCli(
  args: string[],
  options: RunOptions = {},
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const env = options.env ?? {};
  const code = await main(args, {
    out: (text) => stdout += text,
    err: (text) => stderr += text,
    color: false,
    errIsTerminal: options.errIsTerminal ?? false,
    env: (name) => Object.hasOwn(env, name) ? env[name] : undefined,
  });
  return { code, stdout, stderr, stdoutBytes: encoder.encode(stdout) };
}

/**
 * Runs `deno run -A cli.ts ...args` as a subprocess and collects its exit code and
 * output. The config is passed explicitly, so `cwd` can be any directory (e.g. to test
 * `./protostore.sqlite`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCliProcess } from "./cli.ts";
 *
 * const { code, stderr } = await runCliProcess(["inspect", "--bogus"]);
 * assert(code === 2 && stderr.includes("--bogus"));
 * ```
 */
export async function runCliProcess(
  args: string[],
  options: ProcessRunOptions = {},
): Promise<CliResult> {
  return cliResult(await cliCommand(args, options).output());
}

/**
 * The `deno run -A cli.ts ...args` command with piped output, for tests that read the
 * output as it comes (`.spawn()`), e.g. to close the pipe early.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cliCommand } from "./cli.ts";
 *
 * const child = cliCommand(["--help"]).spawn();
 * const { code } = await child.output();
 * assert(code === 0);
 * ```
 */
export function cliCommand(
  args: string[],
  options: ProcessRunOptions = {},
): Deno.Command {
  const [program, ...rest] = cliArgv(args);
  return command(program, rest, options);
}

/** `deno run -A --config deno.json cli.ts ...args`. */
function cliArgv(args: string[]): string[] {
  return [Deno.execPath(), "run", "-A", "--config", CONFIG, CLI, ...args];
}

/**
 * `program args` with piped output, in `options.cwd` (default the project root), with
 * the parent's environment minus PROTOSTORE_DB and NO_COLOR, plus `options.env`.
 */
function command(
  program: string,
  args: string[],
  options: ProcessRunOptions,
): Deno.Command {
  const env = Deno.env.toObject();
  delete env.PROTOSTORE_DB;
  delete env.NO_COLOR;
  return new Deno.Command(program, {
    args,
    cwd: options.cwd ?? ROOT,
    env: Object.assign(env, { DENO_NO_UPDATE_CHECK: "1" }, options.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

function cliResult(out: Deno.CommandOutput): CliResult {
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    stdoutBytes: out.stdout,
  };
}

/**
 * Asserts a successful run (exit 0, nothing on stderr) whose stdout is exactly one JSON
 * document, and returns it parsed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cliJson, runCli } from "./cli.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const status = cliJson<{ pending: unknown[] }>(
 *   await runCli(["migrate", "--status", "--json", "--db", `${dir}/db.sqlite`]),
 * );
 * assert(status.pending.length > 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function cliJson<T = unknown>(result: CliResult): T {
  assert.equal(
    result.code,
    0,
    `exit code ${result.code}, stderr: ${result.stderr}`,
  );
  assert.equal(result.stderr, "", "nothing on stderr");
  // JSON.parse rejects anything after the document, so this is "exactly one".
  return JSON.parse(result.stdout) as T;
}

/**
 * Asserts a failed run: exit `code`, empty stdout, and exactly one line on stderr
 * starting with `protostore:`. Returns that line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertFailure, runCli } from "./cli.ts";
 *
 * const line = assertFailure(await runCli(["inspect", "--bogus"]), 2);
 * assert(line.includes("--bogus"));
 * ```
 */
export function assertFailure(result: CliResult, code: 1 | 2): string {
  assert.equal(
    result.code,
    code,
    `expected exit ${code}, got ${result.code}; stdout: ${result.stdout} stderr: ${result.stderr}`,
  );
  assert.equal(result.stdout, "", "nothing on stdout on failure");
  const lines = result.stderr.split("\n");
  assert.equal(lines.length, 2, `one line on stderr, got: ${result.stderr}`);
  assert.equal(lines[1], "", "stderr ends with a newline");
  assert.match(lines[0], /^protostore: /);
  return lines[0];
}

/**
 * Asserts that `bytes` contain no ESC (0x1b) and no other raw C0 control byte except
 * newline (so no ANSI styling and no message content that could act on a terminal).
 *
 * @example
 * ```ts
 * import { assertNoControlBytes } from "./cli.ts";
 *
 * assertNoControlBytes(new TextEncoder().encode("plain\ntext\n"));
 * ```
 */
export function assertNoControlBytes(bytes: Uint8Array, what = "output"): void {
  const at = bytes.findIndex((b) => b === 0x7f || (b < 0x20 && b !== 0x0a));
  assert.equal(
    at,
    -1,
    `${what} has raw control byte 0x${bytes[at]?.toString(16)} at offset ${at}`,
  );
  const text = decoder.decode(bytes);
  // C1 controls (U+0080..U+009F) would be 0xc2 0x80..0x9f in UTF-8.
  assert.doesNotMatch(text, /[\u0080-\u009f]/, `${what} has a raw C1 control`);
  assert.doesNotMatch(
    text,
    /[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/,
    `${what} has a raw line separator or bidi control`,
  );
}

/** Whether `script` (util-linux) is there to give the CLI a terminal. */
export const HAS_SCRIPT: boolean = (() => {
  try {
    return new Deno.Command("script", { args: ["--version"] }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

/**
 * Runs the CLI with a pseudo-terminal as stdout (through `script`), to see what it prints
 * on a TTY. Returns what the terminal received (line ends are `\r\n` there).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HAS_SCRIPT, runCliInTerminal } from "./cli.ts";
 *
 * if (HAS_SCRIPT) {
 *   const { stdout } = await runCliInTerminal(["--help"]);
 *   assert(stdout.includes("inspect"));
 * }
 * ```
 */
export async function runCliInTerminal(
  args: string[],
  options: ProcessRunOptions = {},
): Promise<CliResult> {
  const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;
  const line = cliArgv(args).map(quote).join(" ");
  return cliResult(
    await command("script", ["-q", "-e", "-c", line, "/dev/null"], options)
      .output(),
  );
}

/** A row for `resource_audit_orphans` (migrated databases): a snapshot whose resource is gone. */
export interface OrphanRow {
  kind: string;
  resourceId: string;
  data: Uint8Array;
  /** ISO-8601 with milliseconds, as protostore writes it. */
  archivedAt: string;
  versionHash?: string;
  tag?: string;
}

/**
 * Adds orphaned snapshots to a migrated database, as migration 0003 leaves them for
 * legacy audit rows whose resource no longer exists. Returns their ids.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { insertOrphans } from "./cli.ts";
 * import { migrate } from "../../mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * migrate(`${dir}/db.sqlite`);
 * const [id] = insertOrphans(`${dir}/db.sqlite`, [
 *   { kind: "skill", resourceId: "gone", data: new Uint8Array([8, 1]), archivedAt: "2026-01-25T10:00:00.000Z" },
 * ]);
 * assert(id > 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function insertOrphans(path: string, rows: OrphanRow[]): number[] {
  const db = new DatabaseSync(path);
  try {
    const insert = db.prepare(
      `INSERT INTO resource_audit_orphans (kind, resource_id, data, archived_at, version_hash, tag)
       VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
    );
    return rows.map((r) =>
      (insert.get(
        r.kind,
        r.resourceId,
        r.data,
        r.archivedAt,
        r.versionHash ?? null,
        r.tag ?? null,
      ) as { id: number }).id
    );
  } finally {
    db.close();
  }
}
