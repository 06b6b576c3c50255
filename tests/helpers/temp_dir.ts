/**
 * A fresh temporary directory per test, removed afterwards even when the test fails.
 *
 * @module
 */

/**
 * Runs `fn` with a new temporary directory and removes the directory afterwards.
 *
 * @param fn Receives the directory path.
 * @returns What `fn` returns.
 *
 * @example
 * ```ts
 * import { withTempDir } from "./temp_dir.ts";
 *
 * await withTempDir((dir) => Deno.writeTextFileSync(`${dir}/x.txt`, "x"));
 * ```
 */
export async function withTempDir<T>(
  fn: (dir: string) => T | Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "protostore-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
