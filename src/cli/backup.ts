/**
 * `cli.ts backup`: a consistent copy of the database while other processes keep writing
 * (SQLite's online backup API; `--vacuum` for a compacted copy), checked before success.
 *
 * @module
 */
import { backupDatabase } from "../admin/backup.ts";
import { escapeControl } from "../decode/text.ts";
import { COMMON_OPTIONS, parse, positionals, sqliteFile } from "./args.ts";
import type { Command } from "./command.ts";
import { formatBytes, toJsonText, UsageError } from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts backup --to FILE [--db PATH] [--vacuum] [--force] [--json]

Writes a consistent copy of the database to FILE while other processes keep writing it
(SQLite's online backup API; the copy is the database at one moment). The copy is
owner-only (0600), passes PRAGMA integrity_check before the command reports success,
and is put in place only when complete. An existing FILE is never overwritten without
--force.

Options:
  --db PATH    database file (default: $PROTOSTORE_DB, else ./protostore.sqlite)
  --to FILE    where to write the copy (required)
  --vacuum     write a compacted copy (VACUUM INTO): no free pages, so after a big
               prune it is smaller than the database
  --force      replace FILE if it exists
  --json       print one JSON document

Progress is shown on a terminal (stderr).
`;

/** The `backup` command. */
export const backupCommand: Command = {
  summary:
    "copy the database consistently while others write (--to FILE, --vacuum)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      ...COMMON_OPTIONS,
      to: { type: "string" },
      vacuum: { type: "boolean" },
      force: { type: "boolean" },
    }, "backup");
    positionals(rest, [], "backup");
    if (values.to === undefined || values.to === "") {
      throw new UsageError("backup needs --to FILE", "backup");
    }
    const path = sqliteFile(values, output, "backup");
    let shown = -1;
    const result = await backupDatabase(path, values.to, {
      vacuum: values.vacuum ?? false,
      force: values.force ?? false,
      onProgress: output.errIsTerminal
        ? ({ totalPages, remainingPages }) => {
          const percent = totalPages === 0
            ? 100
            : Math.floor((totalPages - remainingPages) * 100 / totalPages);
          if (percent === shown) return;
          shown = percent;
          output.err(
            `\rbackup: ${percent}% (${
              totalPages - remainingPages
            } of ${totalPages} pages)`,
          );
        }
        : undefined,
    });
    if (shown >= 0) output.err("\r\x1b[K");
    if (values.json) {
      output.out(toJsonText(result));
      return 0;
    }
    output.out(
      `Backed up ${escapeControl(path)} to ${escapeControl(result.to)}${
        result.vacuum ? " (compacted)" : ""
      }: ${formatBytes(result.bytes)}, integrity ok, ${
        (result.elapsedMs / 1000).toFixed(2)
      } s\n`,
    );
    return 0;
  },
};
