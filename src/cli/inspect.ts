/**
 * `cli.ts inspect`: the database overview, or one resource decoded.
 *
 * @module
 */
import type { DatabaseOverview } from "../admin/inspect.ts";
import { inspectStore, inspectStoreResource } from "../admin/any_store.ts";
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
import {
  DECODE_HELP,
  DECODE_OPTIONS,
  decodeOptions,
  renderDecoded,
} from "./decode_flags.ts";
import type { Command } from "./command.ts";
import { migrationTable } from "./migration_table.ts";
import { progressLine } from "./progress.ts";
import {
  bold,
  fields,
  formatBytes,
  formatTime,
  type Output,
  table,
  toJsonText,
  UsageError,
} from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts inspect [--db PATH|URL] [--json] [--check]
       deno run -A cli.ts inspect KIND ID [--db PATH|URL] [--json] [decoding options]

Without arguments: an overview of the database file — size, page size, journal mode,
SQLite version; schema version, applied and pending migrations, problems the migration
checks would refuse on; per kind the resources, audit records, orphaned audit records
(snapshots whose resource is gone), bytes and newest update.
With KIND ID: that resource, its message decoded to JSON — with the type the store
recorded, else with --descriptors, else as a schema-less wire dump.

Inspection never writes: the file is opened read-only and is not migrated; on
PostgreSQL every read runs in a READ ONLY transaction (sizes are those of the schema's
tables and indexes; --check checks that every row's message schema is recorded).

Options:
  --db PATH            ${DB_HELP}
  --schema NAME        ${SCHEMA_HELP}
  --json               print one JSON document
  --check              also run PRAGMA integrity_check and foreign_key_check;
                       exit 1 when they find problems
${DECODE_HELP}
`;

/** The `inspect` command. */
export const inspectCommand: Command = {
  summary: "show a database overview, or one resource decoded (KIND ID)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      ...COMMON_OPTIONS,
      ...DECODE_OPTIONS,
      check: { type: "boolean" },
    }, "inspect");
    positionals(rest, ["KIND", "ID"], "inspect", 2);
    if (rest.length === 1) {
      throw new UsageError(
        "inspect takes KIND ID together, or neither",
        "inspect",
      );
    }
    const path = dbPath(values.db, output);
    const where = schemaOption(values.schema, path, "inspect");
    if (rest.length === 2) {
      if (values.check) {
        throw new UsageError(
          "--check goes with the overview, not KIND ID",
          "inspect",
        );
      }
      const resource = await inspectStoreResource(path, rest[0], rest[1], {
        ...where,
        ...decodeOptions(values, "inspect"),
      });
      if (values.json) {
        output.out(toJsonText(resource));
        return 0;
      }
      output.out(renderDecoded(
        output,
        resource,
        [
          ["kind", resource.kind],
          ["id", resource.id],
          ["updated", formatTime(resource.updatedAt)],
        ],
        resource.revision === undefined ? [] : [[
          "revision",
          `${resource.revision} (created at ${resource.createRevision}; ` +
          `changes in the log: ${
            resource.changeRevisions?.length
              ? resource.changeRevisions.join(", ")
              : "none"
          })`,
        ]],
      ));
      return 0;
    }
    if (values.descriptors || values.type || values["type-for"]) {
      throw new UsageError("decoding options go with KIND ID", "inspect");
    }
    const progress = progressLine(output);
    let phase = "";
    let overview;
    try {
      overview = await inspectStore(path, {
        ...where,
        check: values.check ?? false,
        onProgress: progress && ((p) =>
          progress.draw(
            p.phase === "integrity check"
              ? "integrity check: reading every page…"
              : `${p.phase}: ${p.rows.toLocaleString("en-US")} row(s), ` +
                `${formatBytes(p.bytes)} of messages`,
            p.fraction,
            phase !== (phase = p.phase),
          )),
      });
    } finally {
      progress?.done();
    }
    output.out(
      values.json ? toJsonText(overview) : renderOverview(overview, output),
    );
    // A check that finds damage fails, so scripts can rely on the exit code.
    if (Array.isArray(overview.integrity)) {
      output.err(
        `protostore: integrity check of ${
          shownStore(path, where.schema)
        } found ${overview.integrity.length} problem(s): ${
          escapeControl(overview.advice ?? "")
        }\n`,
      );
      return 1;
    }
    return 0;
  },
};

function renderOverview(o: DatabaseOverview, output: Output): string {
  const parts: string[] = [];
  const postgres = o.backend === "postgres";
  parts.push(
    fields(output, [
      [postgres ? "store" : "file", o.path],
      [
        "size",
        postgres
          ? `${formatBytes(o.size)} (tables and indexes)`
          : `${formatBytes(o.size)}${
            o.walSize ? ` (+ ${formatBytes(o.walSize)} WAL)` : ""
          }, ` +
            `${o.pageCount} pages of ${o.pageSize} B, ${o.freePages} free`,
      ],
      ...(postgres ? [] : [["journal", o.journalMode] as [string, unknown]]),
      [postgres ? "server" : "sqlite", o.sqliteVersion],
      [
        "schema",
        `version ${o.schemaVersion}, ${o.pendingMigrations.length} pending`,
      ],
      [
        "types",
        o.messageTypes.length ? o.messageTypes.join(", ") : "none recorded",
      ],
      [
        "revision",
        o.revisions === null
          ? "none (schema before revisions: run migrate)"
          : `${o.revisions.revision}; change log: ${o.revisions.changes} change(s) ` +
            `after revision ${o.revisions.compactedThrough}`,
      ],
    ]),
  );
  parts.push(bold(output, "Migrations"));
  parts.push(
    o.appliedMigrations.length + o.pendingMigrations.length > 0
      ? migrationTable(output, o.appliedMigrations, o.pendingMigrations, false)
      : "  none: not a protostore database yet (run migrate)\n",
  );
  if (o.problems.length) {
    parts.push(
      bold(output, "Problems") + "\n" +
        // Problems and integrity reports quote the file's own names: escape them.
        o.problems.map((p) => `  ${escapeControl(p)}\n`).join(""),
    );
  }
  parts.push(bold(output, "Kinds"));
  parts.push(
    o.kinds.length
      ? table(output, [
        "KIND",
        "RESOURCES",
        "AUDIT",
        "ORPHANED",
        "BYTES",
        "AUDIT BYTES",
        "LAST UPDATED",
      ], [
        ...o.kinds.map((k) => [
          k.kind,
          k.resources,
          k.auditRecords,
          k.orphanAuditRecords,
          formatBytes(k.bytes),
          formatBytes(k.auditBytes),
          formatTime(k.lastUpdated),
        ]),
      ])
      : "  no resources\n",
  );
  parts.push(
    `${o.resources} resource(s), ${o.auditRecords} audit record(s), ` +
      `${o.orphanAuditRecords} orphaned audit record(s) (snapshots whose resource is gone)\n`,
  );
  parts.push(
    `integrity: ${
      o.integrity === null
        ? "not checked (use --check)"
        : o.integrity === "ok"
        ? "ok"
        : `${o.integrity.length} problem(s)\n${
          o.integrity.map((p) => `  ${escapeControl(p)}\n`).join("")
        }what to do: ${escapeControl(o.advice ?? "")}\n`
    }\n`,
  );
  return parts.join("\n");
}
