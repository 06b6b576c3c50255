/**
 * The shape every CLI command has, in its own file so that `main.ts` can import the
 * commands without the commands importing `main.ts` back.
 *
 * @module
 */
import type { Output } from "./output.ts";

/** A CLI command: its one-line summary, its help text, and what it does. */
export interface Command {
  /** One line for the tool's help. */
  summary: string;
  /** The full `--help` text. */
  help: string;
  /** Runs with the arguments after the command name; returns the exit code. */
  run(args: string[], output: Output): Promise<number> | number;
}
