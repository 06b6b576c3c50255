/**
 * `cli.ts copy`: a whole store from one backend to another (`copyStore`), with a
 * progress bar on a terminal.
 *
 * @module
 */
import { type CopyResult, copyStore, MERGE_MODES } from "../copy/copy.ts";
import type { MergeMode } from "../copy/endpoint.ts";
import type { CopiedTable } from "../copy/tables.ts";
import { parse, positionals, schemaName } from "./args.ts";
import { escapeControl } from "../decode/text.ts";
import { isPostgresUrl } from "../postgres/connection.ts";
import type { Command } from "./command.ts";
import { type Output, table, toJsonText, UsageError } from "./output.ts";
import { progressLine } from "./progress.ts";

const HELP =
  `Usage: deno run -A cli.ts copy --from SRC --to DST [--from-schema S] [--to-schema S]
                             [--merge skip|overwrite] [--batch-size N] [--json]

Copies a whole store — resources, audit histories (same ids, so the same order),
orphaned snapshots, message schemas, revisions and the change log — between any two
backends: SQLite to PostgreSQL, PostgreSQL to SQLite (a portable backup), SQLite to
SQLite. SRC and DST are database files, file: URLs or postgres:// URLs.

The target is created and migrated if needed (a new file appears, and a new
PostgreSQL schema is created, only when the copy commits) and written in one
transaction; before the commit, row counts and per-table checksums are compared with
the source's, and any difference rolls everything back. The source is read in one
consistent snapshot (other processes may go on writing it; their later writes are
not copied).

A target that holds anything is refused before a row is written, unless --merge says
how to merge into it. Merging writes the source's resources as new changes of the
target (each at its next revision, with a change-log entry its watchers see): a
resource the target lacks is inserted; one it holds with other bytes or type is kept
(skip) or replaced (overwrite); an equal one is left alone. Snapshots and orphaned
snapshots are appended with new ids (histories stay in time order) unless an equal
one (kind, resource id, time, version hash, tag, bytes) is there, so running the same
merge again changes nothing. Message schemas are matched by digest. The source's
change log is not merged. All or nothing; verified before the commit (every source
row is in the target; each table grew by what was added). Into an empty target,
--merge changes nothing: the copy is exact.

Options:
  --from SRC          the store to read (required)
  --to DST            the empty store to write (required)
  --from-schema S     PostgreSQL source: its schema (default public)
  --to-schema S       PostgreSQL target: its schema (default public; created if missing)
  --merge MODE        into a non-empty target: skip (keep the target's resource) or
                      overwrite (replace it with the source's)
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
      merge: { type: "string" },
      json: { type: "boolean" },
    }, "copy");
    positionals(rest, [], "copy");
    if (!values.from) throw new UsageError("copy needs --from SRC", "copy");
    if (!values.to) throw new UsageError("copy needs --to DST", "copy");
    // A schema names a place in PostgreSQL only: ignoring it would copy somewhere else.
    for (const side of ["from", "to"] as const) {
      const schema = values[`${side}-schema`];
      if (schema === undefined) continue;
      if (!isPostgresUrl(values[side]!)) {
        throw new UsageError(
          `--${side}-schema goes with a postgres:// --${side}`,
          "copy",
        );
      }
      schemaName(`--${side}-schema`, schema, "copy");
    }
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
    const merge = values.merge as MergeMode | undefined;
    if (merge !== undefined && !MERGE_MODES.includes(merge)) {
      throw new UsageError(
        `--merge takes one of ${MERGE_MODES.join(", ")}, got ${
          JSON.stringify(values.merge)
        }`,
        "copy",
      );
    }
    const progress = progressLine(output);
    let current = "";
    let result: CopyResult;
    try {
      result = await copyStore(values.from, values.to, {
        fromSchema: values["from-schema"],
        toSchema: values["to-schema"],
        batchSize,
        merge,
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
  if (result.merge !== undefined) return renderMerge(result, output);
  const rows = Object.entries(result.tables).map(([name, tally]) => [
    LABELS[name as CopiedTable],
    tally.rows,
  ]);
  const total = Object.values(result.tables).reduce((n, t) => n + t.rows, 0);
  // The labels are redacted already and may end in " (schema S)", which is no URL.
  return `Copied ${escapeControl(result.from)} to ${
    escapeControl(result.to)
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

function renderMerge(result: CopyResult, output: Output): string {
  const m = result.merge!;
  const r = m.resources;
  const rows = [
    ["resources", r.inserted, r.replaced, r.skipped, r.unchanged],
    ["audit snapshots", m.snapshotsAdded, 0, 0, m.snapshotsPresent],
    ["orphaned snapshots", m.orphansAdded, 0, 0, m.orphansPresent],
  ];
  return `Merged ${escapeControl(result.from)} into ${
    escapeControl(result.to)
  } (--merge ${m.mode}) in ${result.seconds.toFixed(1)} s:\n` +
    table(output, ["", "ADDED", "REPLACED", "SKIPPED", "ALREADY THERE"], rows) +
    `message schemas added: ${m.schemasAdded}\n` +
    `revision ${m.revisionBefore} -> ${result.revision} ` +
    `(${r.inserted + r.replaced} change(s), one per resource written)\n` +
    "verified: every row of the source is in the target; each table grew by what was added\n";
}
