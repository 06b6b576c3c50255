/**
 * Argument parsing shared by the commands: node:util `parseArgs` with usage errors
 * instead of exceptions, and the `--db` default.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { messageOf } from "../errors.ts";
import { type Output, UsageError } from "./output.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Options every command takes. */
export const COMMON_OPTIONS = {
  db: { type: "string" },
  json: { type: "boolean" },
} as const satisfies Options;

/**
 * Parses `args` strictly: unknown options and missing values become {@linkcode UsageError}s.
 */
export function parse<O extends Options>(
  args: string[],
  options: O,
  command: string,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(
      messageOf(error),
      command,
    );
  }
}

const DEFAULT_DB = "./protostore.sqlite";

/** The `--db PATH` line of every help text, after the option name. */
export const DB_HELP =
  `database file (default: $PROTOSTORE_DB, else ${DEFAULT_DB})`;

/** The database path: `--db`, else `$PROTOSTORE_DB`, else `./protostore.sqlite`. */
export function dbPath(flag: string | undefined, output: Output): string {
  if (flag !== undefined) {
    if (flag === "") throw new UsageError("--db needs a file path");
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
