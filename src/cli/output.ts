/**
 * Printing for the CLI: aligned tables, colour only on a terminal (and never with
 * NO_COLOR), JSON with binary data as `{"$base64": true, "encoded": …}`, and the
 * usage-error type that makes the CLI exit with code 2.
 *
 * @module
 */
import { escapeControl } from "../decode/text.ts";

/** A command-line mistake: printed with the command's usage hint, exit code 2. */
export class UsageError extends Error {
  /** Creates a usage error for `command` (for the "see --help" hint). */
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * What a command sees of its process: where it writes, whether those are terminals, and
 * the environment it reads. The CLI passes the real ones ({@linkcode processOutput});
 * tests run `main` in process with their own.
 */
export interface Output {
  /** Writes text to standard output. */
  out(text: string): void;
  /** Writes text to standard error. */
  err(text: string): void;
  /**
   * Writes data lines to standard output exactly as given (`export`): `main` routes
   * `out` and `err` through the password redaction, but a store's own data must not be
   * rewritten, or an id holding `scheme://user:pw@` text would come back altered on
   * import. Defaults to `out`.
   */
  data?(text: string): void;
  /** Colour/styles allowed on standard output. */
  color: boolean;
  /** Standard error is a terminal (progress bars). */
  errIsTerminal: boolean;
  /**
   * Asks a yes/no question on the terminal; absent when stdin is not a terminal (then
   * commands that would ask need `--yes`).
   */
  confirm?(question: string): boolean;
  /** An environment variable (`PROTOSTORE_DB`), undefined when unset. */
  env(name: string): string | undefined;
}

const encoder = new TextEncoder();

/** The process's real output streams. */
export function processOutput(): Output {
  const noColor = (Deno.env.get("NO_COLOR") ?? "") !== "";
  return {
    out: (text) => writeAll(Deno.stdout, text),
    err: (text) => writeAll(Deno.stderr, text),
    color: !noColor && Deno.stdout.isTerminal(),
    errIsTerminal: Deno.stderr.isTerminal(),
    env: (name) => Deno.env.get(name),
    ...(Deno.stdin.isTerminal()
      ? { confirm: (question: string) => confirm(question) }
      : {}),
  };
}

function writeAll(stream: typeof Deno.stdout, text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) {
    written += stream.writeSync(bytes.subarray(written));
  }
}

/** Bold text when colour is on. */
export function bold(output: Output, text: string): string {
  return output.color ? `\x1b[1m${text}\x1b[22m` : text;
}

/** Dim text when colour is on. */
export function dim(output: Output, text: string): string {
  return output.color ? `\x1b[2m${text}\x1b[22m` : text;
}

/** Coloured text (31 red, 32 green, 33 yellow, 36 cyan) when colour is on. */
export function colored(
  output: Output,
  code: 31 | 32 | 33 | 36,
  text: string,
): string {
  return output.color ? `\x1b[${code}m${text}\x1b[39m` : text;
}

/**
 * Renders rows as an aligned table under a header row. Cells are escaped (no raw
 * control characters reach the terminal); numbers are right-aligned.
 */
export function table(
  output: Output,
  header: string[],
  rows: (string | number | null | undefined)[][],
): string {
  const cells = rows.map((row) =>
    row.map((cell) => cell == null ? "-" : escapeControl(String(cell)))
  );
  const numeric = header.map((_, i) =>
    rows.length > 0 && rows.every((r) => typeof r[i] === "number")
  );
  const widths = header.map((h, i) =>
    Math.max(h.length, ...cells.map((r) => width(r[i] ?? "")))
  );
  const line = (row: string[]) =>
    row.map((cell, i) => {
      const pad = " ".repeat(Math.max(0, widths[i] - width(cell)));
      return numeric[i] ? pad + cell : i === row.length - 1 ? cell : cell + pad;
    }).join("  ").trimEnd();
  return [bold(output, line(header)), ...cells.map(line)].join("\n") + "\n";
}

/** Display width, counting each code point as one column. */
function width(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Key/value lines (`key: value`), keys aligned. Values are escaped. */
export function fields(output: Output, entries: [string, unknown][]): string {
  const pad = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([key, value]) =>
    `${dim(output, (key + ":").padEnd(pad + 1))} ${
      escapeControl(
        value == null
          ? "-"
          : value instanceof Date
          ? value.toISOString()
          : String(value),
      )
    }`
  ).join("\n") + "\n";
}

/**
 * One JSON document: dates as ISO strings, bigints as strings, bytes as
 * `{"$base64": true, "encoded": …}` (like sqlite-utils).
 */
export function toJsonText(value: unknown, indent = 2): string {
  return jsonSafe(JSON.stringify(value, (_key, v) => {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) {
      return { $base64: true, encoded: v.toBase64() };
    }
    return v;
  }, indent)) + "\n";
}

// JSON.stringify escapes C0 controls but leaves DEL, C1 controls, line separators and
// bidi overrides raw; as \uXXXX escapes the document means the same and is safe to print.
const JSON_UNSAFE =
  /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
function jsonSafe(text: string): string {
  return text.replace(
    JSON_UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A decoded message as indented JSON for people, control characters escaped. */
export function prettyMessage(message: unknown): string {
  return toJsonText(message).trimEnd().split("\n").map(escapeControl).join(
    "\n",
  );
}

/** A byte count for people: `512 B`, `1.5 KiB`, `20.0 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** A time for people: ISO-8601 without the `T`, to the millisecond, labelled UTC. */
export function formatTime(date: Date | null | undefined): string {
  return date ? date.toISOString().replace("T", " ").replace("Z", " UTC") : "-";
}
