/**
 * `cli.ts export`: the store (SQLite or PostgreSQL) as NDJSON on stdout, one line per
 * message type, resource and snapshot; `import` reads it back.
 *
 * @module
 */
import { exportStore } from "../admin/any_store.ts";
import {
  COMMON_OPTIONS,
  DB_HELP,
  dbPath,
  parse,
  positionals,
  SCHEMA_HELP,
  schemaOption,
} from "./args.ts";
import type { Command } from "./command.ts";
import { UsageError } from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts export [--db PATH|URL] [--kind K] [--history] [--decoded] > FILE.ndjson

Writes the store as NDJSON to stdout, read at one moment: a header line, one line per
recorded message type (its descriptors), then one per resource (kind, id, updated time,
type name, message bytes in base64, revisions), each followed with --history by its
snapshots oldest first (time, version hash, tag, bytes); orphaned snapshots last.
import FILE.ndjson reads it back. The same store gives the same lines from a SQLite
file and from PostgreSQL (read there in one REPEATABLE READ READ ONLY transaction);
rows are streamed, so memory stays bounded whatever the size.

Options:
  --db PATH    ${DB_HELP}
  --schema S   ${SCHEMA_HELP}
  --kind K     only resources of kind K (and their snapshots)
  --history    include audit snapshots and orphaned snapshots
  --decoded    add "message": the message as protobuf JSON, decoded with the
               descriptors in the export (rows without a recorded type have none)
`;

/** The `export` command. */
export const exportCommand: Command = {
  summary:
    "write the store as NDJSON to stdout (--kind K, --history, --decoded)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      db: COMMON_OPTIONS.db,
      schema: COMMON_OPTIONS.schema,
      kind: { type: "string" },
      history: { type: "boolean" },
      decoded: { type: "boolean" },
    }, "export");
    positionals(rest, [], "export");
    if (values.kind === "") {
      throw new UsageError("--kind needs a value", "export");
    }
    const location = dbPath(values.db, output);
    // The lines are the store's data: written as they are, not redacted.
    const write = output.data ?? output.out;
    let batch = "";
    for await (
      const line of exportStore(location, {
        ...schemaOption(values.schema, location, "export"),
        kind: values.kind,
        history: values.history ?? false,
        decoded: values.decoded ?? false,
      })
    ) {
      batch += line + "\n";
      if (batch.length > 1 << 16) {
        write(batch);
        batch = "";
      }
    }
    write(batch);
    return 0;
  },
};
