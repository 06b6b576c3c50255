/**
 * `cli.ts backup`: a consistent copy of the store while other processes keep writing:
 * of a SQLite file through SQLite's online backup API (`--vacuum` for a compacted
 * copy); of PostgreSQL a portable SQLite file (`copyStore`); checked before success.
 *
 * @module
 */
import { backupStore } from "../admin/any_store.ts";
import { escapeControl } from "../decode/text.ts";
import { isPostgresUrl } from "../postgres/connection.ts";
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
import { formatBytes, toJsonText, UsageError } from "./output.ts";
import { progressLine } from "./progress.ts";

const HELP =
  `Usage: deno run -A cli.ts backup --to FILE [--db PATH|URL] [--vacuum] [--force] [--json]

Writes a consistent copy of the store to FILE, a SQLite database file, while other
processes keep writing (the copy is the store at one moment). The copy is owner-only
(0600), passes PRAGMA integrity_check before the command reports success, and is put
in place only when complete. An existing FILE is never overwritten without --force.

Of a SQLite file the copy is made with SQLite's online backup API. Of PostgreSQL
(--db postgres://…) it is a portable backup: the whole store — resources, histories
with their ids, orphaned snapshots, message schemas, revisions and the change log —
copied into a new SQLite file from one snapshot, verified by row counts and per-table
checksums (as copy --from URL --to FILE does). Open it like any store, or copy it back.

Options:
  --db PATH    ${DB_HELP}
  --schema S   ${SCHEMA_HELP}
  --to FILE    where to write the copy (required)
  --vacuum     SQLite: write a compacted copy (VACUUM INTO): no free pages, so after
               a big prune it is smaller than the database
  --force      replace FILE if it exists
  --json       print one JSON document

Progress is shown on a terminal (stderr).
`;

/** The `backup` command. */
export const backupCommand: Command = {
  summary:
    "copy the store consistently into a SQLite file while others write (--to FILE)",
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
    const location = dbPath(values.db, output);
    const where = schemaOption(values.schema, location, "backup");
    const postgres = isPostgresUrl(location);
    if (postgres && values.vacuum) {
      throw new UsageError(
        "--vacuum goes with a SQLite --db; a backup of PostgreSQL is always written compact",
        "backup",
      );
    }
    if (isPostgresUrl(values.to)) {
      throw new UsageError(
        "backup writes a SQLite file; to copy a store into PostgreSQL use " +
          "cli.ts copy --from SRC --to URL",
        "backup",
      );
    }
    const progress = progressLine(output);
    let result;
    try {
      result = await backupStore(location, values.to, {
        ...where,
        vacuum: values.vacuum ?? false,
        force: values.force ?? false,
        onProgress: progress &&
          (({ totalPages, remainingPages }) =>
            progress.draw(
              `${totalPages - remainingPages} of ${totalPages} pages`,
              totalPages === 0 ? 1 : (totalPages - remainingPages) / totalPages,
            )),
        onCopyProgress: progress &&
          ((p) =>
            progress.draw(
              `${p.done.toLocaleString("en-US")} of ${
                p.total.toLocaleString("en-US")
              } rows (${p.table})`,
              p.total === 0 ? 1 : p.done / p.total,
            )),
      });
    } finally {
      progress?.done();
    }
    if (values.json) {
      output.out(toJsonText(result));
      return 0;
    }
    output.out(
      `Backed up ${shownStore(location, where.schema)} to ${
        escapeControl(result.to)
      }${result.vacuum ? " (compacted)" : ""}: ${formatBytes(result.bytes)}${
        result.rows === undefined
          ? ""
          : `, ${result.rows} rows verified against the source`
      }, integrity ok, ${(result.elapsedMs / 1000).toFixed(2)} s\n`,
    );
    return 0;
  },
};
