/**
 * Text helpers for output that reaches a terminal. Message contents are untrusted: a
 * string field can hold escape sequences that recolour, rewrite or hide what an operator
 * sees, so everything taken from a message is passed through {@linkcode escapeControl}
 * before it is printed.
 *
 * @module
 */

/**
 * Characters that must never reach a terminal raw: C0 and C1 control characters and DEL
 * (`\p{Cc}`), lone surrogates (`\p{Cs}`), the line and paragraph separators, and the
 * bidirectional formatting characters that can reorder text ("Trojan Source").
 */
const UNSAFE =
  /[\p{Cc}\p{Cs}\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, "gu");

const NAMED: Readonly<Record<string, string>> = {
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

function escapeOne(char: string): string {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.codePointAt(0)!;
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * Returns `text` with every control character replaced by a visible escape: `\n`, `\r`,
 * `\t`, `\xNN` for other C0/C1 controls and DEL, and `\uNNNN` for lone surrogates, line
 * and paragraph separators and bidirectional formatting characters. Everything else,
 * including printable non-ASCII text, is kept as is.
 *
 * This is for display only: backslashes are not escaped, so the result is not
 * reversible. Quote with `JSON.stringify` first when the output must be unambiguous.
 *
 * @param text Untrusted text, e.g. a string field of a stored message.
 * @returns Text that is safe to write to a terminal.
 *
 * @example Escape an ANSI colour sequence and a newline
 * ```ts
 * import { escapeControl } from "./text.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeControl("\x1b[31mred\x1b[0m\nnext"), "\\x1b[31mred\\x1b[0m\\nnext");
 * assert.equal(escapeControl("grüße"), "grüße");
 * ```
 */
export function escapeControl(text: string): string {
  // Most text has nothing to escape: one scan, no allocation.
  if (!UNSAFE.test(text)) return text;
  return text.replace(UNSAFE_ALL, escapeOne);
}
