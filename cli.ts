#!/usr/bin/env -S deno run -A
/**
 * The protostore admin CLI: `migrate`, `inspect`, `audit-history`, `import-badger`.
 * Run `deno run -A cli.ts --help`.
 *
 * @module
 */
import { main } from "./src/cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
