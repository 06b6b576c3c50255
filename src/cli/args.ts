/**
 * Argument parsing shared by the commands: node:util `parseArgs` with usage errors
 * instead of exceptions, and the `--db` default.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { messageOf } from "../errors.ts";
import { type Output, UsageError } from "./output.ts";
import { escapeControl } from "../decode/text.ts";
import {
  isPostgresUrl,
  redactUrl,
  requireSchemaName,
} from "../postgres/connection.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Options every command takes. */
export const COMMON_OPTIONS = {
  db: { type: "string" },
  schema: { type: "string" },
  json: { type: "boolean" },
} as const satisfies Options;

/**
 * Parses `args` strictly: unknown options, missing values and values given to flags
 * become {@linkcode UsageError}s in the tool's own words, with a suggestion for a
 * misspelt option (`unknown option --sttaus; did you mean --status?`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parse } from "./args.ts";
 *
 * const options = { status: { type: "boolean" } } as const;
 * assert.equal(parse(["--status"], options, "migrate").values.status, true);
 * assert.throws(() => parse(["--sttaus"], options, "migrate"), {
 *   message: "unknown option --sttaus; did you mean --status?",
 * });
 * ```
 */
export function parse<O extends Options>(
  args: string[],
  options: O,
  command: string,
) {
  // Checked on parseArgs' own tokens first, so its messages never reach the user.
  const { tokens } = parseArgs({
    args,
    options,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    const spec = options[token.name];
    if (spec === undefined) {
      // A single-letter option is too short to guess from.
      const hint = token.name.length > 1
        ? suggestion(token.name, Object.keys(options))
        : undefined;
      throw new UsageError(
        `unknown option ${token.rawName}${
          hint ? `; did you mean --${hint}?` : ""
        }`,
        command,
      );
    }
    if (spec.type === "boolean" && token.value !== undefined) {
      throw new UsageError(
        `${token.rawName} takes no value, got ${JSON.stringify(token.value)}`,
        command,
      );
    }
    if (
      spec.type === "string" &&
      (token.value === undefined ||
        (!token.inlineValue && token.value.startsWith("-")))
    ) {
      const value = token.value;
      // `--keep-last -1` is a value the user meant, not a forgotten one: say what to do.
      const isOption = value !== undefined &&
        /^--?[A-Za-z]/.test(value) && !/^-\d/.test(value);
      throw new UsageError(
        value === undefined
          ? `${token.rawName} needs a value`
          : isOption
          ? `${token.rawName} needs a value, got option ${value}`
          : `${token.rawName} got ${value}, which starts with "-"; if you mean ` +
            `it, write ${token.rawName}=${value}`,
        command,
      );
    }
  }
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    // Not reached for the cases above; kept so that nothing escapes as a crash.
    throw new UsageError(
      messageOf(error),
      command,
    );
  }
}

const DEFAULT_DB = "./protostore.sqlite";

/** The `--db PATH` line of every help text, after the option name. */
export const DB_HELP =
  `database file or postgres:// URL (default: $PROTOSTORE_DB, else ${DEFAULT_DB});
                       passwords are never printed`;

/** The `--schema` line of every help text, after the option name. */
export const SCHEMA_HELP =
  "PostgreSQL: the schema holding the store (default public)";

/**
 * The candidate closest to `typed` when it is near enough to be a slip of the keyboard
 * (edit distance at most 2, or a prefix of exactly one candidate); `undefined` otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { suggestion } from "./args.ts";
 *
 * assert.equal(suggestion("sttaus", ["status", "dry-run"]), "status");
 * assert.equal(suggestion("dry", ["status", "dry-run"]), "dry-run");
 * assert.equal(suggestion("frobnicate", ["status", "dry-run"]), undefined);
 * ```
 */
export function suggestion(
  typed: string,
  candidates: string[],
): string | undefined {
  const prefixed = candidates.filter((c) => c.startsWith(typed));
  if (typed.length > 1 && prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(typed, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Damerau-Levenshtein distance (optimal string alignment): a swap counts as one. */
function editDistance(a: string, b: string): number {
  const d = Array.from(
    { length: a.length + 1 },
    (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i === 0 ? j : i),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The store's location — a path, `file:` URL or `postgres://` URL: `--db`, else
 * `$PROTOSTORE_DB`, else `./protostore.sqlite`.
 */
export function dbPath(flag: string | undefined, output: Output): string {
  if (flag !== undefined) {
    if (flag === "") {
      throw new UsageError("--db needs a file path or a postgres:// URL");
    }
    return flag;
  }
  const fromEnv = output.env("PROTOSTORE_DB");
  return fromEnv ? fromEnv : DEFAULT_DB;
}

/** Fails with a usage error when the command got more or fewer positionals than allowed. */
export function positionals(
  values: string[],
  names: string[],
  command: string,
  optional = 0,
): string[] {
  if (values.length > names.length || values.length < names.length - optional) {
    const expected = names.length === 0 ? "no arguments" : names.join(" ");
    throw new UsageError(
      `${command} takes ${expected}, got ${
        values.length === 0 ? "none" : values.join(" ")
      }`,
      command,
    );
  }
  return values;
}

/** `--schema`, checked to go with a PostgreSQL location. */
export function schemaOption(
  schema: string | undefined,
  location: string,
  command: string,
): { schema?: string } {
  if (schema === undefined) return {};
  if (!isPostgresUrl(location)) {
    throw new UsageError("--schema goes with a postgres:// --db", command);
  }
  return { schema: schemaName("--schema", schema, command) };
}

/** `schema` if it is a schema name the store accepts, else a usage error naming `flag`. */
export function schemaName(
  flag: string,
  schema: string,
  command: string,
): string {
  try {
    return requireSchemaName(schema);
  } catch (error) {
    throw new UsageError(`${flag}: ${messageOf(error)}`, command);
  }
}

/** A store as messages show it: its location, and a PostgreSQL schema other than public. */
export function shownStore(location: string, schema?: string): string {
  return shownLocation(location) +
    (schema === undefined || schema === "public" ? "" : ` (schema ${schema})`);
}

/** A location as messages show it: no password, no raw control characters. */
export function shownLocation(location: string): string {
  return escapeControl(redactUrl(location));
}
