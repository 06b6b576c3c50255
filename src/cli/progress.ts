/**
 * The one progress line of the CLI: drawn on stderr, only when stderr is a terminal,
 * redrawn at most ten times a second, and erased when the work is done.
 *
 * @module
 */
import type { Output } from "./output.ts";

/** A progress line; {@linkcode progressLine} makes one. */
export interface ProgressLine {
  /** Draws `text`, after a bar when `fraction` (0 to 1) is known. Throttled to ten
   * times a second unless `now` (e.g. a new phase that may take long). */
  draw(text: string, fraction?: number, now?: boolean): void;
  /** Erases the line if anything was drawn. */
  done(): void;
}

const BAR_WIDTH = 30;

/**
 * A progress line on `output`'s stderr, or `undefined` when stderr is not a terminal
 * (pipes and log files get no progress, so they stay clean).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progressLine } from "./progress.ts";
 *
 * let err = "";
 * const output = {
 *   out() {},
 *   err: (t: string) => { err += t; },
 *   color: false,
 *   errIsTerminal: true,
 *   env: () => undefined,
 * };
 * const line = progressLine(output)!;
 * line.draw("reading", 0.5);
 * line.done();
 * assert.match(err, /\[#{15}-{15}\]  50%  reading/);
 * assert.equal(progressLine({ ...output, errIsTerminal: false }), undefined);
 * ```
 */
export function progressLine(output: Output): ProgressLine | undefined {
  if (!output.errIsTerminal) return undefined;
  let last = -Infinity;
  let width = 0;
  // Spaces, not an erase-line escape: no escape codes at all (NO_COLOR, dumb terminals).
  const put = (line: string) => {
    output.err(`\r${line.padEnd(width)}`);
    width = line.length;
  };
  return {
    draw(text, fraction, immediately = false) {
      const now = performance.now();
      if (now - last < 100 && !immediately) return;
      last = now;
      if (fraction === undefined) return put(text);
      const clamped = Math.min(1, Math.max(0, fraction));
      const filled = Math.round(clamped * BAR_WIDTH);
      put(
        `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ` +
          `${(clamped * 100).toFixed(0).padStart(3)}%  ${text}`,
      );
    },
    done() {
      if (width > 0) output.err(`\r${" ".repeat(width)}\r`);
    },
  };
}
