/**
 * File checks shared by the tests and the child scripts they run (which signal each
 * other through files).
 *
 * @module
 */

/**
 * Whether something exists at `path` (any error of `stat` counts as "no").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exists } from "./fs.ts";
 *
 * const dir = await Deno.makeTempDir();
 * assert(exists(dir) && !exists(`${dir}/missing`));
 * await Deno.remove(dir);
 * ```
 */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
