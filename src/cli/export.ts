/**
 * `cli.ts export`: the database as NDJSON on stdout, one line per message type, resource
 * and snapshot; `import` reads it back.
 *
 * @module
 */
import { exportNdjson } from "../admin/ndjson_export.ts";
import { COMMON_OPTIONS, parse, positionals, sqliteFile } from "./args.ts";
import type { Command } from "./command.ts";
import { UsageError } from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts export [--db PATH] [--kind K] [--history] [--decoded] > FILE.ndjson

Writes the database as NDJSON to stdout, read at one moment: a header line, one line per
recorded message type (its descriptors), then one per resource (kind, id, updated time,
type name, message bytes in base64, revisions), each followed with --history by its
snapshots oldest first (time, version hash, tag, bytes); orphaned snapshots last.
import FILE.ndjson reads it back.

Options:
  --db PATH    database file (default: $PROTOSTORE_DB, else ./protostore.sqlite)
  --kind K     only resources of kind K (and their snapshots)
  --history    include audit snapshots and orphaned snapshots
  --decoded    add "message": the message as protobuf JSON, decoded with the
               descriptors in the export (rows without a recorded type have none)
`;

/** The `export` command. */
export const exportCommand: Command = {
  summary:
    "write the database as NDJSON to stdout (--kind K, --history, --decoded)",
  help: HELP,
  run(args, output) {
    const { values, positionals: rest } = parse(args, {
      db: COMMON_OPTIONS.db,
      kind: { type: "string" },
      history: { type: "boolean" },
      decoded: { type: "boolean" },
    }, "export");
    positionals(rest, [], "export");
    if (values.kind === "") {
      throw new UsageError("--kind needs a value", "export");
    }
    const path = sqliteFile(values, output, "export");
    let batch = "";
    for (
      const line of exportNdjson(path, {
        kind: values.kind,
        history: values.history ?? false,
        decoded: values.decoded ?? false,
      })
    ) {
      batch += line + "\n";
      if (batch.length > 1 << 16) {
        output.out(batch);
        batch = "";
      }
    }
    output.out(batch);
    return 0;
  },
};
