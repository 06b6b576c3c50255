/**
 * `cli.ts restore`: make a snapshot the current resource again (`kubectl rollout undo`),
 * after showing the field-level diff and, on a terminal, asking.
 *
 * @module
 */
import { restoreStore, storeRestorePreview } from "../admin/store_lifecycle.ts";
import { formatChange } from "../decode/diff.ts";
import { escapeControl } from "../decode/text.ts";
import type { SnapshotRef } from "../store/restore.ts";
import {
  COMMON_OPTIONS,
  dbPath,
  parse,
  positionals,
  schemaOption,
} from "./args.ts";
import { DECODE_HELP, DECODE_OPTIONS, decodeOptions } from "./decode_flags.ts";
import type { Command } from "./command.ts";
import { formatTime, toJsonText, UsageError } from "./output.ts";

const HELP =
  `Usage: deno run -A cli.ts restore KIND ID (--snapshot AUDIT_ID | --hash H | --tag T)
                                [--yes] [--db PATH|URL] [--json] [decoding options]

Makes a snapshot of resource KIND ID its current state again, as a new change (a new
revision; the history is not rewritten). Shows the field-level changes first and, on a
terminal, asks before writing; --yes restores without asking (required when stdin is
not a terminal). The restore happens only if the resource is still at the revision
shown (else nothing is written and the command fails).

Options:
  --db PATH|URL      database file or postgres:// URL (default: $PROTOSTORE_DB, else
                     ./protostore.sqlite); passwords are never printed
  --schema NAME      PostgreSQL: the schema holding the store (default public)
  --snapshot ID      the snapshot with this id (audit-history lists them)
  --hash H           the newest snapshot with version hash H
  --tag T            the newest snapshot with tag T
  --yes              do not ask
  --json             print one JSON document (the changes and the new revision)
${DECODE_HELP}
`;

/** The `restore` command. */
export const restoreCommand: Command = {
  summary:
    "make a snapshot current again, showing the diff first (--snapshot/--hash/--tag)",
  help: HELP,
  async run(args, output) {
    const { values, positionals: rest } = parse(args, {
      ...COMMON_OPTIONS,
      ...DECODE_OPTIONS,
      snapshot: { type: "string" },
      hash: { type: "string" },
      tag: { type: "string" },
      yes: { type: "boolean" },
    }, "restore");
    const [kind, id] = positionals(rest, ["KIND", "ID"], "restore");
    const given = [values.snapshot, values.hash, values.tag].filter((v) =>
      v !== undefined
    );
    if (given.length !== 1) {
      throw new UsageError(
        "restore takes exactly one of --snapshot ID, --hash H or --tag T",
        "restore",
      );
    }
    let ref: SnapshotRef;
    if (values.snapshot !== undefined) {
      if (!/^\d+$/.test(values.snapshot) || Number(values.snapshot) < 1) {
        throw new UsageError(
          `--snapshot takes a snapshot id, got ${
            JSON.stringify(values.snapshot)
          }`,
          "restore",
        );
      }
      ref = { auditId: Number(values.snapshot) };
    } else if (values.hash !== undefined) {
      if (values.hash === "") {
        throw new UsageError("--hash needs a value", "restore");
      }
      ref = { versionHash: values.hash };
    } else {
      if (values.tag === "") {
        throw new UsageError("--tag needs a value", "restore");
      }
      ref = { tag: values.tag! };
    }
    if (!values.yes && output.confirm === undefined) {
      throw new UsageError(
        "restore asks before writing, and stdin is not a terminal: pass --yes",
        "restore",
      );
    }
    const location = dbPath(values.db, output);
    const where = schemaOption(values.schema, location, "restore");
    const preview = await storeRestorePreview(location, kind, id, ref, {
      ...where,
      ...decodeOptions(values, "restore"),
    });
    const snap = preview.snapshot;
    if (!values.json) {
      output.out(
        `${escapeControl(kind)}/${
          escapeControl(id)
        }: restore snapshot ${snap.auditId} ` +
          `(archived ${formatTime(new Date(snap.archivedAt))}` +
          `${snap.tag ? `, tag ${escapeControl(snap.tag)}` : ""}` +
          `${
            snap.versionHash ? `, hash ${escapeControl(snap.versionHash)}` : ""
          }) ` +
          `over revision ${preview.currentRevision}\n`,
      );
      output.out(
        preview.changes.length === 0
          ? "  (no changes: the snapshot equals the current resource)\n"
          : preview.changes.map((c) => `  ${escapeControl(formatChange(c))}\n`)
            .join(""),
      );
    }
    if (!values.yes) {
      if (!output.confirm!("Restore this snapshot?")) {
        output.out("Not restored.\n");
        return 0;
      }
    }
    const saved = await restoreStore(location, kind, id, ref, {
      ...where,
      ifRevision: preview.currentRevision,
    });
    if (values.json) {
      output.out(toJsonText({
        kind,
        id,
        snapshot: snap,
        changes: preview.changes,
        revision: saved.revision,
        updatedAt: saved.updatedAt,
      }));
      return 0;
    }
    output.out(
      `Restored: ${escapeControl(kind)}/${
        escapeControl(id)
      } is at revision ${saved.revision}\n`,
    );
    return 0;
  },
};
