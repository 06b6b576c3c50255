/**
 * `cli.ts audit-history`: a resource's snapshots newest first, with field-level diffs,
 * or one snapshot in full. Streams: a history of 100,000 snapshots is printed as it is
 * read, and `--limit` is applied in SQL.
 *
 * @module
 */
import { formatChange } from "../decode/diff.ts";
import type { HistoryEntry } from "../admin/history.ts";
import { openStoreHistory, storeAuditSnapshot } from "../admin/any_store.ts";
import { escapeControl } from "../decode/text.ts";
import {
  COMMON_OPTIONS,
  DB_HELP,
  dbPath,
  parse,
  positionals,
  SCHEMA_HELP,
  schemaOption,
} from "./args.ts";
import {
  DECODE_HELP,
  DECODE_OPTIONS,
  decodedWithLabel,
  decodeOptions,
  renderDecoded,
} from "./decode_flags.ts";
import type { Command } from "./command.ts";
import {
  bold,
  dim,
  formatBytes,
  formatTime,
  type Output,
  toJsonText,
  UsageError,
} from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts audit-history KIND ID [--db PATH|URL] [--json] [--limit N]
                                      [--diff] [--show AUDIT_ID] [decoding options]

Lists the audit snapshots of resource KIND ID, newest first: id, archived time, version
hash (shortened), tag, size — under the live resource's current state. Snapshots of a
deleted resource that were kept as orphans are listed too, marked as such.

Options:
  --db PATH            ${DB_HELP}
  --schema NAME        ${SCHEMA_HELP}
  --json               print one JSON object: the live resource ("live", with
                       "changes" under --diff) and the snapshots, newest first
  --limit N            at most N snapshots (the newest)
  --diff               field-level changes of each snapshot against the one before it,
                       and of the live resource against the newest snapshot
  --show AUDIT_ID      one snapshot, decoded in full
${DECODE_HELP}

Exit codes: 0 (also when the resource has no history), 1 unknown resource, 2 usage error.
`;

/** The `audit-history` command. */
export const auditHistoryCommand: Command = {
  summary: "list a resource's snapshots newest first (--diff, --show AUDIT_ID)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      ...COMMON_OPTIONS,
      ...DECODE_OPTIONS,
      limit: { type: "string" },
      diff: { type: "boolean" },
      show: { type: "string" },
    }, "audit-history");
    const [kind, id] = positionals(rest, ["KIND", "ID"], "audit-history");
    const path = dbPath(values.db, output);
    const decode = {
      ...schemaOption(values.schema, path, "audit-history"),
      ...decodeOptions(values, "audit-history"),
    };
    if (values.show !== undefined) {
      if (values.limit !== undefined || values.diff) {
        throw new UsageError(
          "--show cannot be combined with --limit or --diff",
          "audit-history",
        );
      }
      const entry = await storeAuditSnapshot(
        path,
        kind,
        id,
        wholeNumber(values.show, "--show"),
        decode,
      );
      output.out(
        values.json ? toJsonText(entry) : renderSnapshot(entry, output),
      );
      return 0;
    }
    const limit = values.limit === undefined
      ? undefined
      : wholeNumber(values.limit, "--limit");
    using history = await openStoreHistory(path, kind, id, {
      ...decode,
      limit,
      diff: values.diff,
    });
    if (values.json) {
      // One JSON document, the snapshots written entry by entry as they stream in.
      const head = toJsonText({
        kind,
        id,
        total: history.total,
        orphaned: history.orphaned,
        live: history.resource && {
          updatedAt: history.resource.updatedAt,
          size: history.resource.size,
          type: history.resource.type,
          decodedWith: history.resource.decodedWith,
          message: history.resource.message,
          ...(history.resource.reason
            ? { reason: history.resource.reason }
            : {}),
          ...(values.diff ? { changes: history.liveChanges } : {}),
        },
      }).trimEnd();
      output.out(`${head.slice(0, -2)},\n  "snapshots": [`);
      let first = true;
      for (const entry of history.entries()) {
        output.out(
          (first ? "\n" : ",\n") + indent(toJsonText(entry).trimEnd(), 4),
        );
        first = false;
      }
      output.out(first ? "]\n}\n" : "\n  ]\n}\n");
      return 0;
    }
    const title = `${escapeControl(kind)}/${escapeControl(id)}`;
    if (history.resource) {
      output.out(
        `${
          bold(output, title)
        }: ${history.total} snapshot(s); live resource updated ` +
          `${formatTime(history.resource.updatedAt)}, ${
            formatBytes(history.resource.size)
          }, ` +
          `${
            decodedWithLabel(
              history.resource.decodedWith,
              history.resource.type,
            )
          }\n`,
      );
    } else {
      output.out(
        `${
          bold(output, title)
        }: the resource no longer exists; ${history.total} orphaned ` +
          "snapshot(s) kept\n",
      );
    }
    if (history.total === 0) {
      output.out("no audit history\n");
      return 0;
    }
    output.out(
      "\n" +
        bold(output, row("ID", "ARCHIVED", "VERSION HASH", "TAG", "SIZE")) +
        "\n",
    );
    if (history.resource) {
      output.out(
        row(
          "live",
          formatTime(history.resource.updatedAt),
          "",
          "(current state)",
          formatBytes(history.resource.size),
        ) + "\n",
      );
      if (history.liveChanges) {
        output.out(changeLines(history.liveChanges, output));
      }
    }
    let shown = 0;
    for (const entry of history.entries()) {
      output.out(
        row(
          String(entry.id),
          formatTime(entry.archivedAt),
          shortHash(entry.versionHash),
          entry.tag ?? "-",
          formatBytes(entry.size),
        ) + "\n",
      );
      if (entry.changes !== undefined) {
        output.out(
          entry.changes === null
            ? dim(output, "      (oldest snapshot)\n")
            : changeLines(entry.changes, output),
        );
      }
      shown++;
    }
    if (shown < history.total) {
      output.out(
        dim(
          output,
          `… ${history.total - shown} older snapshot(s) not shown (--limit)\n`,
        ),
      );
    }
    return 0;
  },
};

function wholeNumber(text: string, flag: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(
      `${flag} takes a whole number, got ${JSON.stringify(text)}`,
      "audit-history",
    );
  }
  return Number(text);
}

// Fixed widths, so rows can be printed as they stream in.
function row(
  id: string,
  archived: string,
  hash: string,
  tag: string,
  size: string,
): string {
  return [
    id.padStart(8),
    archived.padEnd(27),
    hash.padEnd(14),
    fit(escapeControl(tag), 20).padEnd(20),
    size.padStart(10),
  ].join("  ").trimEnd();
}

function fit(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width
    ? text
    : chars.slice(0, width - 1).join("") + "…";
}

function shortHash(hash: string | null): string {
  if (!hash) return "-";
  return fit(escapeControl(hash), 14);
}

function changeLines(
  changes: Parameters<typeof formatChange>[0][],
  output: Output,
): string {
  if (changes.length === 0) return dim(output, "      (no changes)\n");
  return changes.map((c) => `      ${escapeControl(formatChange(c))}\n`).join(
    "",
  );
}

function indent(text: string, spaces: number): string {
  const pad = " ".repeat(spaces);
  return text.split("\n").map((line) => pad + line).join("\n");
}

function renderSnapshot(entry: HistoryEntry, output: Output): string {
  return renderDecoded(output, entry, [
    ["snapshot", entry.id],
    ["archived", formatTime(entry.archivedAt)],
    ["version hash", entry.versionHash],
    ["tag", entry.tag],
  ]);
}
