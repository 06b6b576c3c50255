/**
 * `cli.ts import`: read an NDJSON export back, all or nothing.
 *
 * @module
 */
import { importNdjson } from "../admin/ndjson_import.ts";
import { escapeControl } from "../decode/text.ts";
import { openStore } from "../store/store.ts";
import { COMMON_OPTIONS, parse, positionals, sqliteFile } from "./args.ts";
import type { Command } from "./command.ts";
import { table, toJsonText } from "./output.ts";

const HELP = `Usage: deno run -A cli.ts import FILE.ndjson [--db PATH] [--json]

Imports a file written by export into the database (created and migrated if needed), in
one transaction: every line, or none. A line that cannot be read is named by its line
number and nothing is written. Message bytes, times, hashes, tags, recorded types and
the order of each history come back as they were; into a database without snapshots the
snapshot ids too, and into a new database the revisions. A resource that already exists
in the database is refused.

Options:
  --db PATH    database file (default: $PROTOSTORE_DB, else ./protostore.sqlite)
  --json       print one JSON document
`;

/** The `import` command. */
export const importCommand: Command = {
  summary: "read an NDJSON export back into the database, all or nothing",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, COMMON_OPTIONS, "import");
    const [file] = positionals(rest, ["FILE.ndjson"], "import");
    const path = sqliteFile(values, output, "import");
    using store = openStore(path);
    const summary = await importNdjson(store, file);
    if (values.json) {
      output.out(toJsonText({ path, file, ...summary }));
      return 0;
    }
    output.out(
      `Imported ${escapeControl(file)} into ${
        escapeControl(path)
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
