/**
 * `cli.ts import`: read an NDJSON export back into a store (SQLite or PostgreSQL), all
 * or nothing.
 *
 * @module
 */
import { importStore } from "../admin/any_store.ts";
import { escapeControl } from "../decode/text.ts";
import { isPostgresUrl, redactUrl } from "../postgres/connection.ts";
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
import { table, toJsonText } from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts import FILE.ndjson [--db PATH|URL] [--schema S] [--json]

Imports a file written by export into the store (created and migrated if needed), in
one transaction: every line, or none. A line that cannot be read is named by its line
number and nothing is written. Message bytes, times, hashes, tags, recorded types and
the order of each history come back as they were; into a store without snapshots the
snapshot ids too, and into a new store the revisions. Into a store that has revisions,
every imported resource takes one new revision, in the change feed (watchers see the
import). A resource that already exists in the store is refused. The same rules hold
on a SQLite file and on PostgreSQL (where NUL in a kind, id, tag or hash is refused).

Options:
  --db PATH    ${DB_HELP}
  --schema S   ${SCHEMA_HELP}
  --json       print one JSON document
`;

/** The `import` command. */
export const importCommand: Command = {
  summary: "read an NDJSON export back into the store, all or nothing",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, COMMON_OPTIONS, "import");
    const [file] = positionals(rest, ["FILE.ndjson"], "import");
    const location = dbPath(values.db, output);
    const where = schemaOption(values.schema, location, "import");
    const summary = await importStore(location, file, where);
    if (values.json) {
      const path = isPostgresUrl(location) ? redactUrl(location) : location;
      output.out(toJsonText({ path, file, ...summary }));
      return 0;
    }
    output.out(
      `Imported ${escapeControl(file)} into ${
        shownStore(location, where.schema)
      }: ${summary.resources} resource(s), ` +
        `${summary.snapshots} snapshot(s), ${summary.orphans} orphaned snapshot(s), ` +
        `${summary.newSchemas} new message type(s)\n`,
    );
    const kinds = Object.entries(summary.kinds);
    if (kinds.length > 0) {
      output.out(
        "\n" + table(
          output,
          ["KIND", "RESOURCES", "SNAPSHOTS", "ORPHANS"],
          kinds.map(([k, c]) => [k, c.resources, c.snapshots, c.orphans]),
        ),
      );
    }
    return 0;
  },
};
