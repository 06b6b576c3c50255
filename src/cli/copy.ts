/**
 * `cli.ts copy`: a whole store from one backend to another (`copyStore`), with a
 * progress bar on a terminal.
 *
 * @module
 */
import { type CopyResult, copyStore } from "../copy/copy.ts";
import type { CopiedTable } from "../copy/tables.ts";
import { parse, positionals, shownLocation } from "./args.ts";
import type { Command } from "./command.ts";
import { type Output, table, toJsonText, UsageError } from "./output.ts";
import { progressLine } from "./progress.ts";

const HELP =
  `Usage: deno run -A cli.ts copy --from SRC --to DST [--from-schema S] [--to-schema S]
                             [--batch-size N] [--json]

Copies a whole store — resources, audit histories (same ids, so the same order),
orphaned snapshots, message schemas, revisions and the change log — between any two
backends: SQLite to PostgreSQL, PostgreSQL to SQLite (a portable backup), SQLite to
SQLite. SRC and DST are database files, file: URLs or postgres:// URLs.

The target must be empty (a new file, a new or empty schema): a target that holds
anything is refused before a row is written. It is created and migrated if needed,
then written in one transaction; before the commit, row counts and per-table checksums
are compared with the source's, and any difference rolls everything back. A new file
appears only when the copy committed. The source is read in one consistent snapshot
(other processes may go on writing it; their later writes are not copied).

Options:
  --from SRC          the store to read (required)
  --to DST            the empty store to write (required)
  --from-schema S     PostgreSQL source: its schema (default public)
  --to-schema S       PostgreSQL target: its schema (default public; created if missing)
  --batch-size N      rows per batch read and written (default 2000; bounds memory)
  --json              print the result as one JSON document

Passwords in URLs are never printed.
`;

/** The `copy` command. */
export const copyCommand: Command = {
  summary: "copy a whole store between SQLite and PostgreSQL (--from, --to)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      from: { type: "string" },
      to: { type: "string" },
      "from-schema": { type: "string" },
      "to-schema": { type: "string" },
      "batch-size": { type: "string" },
      json: { type: "boolean" },
    }, "copy");
    positionals(rest, [], "copy");
    if (!values.from) throw new UsageError("copy needs --from SRC", "copy");
    if (!values.to) throw new UsageError("copy needs --to DST", "copy");
    let batchSize: number | undefined;
    if (values["batch-size"] !== undefined) {
      batchSize = Number(values["batch-size"]);
      if (!/^\d+$/.test(values["batch-size"]) || batchSize < 1) {
        throw new UsageError(
          `--batch-size takes a whole number >= 1, got ${
            JSON.stringify(values["batch-size"])
          }`,
          "copy",
        );
      }
    }
    const progress = progressLine(output);
    let current = "";
    let result: CopyResult;
    try {
      result = await copyStore(values.from, values.to, {
        fromSchema: values["from-schema"],
        toSchema: values["to-schema"],
        batchSize,
        onProgress: progress &&
          ((p) =>
            progress.draw(
              `${p.done.toLocaleString("en-US")} of ${
                p.total.toLocaleString("en-US")
              } rows (${p.table})`,
              p.total === 0 ? 1 : p.done / p.total,
              current !== (current = p.table),
            )),
      });
    } finally {
      progress?.done();
    }
    output.out(values.json ? toJsonText(result) : render(result, output));
    return 0;
  },
};

const LABELS: Record<CopiedTable, string> = {
  message_schemas: "message schemas",
  resources: "resources",
  resource_audit: "audit snapshots",
  resource_audit_orphans: "orphaned snapshots",
  resource_changes: "change log entries",
};

function render(result: CopyResult, output: Output): string {
  const rows = Object.entries(result.tables).map(([name, tally]) => [
    LABELS[name as CopiedTable],
    tally.rows,
  ]);
  const total = Object.values(result.tables).reduce((n, t) => n + t.rows, 0);
  return `Copied ${shownLocation(result.from)} to ${
    shownLocation(result.to)
  } ` +
    `in ${result.seconds.toFixed(1)} s (${
      Math.round(total / Math.max(result.seconds, 0.001))
    } rows/s):\n` +
    table(output, ["TABLE", "ROWS"], rows) +
    `revision ${result.revision} (change log compacted through ${result.compactedThrough})` +
    (result.changeLogDropped
      ? "; the source's revision is above its newest logged change, so the copy's " +
        "change log starts at that revision (watchers list again)"
      : "") +
    "\nverified: row counts and checksums of every table match the source\n";
}
