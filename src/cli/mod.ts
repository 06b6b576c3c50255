/**
 * The `protostore` command line: parsing arguments and printing results, nothing more;
 * every command calls one library function (`main.ts` dispatches, one file per command,
 * `args.ts` and `output.ts` shared).
 *
 * May import: every other folder. Nothing under `src/` imports it.
 *
 * @module
 */
export { main } from "./main.ts";
export type { Command } from "./command.ts";
export type { Output } from "./output.ts";
