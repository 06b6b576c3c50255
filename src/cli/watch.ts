/**
 * `cli.ts watch`: prints the change feed, one line per change, until interrupted.
 *
 * @module
 */
import { connectStore } from "../async/connect.ts";
import type { ResourceChange } from "../store/changes.ts";
import { describeResource } from "../errors.ts";
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
import type { Command } from "./command.ts";
import { type Output, UsageError } from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts watch [--db PATH|URL] [--kind KIND] [--after REV] [--json]

Prints every change to the database's resources as it is committed, by this or any
other process, one line per change, until interrupted (Ctrl-C):
  REVISION put|delete "KIND"/"ID"
With --json, one JSON object per line (NDJSON): {"revision", "type", "kind", "id"}.
The changes of one revision are printed together, so a watcher killed at any moment
and started again with --after set to the last revision it printed misses nothing.

Options:
  --db PATH     ${DB_HELP}
  --schema S    ${SCHEMA_HELP}
  --kind KIND   only changes of this kind
  --after REV   start with the changes after revision REV (default: the current
                revision, i.e. only new changes); fails when the change log was
                compacted past REV (list the resources again)
  --json        NDJSON output

The database is opened read-only. On PostgreSQL, watch wakes on LISTEN/NOTIFY and
reads from the last revision it printed after a dropped connection.
`;

/** The `watch` command. */
export const watchCommand: Command = {
  summary: "print changes as they are committed (until Ctrl-C)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      ...COMMON_OPTIONS,
      kind: { type: "string" },
      after: { type: "string" },
    }, "watch");
    positionals(rest, [], "watch");
    if (values.kind === "") {
      throw new UsageError("--kind needs a kind", "watch");
    }
    let after: number | undefined;
    if (values.after !== undefined) {
      if (
        !/^\d+$/.test(values.after) ||
        !Number.isSafeInteger(Number(values.after))
      ) {
        throw new UsageError(
          `--after takes a revision (a whole number >= 0), got ${
            JSON.stringify(values.after)
          }`,
          "watch",
        );
      }
      after = Number(values.after);
    }
    const location = dbPath(values.db, output);
    await using store = await connectStore(location, {
      readOnly: true,
      ...schemaOption(values.schema, location, "watch"),
      poolSize: 2,
    });
    const controller = new AbortController();
    const stop = () => controller.abort();
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    for (const signal of signals) Deno.addSignalListener(signal, stop);
    const printer = new RevisionPrinter(output, values.json ?? false);
    try {
      for await (
        const change of store.watch({
          kind: values.kind,
          afterRevision: after,
          signal: controller.signal,
        })
      ) {
        printer.add(change);
      }
    } finally {
      printer.flush();
      for (const signal of signals) Deno.removeSignalListener(signal, stop);
    }
    return 0;
  },
};

/**
 * Buffers the lines of one revision and writes them in one call: when the next
 * revision starts, or right after the watcher's current batch (a revision is never
 * split across batches), so a kill never leaves half a revision printed.
 */
class RevisionPrinter {
  #lines = "";
  #revision = -1;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly output: Output, readonly json: boolean) {}

  add(change: ResourceChange): void {
    if (change.revision !== this.#revision) this.flush();
    this.#revision = change.revision;
    this.#lines += this.json
      ? JSON.stringify({
        revision: change.revision,
        type: change.type,
        kind: change.kind,
        id: change.id,
      }) + "\n"
      : `${change.revision} ${change.type} ${
        escapeControl(describeResource(change.kind, change.id))
      }\n`;
    this.#timer ??= setTimeout(() => this.flush(), 0);
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#lines === "") return;
    const lines = this.#lines;
    this.#lines = "";
    this.output.out(lines);
  }
}
