/**
 * `cli.ts prune`: remove old audit snapshots (keep the newest N per resource, only older
 * than a duration), tagged ones kept; per-kind counts, a dry run, and `--vacuum` to give
 * the freed space back to the file system.
 *
 * @module
 */
import { pruneHistory, vacuumStore } from "../admin/prune.ts";
import type { VacuumResult } from "../admin/prune.ts";
import { pruneStore } from "../admin/store_lifecycle.ts";
import { storeMigrationStatus } from "../admin/any_store.ts";
import { StoreError } from "../errors.ts";
import { pgLabel } from "../admin/postgres.ts";
import { escapeControl } from "../decode/text.ts";
import { isPostgresUrl } from "../postgres/connection.ts";
import type { PruneResult } from "../store/retention.ts";
import { openStore } from "../store/store.ts";
import {
  COMMON_OPTIONS,
  dbPath,
  parse,
  positionals,
  schemaOption,
} from "./args.ts";
import type { Command } from "./command.ts";
import {
  formatBytes,
  formatTime,
  table,
  toJsonText,
  UsageError,
} from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts prune [--db PATH|URL] [--kind K] [--id ID] [--keep-last N]
                              [--older-than AGE] [--include-tagged] [--orphans]
                              [--dry-run] [--vacuum] [--json]

Removes old audit snapshots. --keep-last N keeps the newest N of each resource;
--older-than AGE removes only snapshots archived more than AGE ago (30d, 12h, 90m, 2w,
or a date such as 2026-01-31); with both, a snapshot goes only if it is outside the
newest N and older. One of the two is required. Tagged snapshots are kept unless
--include-tagged; orphaned snapshots (whose resource is gone) only with --orphans.

Options:
  --db PATH|URL      database file or postgres:// URL (default: $PROTOSTORE_DB, else
                     ./protostore.sqlite); passwords are never printed
  --schema NAME      PostgreSQL: the schema holding the store (default public)
  --kind K           only resources of kind K
  --id ID            only resource K/ID (needs --kind)
  --keep-last N      keep the newest N snapshots of each resource
  --older-than AGE   remove only snapshots older than AGE
  --include-tagged   remove tagged snapshots too
  --orphans          prune orphaned snapshots too, by the same rules
  --dry-run          print what would be removed, per kind; write nothing
  --vacuum           SQLite: afterwards, rebuild the file so it shrinks (holds the
                     write lock for the whole rebuild; backup --vacuum --to FILE
                     does not); refused on PostgreSQL
  --json             print one JSON document

The file does not shrink by itself after a prune: SQLite keeps the freed pages and
reuses them for later writes. Use --vacuum, or write a compacted copy with
backup --vacuum --to FILE. On PostgreSQL, autovacuum makes the space reusable; each
batch of resources is one short transaction, so writers never wait for the prune.
`;

/** The `prune` command. */
export const pruneCommand: Command = {
  summary:
    "remove old audit snapshots (--keep-last N, --older-than 30d, --dry-run)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      ...COMMON_OPTIONS,
      kind: { type: "string" },
      id: { type: "string" },
      "keep-last": { type: "string" },
      "older-than": { type: "string" },
      "include-tagged": { type: "boolean" },
      orphans: { type: "boolean" },
      "dry-run": { type: "boolean" },
      vacuum: { type: "boolean" },
    }, "prune");
    positionals(rest, [], "prune");
    const keepLast = values["keep-last"] === undefined
      ? undefined
      : wholeNumber(values["keep-last"], "--keep-last");
    const olderThan = values["older-than"] === undefined
      ? undefined
      : parseAge(values["older-than"], new Date());
    if (keepLast === undefined && olderThan === undefined) {
      throw new UsageError(
        "prune needs --keep-last N or --older-than AGE (it never removes every snapshot)",
        "prune",
      );
    }
    if (values.id !== undefined && values.kind === undefined) {
      throw new UsageError("--id needs --kind", "prune");
    }
    if (values.vacuum && values["dry-run"]) {
      throw new UsageError(
        "--vacuum and --dry-run cannot be combined",
        "prune",
      );
    }
    for (const flag of ["kind", "id"] as const) {
      if (values[flag] === "") {
        throw new UsageError(`--${flag} needs a value`, "prune");
      }
    }
    const location = dbPath(values.db, output);
    const where = schemaOption(values.schema, location, "prune");
    const postgres = isPostgresUrl(location);
    if (values.vacuum && postgres) {
      throw new UsageError(
        "--vacuum rebuilds a SQLite file; on PostgreSQL autovacuum makes the freed " +
          "space reusable (VACUUM FULL shrinks the tables, locking them): run without --vacuum",
        "prune",
      );
    }
    const dryRun = values["dry-run"] ?? false;
    const options = {
      kind: values.kind,
      id: values.id,
      keepLast,
      olderThan,
      keepTagged: !values["include-tagged"],
      orphans: values.orphans ?? false,
      dryRun,
    };
    const label = postgres ? pgLabel({ url: location, ...where }) : location;
    // A write opens with migrate, which would turn a mistyped --db or --schema into a
    // new, empty store that "removed 0": refuse it as restore and export do.
    if (!dryRun && !(await storeMigrationStatus(location, where)).exists) {
      throw new StoreError(
        postgres
          ? `no store at ${label}: schema ${
            where.schema ?? "public"
          } holds no protostore tables; run the migrate command (or check --db and --schema)`
          : `no database at ${location}: the file does not exist`,
        { code: "cant_open" },
      );
    }
    let result: PruneResult;
    let vacuum: VacuumResult | undefined;
    if (postgres) {
      result = await pruneStore(location, { ...where, ...options });
    } else {
      using store = openStore(location, { readOnly: dryRun, migrate: !dryRun });
      result = pruneHistory(store, options);
      if (values.vacuum) vacuum = vacuumStore(store);
    }
    if (values.json) {
      output.out(
        toJsonText({ path: label, ...result, vacuum: vacuum ?? null }),
      );
      return 0;
    }
    const rules = [
      keepLast === undefined
        ? null
        : `keep the newest ${keepLast} per resource`,
      olderThan === undefined ? null : `older than ${formatTime(olderThan)}`,
      values["include-tagged"] ? "tagged included" : "tagged kept",
      values.orphans ? "orphans included" : "orphans kept",
    ].filter((r) => r !== null).join(", ");
    output.out(
      `${
        dryRun ? "Would remove" : "Removed"
      } ${result.removed} snapshot(s) from ${
        escapeControl(label)
      } (${rules})\n`,
    );
    const kinds = Object.entries(result.kinds);
    if (kinds.length > 0) {
      output.out(
        "\n" + table(
          output,
          ["KIND", "SNAPSHOTS", "ORPHANS"],
          kinds.map(([kind, n]) => [kind, n.audit, n.orphans]),
        ),
      );
    }
    if (vacuum) {
      output.out(
        `\nvacuum: ${formatBytes(vacuum.bytesBefore)} -> ${
          formatBytes(vacuum.bytesAfter)
        }\n`,
      );
    } else if (!dryRun && result.removed > 0 && !postgres) {
      output.out(
        "\nThe file keeps its size: SQLite reuses the freed pages for later writes. " +
          "To shrink it, run prune --vacuum, or write a compacted copy with " +
          "backup --vacuum --to FILE.\n",
      );
    }
    return 0;
  },
};

function wholeNumber(text: string, flag: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(
      `${flag} takes a whole number, got ${JSON.stringify(text)}`,
      "prune",
    );
  }
  return Number(text);
}

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * `30d`, `12h`, `90m`, `45s`, `2w` before `now`, or a date/time (`2026-01-31`,
 * `2026-01-31T12:00:00Z`; without a zone, UTC).
 */
export function parseAge(text: string, now: Date): Date {
  const match = /^(\d+)([smhdw])$/.exec(text);
  if (match) {
    return new Date(now.getTime() - Number(match[1]) * UNIT_MS[match[2]]);
  }
  if (
    /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/
      .test(text)
  ) {
    const iso = text.replace(" ", "T");
    const zoned = /T.*(Z|[+-]\d{2}:\d{2})$/.test(iso) || !iso.includes("T")
      ? iso
      : `${iso}Z`;
    const date = new Date(zoned);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new UsageError(
    `--older-than takes an age (30d, 12h, 90m, 45s, 2w) or a date (2026-01-31), got ${
      JSON.stringify(text)
    }`,
    "prune",
  );
}
