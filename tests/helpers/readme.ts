/**
 * Reading the README as a script: its fenced blocks, and the shell commands a reader
 * types from it. Runnable blocks are marked by their language: a `sh` block holds
 * commands (one per line; `\` continues a line), a `console` block holds transcripts
 * whose `$ ` lines are commands and whose other lines are output. Blocks without a
 * language (or with another one) are never run.
 *
 * @module
 */

/** One fenced code block of a Markdown file. */
export interface FencedBlock {
  /** The info string's first word (`sh`, `console`, `json`, `ts`), `""` when none. */
  lang: string;
  /** The lines between the fences. */
  lines: string[];
  /** 1-based line number of the opening fence. */
  line: number;
}

/** One command of the README, where it is written. */
export interface ReadmeCommand {
  /** The command as written (continuation lines joined with a space). */
  command: string;
  /** 1-based line number in the Markdown file. */
  line: number;
}

/**
 * The fenced code blocks of `markdown`, in order (fences of three or more backticks;
 * a block ends at a fence at least as long as the one that opened it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fencedBlocks } from "./readme.ts";
 *
 * const fence = "`".repeat(3);
 * const blocks = fencedBlocks(`text\n${fence}sh\nls\n${fence}\n`);
 * assert.deepEqual(blocks, [{ lang: "sh", lines: ["ls"], line: 2 }]);
 * ```
 */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  let open: { fence: string; block: FencedBlock } | undefined;
  markdown.split("\n").forEach((text, index) => {
    const fence = /^(`{3,})\s*(\S*)/.exec(text);
    if (open) {
      if (fence && fence[1].length >= open.fence.length && fence[2] === "") {
        blocks.push(open.block);
        open = undefined;
      } else {
        open.block.lines.push(text);
      }
    } else if (fence) {
      open = {
        fence: fence[1],
        block: { lang: fence[2], lines: [], line: index + 1 },
      };
    }
  });
  return blocks;
}

/**
 * The commands of the runnable blocks (`sh` lines, `console` lines after `$ `), in
 * the order a reader meets them. Blank lines and whole-line `#` comments are not commands.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readmeCommands } from "./readme.ts";
 *
 * const f = "`".repeat(3);
 * const md = `${f}sh\necho a \\\n  b  # both\n${f}\n${f}console\n$ ls\nout\n${f}\n`;
 * assert.deepEqual(readmeCommands(md).map((c) => c.command), ["echo a b  # both", "ls"]);
 * ```
 */
export function readmeCommands(markdown: string): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  for (const block of fencedBlocks(markdown)) {
    if (block.lang !== "sh" && block.lang !== "console") continue;
    let pending: ReadmeCommand | undefined;
    block.lines.forEach((text, index) => {
      const line = block.line + 1 + index;
      let part: string;
      if (pending) {
        part = text.trim();
      } else if (block.lang === "console") {
        if (!text.startsWith("$ ")) return;
        part = text.slice(2).trim();
      } else {
        part = text.trim();
        if (part === "" || part.startsWith("#")) return;
      }
      const continued = part.endsWith("\\");
      if (continued) part = part.slice(0, -1).trimEnd();
      pending = pending
        ? { ...pending, command: `${pending.command} ${part}` }
        : { command: part, line };
      if (!continued) {
        commands.push(pending);
        pending = undefined;
      }
    });
    if (pending) commands.push(pending);
  }
  return commands;
}
