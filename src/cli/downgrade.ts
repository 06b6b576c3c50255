/**
 * `cli.ts downgrade`: rebuild the database into the Go store's v2 schema, so the old Go
 * daemon can write it again.
 *
 * @module
 */
import { downgrade } from "../migrate/downgrade.ts";
import { escapeControl } from "../decode/text.ts";
import { isPostgresUrl } from "../postgres/connection.ts";
import { COMMON_OPTIONS, DB_HELP, dbPath, parse, positionals } from "./args.ts";
import type { Command } from "./command.ts";
import { toJsonText, UsageError } from "./output.ts";

const HELP = `Usage: deno run -A cli.ts downgrade [--db PATH] [--json]

Rebuilds a protostore database into the Go store's v2 schema, in one transaction, so
the old Go daemon can open and write it again. Every resource and every audit snapshot is
kept with its id (snapshots of deleted resources go back into resource_audit); times go
back to the Go store's whole-second text; recorded message types are dropped. Stop every
protostore process first. Run migrate to upgrade the file again.

It works on a SQLite file only (the Go daemon's store is one): to hand a PostgreSQL
store back to the Go daemon, copy it to a file first (copy --from URL --to FILE), then
downgrade that file.

Options:
  --db PATH    ${DB_HELP}
  --json       print one JSON document
`;

/** The `downgrade` command. */
export const downgradeCommand: Command = {
  summary: "rebuild the database into the Go store's v2 schema (the way back)",
  help: HELP,
  run(args, output) {
    const { values, positionals: rest } = parse(
      args,
      COMMON_OPTIONS,
      "downgrade",
    );
    positionals(rest, [], "downgrade");
    const path = dbPath(values.db, output);
    if (isPostgresUrl(path) || values.schema !== undefined) {
      throw new UsageError(
        "downgrade rebuilds a SQLite file into the Go daemon's SQLite schema, not a " +
          "PostgreSQL store: copy it to a file first (cli.ts copy --from URL --to FILE), " +
          "then downgrade that file",
        "downgrade",
      );
    }
    const result = downgrade(path);
    if (values.json) {
      output.out(toJsonText(result));
      return 0;
    }
    const shown = escapeControl(path);
    output.out(
      result.fromVersion <= 2
        ? `${shown} is at schema version ${result.fromVersion}: already the Go store's schema, nothing changed\n`
        : `Downgraded ${shown} from schema version ${result.fromVersion} to the Go store's ` +
          `version 2: ${result.resources} resource(s), ${result.auditRecords} audit ` +
          `snapshot(s) (${result.orphanAuditRecords} of deleted resources)\n`,
    );
    return 0;
  },
};
