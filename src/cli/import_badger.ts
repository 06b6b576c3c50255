/**
 * `cli.ts import-badger`: bring a `badger backup` dump into the database, with a
 * progress bar on a terminal and every skipped key reported on stderr.
 *
 * @module
 */
import { importBadgerBackup, type ImportSummary } from "../badger/mod.ts";
import { messageOf, StoreError, TargetNotEmptyError } from "../errors.ts";
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
import { copyStore } from "../copy/copy.ts";
import { inspectStore } from "../admin/any_store.ts";
import { isPostgresUrl } from "../postgres/connection.ts";
import type { Command } from "./command.ts";
import { fields, formatBytes, type Output, toJsonText } from "./output.ts";
import { progressLine } from "./progress.ts";

const HELP =
  `Usage: deno run -A cli.ts import-badger FILE [--db PATH|URL] [--dry-run] [--json]

Imports a BadgerDB backup (written by \`badger backup --dir DB -f FILE\` or db.Backup in Go,
Badger v2/v3/v4) into the database, creating and migrating it if needed, in the same
transaction as the import. For each key only its newest version counts; deleted and
expired keys are skipped. <kind>/<id> becomes a resource (saved in place, its history
kept); <kind>/<kind>_audit/<resourceId>/<unixNanos> becomes an audit snapshot archived at
that time (kept as an orphan when its resource does not exist). Keys that cannot be mapped are listed on stderr by their hex bytes.

All or nothing: the whole dump is read and checked first; a truncated or undecodable dump
is an error naming the byte offset, and the database stays byte for byte as it was (a
missing one is not created). Badger's format has no checksum: damage that still decodes
is imported as it is. Importing the same dump twice changes nothing the second time.

Into PostgreSQL (--db postgres://…): the dump is imported into a private scratch SQLite
file, then copied into the store as \`copy\` does (one verified transaction); the store
must be empty, which --dry-run checks too (import into SQLite first to merge a dump
into existing data).

Options:
  --db PATH    ${DB_HELP}
  --schema S   ${SCHEMA_HELP}
  --dry-run    read and validate the whole dump and print the summary; write nothing
  --json       print the summary as one JSON document
`;

/** The `import-badger` command. */
export const importBadgerCommand: Command = {
  summary: "import a BadgerDB backup dump (badger backup) into the database",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      ...COMMON_OPTIONS,
      "dry-run": { type: "boolean" },
    }, "import-badger");
    const [file] = positionals(rest, ["FILE"], "import-badger");
    const path = dbPath(values.db, output);
    const where = schemaOption(values.schema, path, "import-badger");
    const progress = dumpProgress(output);
    const dryRun = values["dry-run"] ?? false;
    requireDump(file);
    let summary: ImportSummary;
    const scratch = isPostgresUrl(path)
      ? await Deno.makeTempDir({ prefix: "protostore-import-" })
      : undefined;
    try {
      const into = scratch ? `${scratch}/import.sqlite` : path;
      summary = await importBadgerBackup(into, file, {
        dryRun,
        onProgress: progress?.update,
        onInvalidKey: (key) =>
          output.err(
            `protostore: skipped key ${key.keyHex} (hex): ${
              escapeControl(key.reason)
            }\n`,
          ),
      });
      if (scratch !== undefined && !dryRun) {
        await copyStore(`${scratch}/import.sqlite`, path, {
          toSchema: where.schema,
        }).catch((error) => {
          // copy's own advice (--merge) names an option import-badger does not have.
          if (!(error instanceof TargetNotEmptyError)) throw error;
          throw notEmpty(error.target, error);
        });
      } else if (scratch !== undefined) {
        // The dry run read into an empty scratch file: it must still refuse what the
        // real import would refuse.
        const o = await inspectStore(path, where);
        if (
          o.resources + o.auditRecords + o.orphanAuditRecords +
                o.messageTypes.length > 0 || (o.revisions?.revision ?? 0) > 0
        ) {
          throw notEmpty(o.path);
        }
      }
    } finally {
      progress?.done();
      if (scratch !== undefined) {
        await Deno.remove(scratch, { recursive: true });
      }
    }
    output.out(
      values.json
        ? toJsonText(summary)
        : renderSummary(summary, shownStore(path, where.schema), output),
    );
    return 0;
  },
};

function notEmpty(target: string, cause?: unknown): StoreError {
  return new StoreError(
    `${target} is not empty: import-badger writes into an empty ` +
      "PostgreSQL store only; import the dump into a SQLite file, then merge " +
      "that into the store with copy --merge skip|overwrite (or import into " +
      "an empty schema); nothing was written",
    { code: "constraint", cause },
  );
}

function requireDump(file: string): void {
  try {
    if (!Deno.statSync(file).isFile) {
      throw new StoreError(`${file} is not a file`);
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError(
      `cannot read the dump ${file}: ${messageOf(error)}`,
    );
  }
}

function renderSummary(
  s: ImportSummary,
  shown: string,
  output: Output,
): string {
  const kinds = Object.entries(s.kinds).map(([kind, n]) =>
    `${escapeControl(kind)} ${n}`
  );
  return `${s.dryRun ? "Dry run of" : "Imported"} ${
    escapeControl(s.source ?? "stream")
  } ` +
    `${s.dryRun ? "against" : "into"} ${shown}` +
    (s.dryRun ? " (nothing written)" : "") + "\n" +
    fields(output, [
      ["records read", `${s.records} (${formatBytes(s.bytesRead)})`],
      ["keys seen", s.keysSeen],
      [
        "resources",
        `${s.resources}${kinds.length ? ` (${kinds.join(", ")})` : ""}; ` +
        `${s.resourcesUnchanged} already identical`,
      ],
      [
        "audit snapshots",
        `${s.auditRecords}; ${s.auditUnchanged} already present`,
      ],
      [
        "orphaned snapshots",
        `${s.orphanAuditRecords} (resource not in the database)`,
      ],
      ["skipped deleted", s.skippedDeleted],
      ["skipped expired", s.skippedExpired],
      [
        "skipped invalid",
        `${s.skippedInvalid}${s.skippedInvalid ? " (listed on stderr)" : ""}`,
      ],
      ["skipped internal", `${s.skippedInternal} (!badger! keys)`],
      ["elapsed", `${(s.elapsedMs / 1000).toFixed(2)} s`],
    ]);
}

/** The dump's progress on the progress line: a bar when the dump's size is known. */
function dumpProgress(output: Output) {
  const line = progressLine(output);
  if (line === undefined) return undefined;
  return {
    update(bytesRead: number, totalBytes?: number) {
      if (!totalBytes) {
        line.draw(`reading dump: ${formatBytes(bytesRead)}`);
      } else {
        line.draw(
          `${formatBytes(bytesRead)} / ${formatBytes(totalBytes)}`,
          bytesRead / totalBytes,
        );
      }
    },
    done: line.done,
  };
}
