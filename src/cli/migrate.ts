/**
 * `cli.ts migrate`: apply pending migrations, list status, or show a dry run.
 *
 * @module
 */
import { migrateStore, storeMigrationStatus } from "../admin/any_store.ts";
import { escapeControl } from "../decode/text.ts";
import {
  COMMON_OPTIONS,
  DB_HELP,
  dbPath,
  parse,
  positionals,
  SCHEMA_HELP,
  schemaOption,
  shownStore,
} from "./args.ts";
import type { Command } from "./command.ts";
import { migrationTable } from "./migration_table.ts";
import { colored, type Output, toJsonText, UsageError } from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts migrate [--db PATH|URL] [--status] [--dry-run] [--json]

Brings the database to this protostore's schema by applying the pending files of
migrations/ in order, each in its own transaction with its schema_version row. A new
database file (and its directory) is created, readable by the owner only. On
PostgreSQL (--db postgres://…) the files of migrations/postgres/ apply in one
transaction, under an advisory lock, in the schema given by --schema.

Options:
  --db PATH    ${DB_HELP}
  --schema S   ${SCHEMA_HELP}
  --status     list applied migrations (time, checksum) and pending ones; change nothing
  --dry-run    show what would be applied; write nothing, not even a new empty file
  --json       print one JSON document

It refuses, before writing anything, when an applied file was edited, when the database
was written by newer code, or when the schema was tampered with.
`;

/** The `migrate` command. */
export const migrateCommand: Command = {
  summary:
    "apply pending migrations (--status lists them, --dry-run shows them)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      ...COMMON_OPTIONS,
      status: { type: "boolean" },
      "dry-run": { type: "boolean" },
    }, "migrate");
    positionals(rest, [], "migrate");
    if (values.status && values["dry-run"]) {
      throw new UsageError(
        "--status and --dry-run cannot be combined",
        "migrate",
      );
    }
    const path = dbPath(values.db, output);
    const where = schemaOption(values.schema, path, "migrate");
    if (values.status) {
      return await status(path, where, values.json ?? false, output);
    }
    const shown = shownStore(path, where.schema);
    const result = await migrateStore(path, {
      ...where,
      dryRun: values["dry-run"] ?? false,
    });
    if (values.json) {
      output.out(toJsonText(result));
      return 0;
    }
    if (result.applied.length === 0) {
      output.out(
        `${shown} is up to date (schema version ${result.schemaVersion})\n`,
      );
      return 0;
    }
    const verb = result.dryRun ? "Would apply" : "Applied";
    output.out(
      `${verb} ${result.applied.length} migration(s) to ${shown}:\n` +
        result.applied.map((m) => `  ${m.name}\n`).join("") +
        `${
          result.dryRun ? "Would be" : "Now"
        } at schema version ${result.schemaVersion}` +
        (result.dryRun ? " (dry run: nothing written)\n" : "\n"),
    );
    return 0;
  },
};

async function status(
  path: string,
  where: { schema?: string },
  json: boolean,
  output: Output,
): Promise<number> {
  const s = await storeMigrationStatus(path, where);
  if (json) {
    output.out(toJsonText(s));
    return 0;
  }
  output.out(
    `${shownStore(path, where.schema)}${
      s.exists ? "" : " (does not exist yet)"
    }: schema version ${s.schemaVersion}, ` +
      `${s.pending.length} pending\n\n` +
      migrationTable(output, s.applied, s.pending, true),
  );
  for (const problem of s.problems) {
    // Problems quote the database's own text (names in schema_version, triggers).
    output.out(
      `${colored(output, 31, "problem:")} ${escapeControl(problem)}\n`,
    );
  }
  return 0;
}
