/**
 * Undoing the creation of a new database file: what opening it will create, and removing
 * exactly that after a failure, so a failed import into a new path leaves nothing.
 *
 * @module
 */
import { join } from "node:path";

/**
 * The path and every missing ancestor directory, deepest first: what opening a new
 * database at `path` will create (empty when the file exists).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { missingPaths } from "./new_file.ts";
 *
 * const dir = await Deno.makeTempDir();
 * assert.deepEqual(missingPaths(`${dir}/a/b.sqlite`), [`${dir}/a/b.sqlite`, `${dir}/a`]);
 * ```
 */
export function missingPaths(path: string): string[] {
  const missing = [path];
  for (let dir = join(path, "..");; dir = join(dir, "..")) {
    try {
      Deno.statSync(dir);
      return missing;
    } catch {
      if (join(dir, "..") === dir) return missing;
      missing.push(dir);
    }
  }
}

/**
 * Removes what opening a new database created (`created` from {@linkcode missingPaths}
 * before it was opened): the file, its side files, and its directories while empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { missingPaths, removeCreated } from "./new_file.ts";
 *
 * const dir = `${await Deno.makeTempDir()}/new`;
 * const created = missingPaths(`${dir}/db.sqlite`);
 * Deno.mkdirSync(dir);
 * Deno.writeTextFileSync(`${dir}/db.sqlite`, "");
 * removeCreated(`${dir}/db.sqlite`, created);
 * assert.throws(() => Deno.statSync(dir), Deno.errors.NotFound);
 * ```
 */
export function removeCreated(path: string, created: string[]): void {
  if (created.length === 0) return;
  for (const file of [`${path}-journal`, `${path}-wal`, `${path}-shm`, path]) {
    try {
      Deno.removeSync(file);
    } catch {
      // Never created.
    }
  }
  for (const dir of created.slice(1)) {
    try {
      Deno.removeSync(dir); // not recursive: only if still empty
    } catch {
      return;
    }
  }
}
