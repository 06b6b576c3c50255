/**
 * The `protostore` command line: global flags, command dispatch, and the error policy
 * (one line on stderr and exit 1 on failure, exit 2 on usage errors, the stack only
 * with `--debug`). Each command lives in its own file and calls the library.
 *
 * @module
 */
import { messageOf, StoreError } from "../errors.ts";
import { escapeControl } from "../decode/text.ts";
import { sqliteErrorCode } from "../sqlite/errors.ts";
import { type Output, processOutput, UsageError } from "./output.ts";
import { auditHistoryCommand } from "./audit_history.ts";
import { backupCommand } from "./backup.ts";
import { importBadgerCommand } from "./import_badger.ts";
import { inspectCommand } from "./inspect.ts";
import { migrateCommand } from "./migrate.ts";
import type { Command } from "./command.ts";
import { DB_HELP, SCHEMA_HELP, suggestion } from "./args.ts";
import { downgradeCommand } from "./downgrade.ts";
import { exportCommand } from "./export.ts";
import { importCommand } from "./import.ts";
import { pruneCommand } from "./prune.ts";
import { restoreCommand } from "./restore.ts";

/** How the README runs the CLI: error messages name this, not a binary that does not exist. */
const CLI = "deno run -A cli.ts";
import { watchCommand } from "./watch.ts";
import { copyCommand } from "./copy.ts";
import { redactSecrets } from "../postgres/connection.ts";

const COMMANDS: Record<string, Command> = {
  migrate: migrateCommand,
  inspect: inspectCommand,
  "audit-history": auditHistoryCommand,
  "import-badger": importBadgerCommand,
  downgrade: downgradeCommand,
  prune: pruneCommand,
  backup: backupCommand,
  export: exportCommand,
  import: importCommand,
  restore: restoreCommand,
  watch: watchCommand,
  copy: copyCommand,
};

const TOOL_HELP =
  `protostore — administer a protostore database (SQLite or PostgreSQL)

Usage: deno run -A cli.ts <command> [options]

Commands:
${
    Object.entries(COMMANDS).map(([name, c]) =>
      `  ${name.padEnd(15)}${c.summary}`
    ).join("\n")
  }

Options common to every command:
  --db PATH      ${DB_HELP}
  --schema NAME  ${SCHEMA_HELP}
  --json         print one JSON document on stdout
  --debug        on failure, print the stack trace
  -h, --help     show help (also after a command: cli.ts inspect --help)

Exit codes: 0 ok, 1 failure (one line on stderr), 2 usage error.
`;

/**
 * Runs the CLI with `args` (without the program name) and returns the exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "./main.ts";
 *
 * const code = await main(["migrate", "--db", `${await Deno.makeTempDir()}/db.sqlite`, "--json"]);
 * assert(code === 0);
 * ```
 */
export async function main(
  args: string[],
  given: Output = processOutput(),
): Promise<number> {
  // Every line the CLI prints goes through the one redaction: a connection string's
  // password never reaches stdout or stderr, whichever message or driver error quotes it.
  const redact = literalRedaction([...args, given.env("PROTOSTORE_DB") ?? ""]);
  const output: Output = {
    ...given,
    out: (text) => given.out(redactSecrets(redact(text))),
    err: (text) => given.err(redactSecrets(redact(text))),
    data: given.data ?? given.out,
  };
  const debug = args.includes("--debug");
  const rest = args.filter((a) => a !== "--debug");
  const name = rest[0];
  if (
    name === undefined || name === "-h" || name === "--help" || name === "help"
  ) {
    if (name === undefined) {
      output.err(TOOL_HELP);
      return 2;
    }
    output.out(TOOL_HELP);
    return 0;
  }
  const command = COMMANDS[name];
  try {
    if (command === undefined) {
      const hint = suggestion(name, Object.keys(COMMANDS));
      throw new UsageError(
        `unknown command ${JSON.stringify(name)}${
          hint ? `; did you mean ${hint}?` : ""
        }`,
      );
    }
    if (rest.includes("-h") || rest.includes("--help")) {
      output.out(command.help);
      return 0;
    }
    return await command.run(rest.slice(1), output);
  } catch (error) {
    return report(error, name, debug, output);
  }
}

/**
 * Masks the `://user:password@` and `password=…` text of the connection strings the
 * CLI was given, literally. `redactSecrets` cannot tell where a password holding `/` or whitespace ends
 * in a URL that does not parse (the driver's "Invalid URL" error quotes it whole); the
 * CLI knows what it was given. Every `@` may end the user info, so each one is a
 * candidate, longest first.
 */
function literalRedaction(given: string[]): (text: string) => string {
  const secrets: [string, string][] = [];
  for (const value of given) {
    const start = value.indexOf("://");
    if (start < 0) continue;
    for (
      let at = value.indexOf("@", start);
      at >= 0;
      at = value.indexOf("@", at + 1)
    ) {
      const userinfo = value.slice(start + 3, at);
      const colon = userinfo.indexOf(":");
      if (colon < 0 || colon === userinfo.length - 1) continue;
      const user = userinfo.slice(0, colon);
      secrets.push([`://${userinfo}@`, `://${user}:***@`]);
    }
    // A `password=` value holding whitespace (which ends it for redactSecrets).
    for (
      const [, key, secret] of value.matchAll(
        /[?&]((?:ssl)?pass(?:word)?)=([^&]+)/gi,
      )
    ) {
      secrets.push([`${key}=${secret}`, `${key}=***`]);
    }
  }
  secrets.sort((a, b) => b[0].length - a[0].length);
  return (text) =>
    secrets.reduce((t, [secret, masked]) => t.replaceAll(secret, masked), text);
}

function report(
  error: unknown,
  name: string,
  debug: boolean,
  output: Output,
): number {
  // The reader went away (`| head`): stop quietly, as other Unix tools do.
  if (error instanceof Deno.errors.BrokenPipe) return 0;
  if (error instanceof UsageError) {
    const hint = COMMANDS[name] ? `${CLI} ${name} --help` : `${CLI} --help`;
    // node:util parseArgs messages span lines: fold them like other errors.
    const message = error.message.replace(/\s*\n\s*/g, " ");
    output.err(`protostore: ${escapeControl(message)} (see ${hint})\n`);
    return 2;
  }
  const message = messageOf(error);
  const code = error instanceof StoreError
    ? error.code
    : sqliteErrorCode(error);
  // A damaged page met by any command is a fact about the file, not a bug of the tool:
  // say what to do, as inspect --check does.
  const damaged = code === "corrupt" &&
    !/\.recover/.test(message);
  const known = error instanceof StoreError || damaged;
  const line = damaged
    ? `the database is damaged (${message}): run ${CLI} inspect --check to list ` +
      "the damage, then restore it from a backup, or recover what is readable with " +
      "`sqlite3 DAMAGED.sqlite .recover | sqlite3 RECOVERED.sqlite`"
    : known
    ? message
    : `unexpected error: ${message}`;
  // One line: multi-line messages (e.g. from SQLite) are folded.
  output.err(`protostore: ${escapeControl(line.replace(/\s*\n\s*/g, " "))}\n`);
  if (debug && error instanceof Error && error.stack) {
    output.err(error.stack + "\n");
  } else if (!known) {
    output.err("protostore: run again with --debug for the stack trace\n");
  }
  return 1;
}
