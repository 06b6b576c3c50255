/**
 * `cli.ts import-badger`: placeholder until the importer lands.
 *
 * @module
 */
import type { Command } from "./main.ts";

/** The `import-badger` command. */
export const importBadgerCommand: Command = {
  summary: "import a `badger backup` dump into the database",
  help:
    "Usage: deno run -A cli.ts import-badger FILE [--db PATH] [--dry-run] [--json]\n",
  run() {
    return 1;
  },
};
