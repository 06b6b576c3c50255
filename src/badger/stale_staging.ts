/**
 * Cleaning up after imports that were killed: their `protostore-badger-<pid>-*` staging
 * directories, once the process that made them is gone.
 *
 * @module
 */
import { join } from "node:path";

/** Prefix of an import's staging directory; the process id follows it. */
export const STAGING_PREFIX = "protostore-badger-";

/**
 * Removes staging directories of imports whose process no longer exists (killed before
 * it could clean up). Liveness is read from /proc; without it nothing is removed.
 * Directories of live processes, and anything it cannot list or remove, are left alone.
 *
 * @param parent The directory staging directories are made in (the OS temp dir).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeAbandonedStaging, STAGING_PREFIX } from "./stale_staging.ts";
 *
 * const parent = await Deno.makeTempDir();
 * await Deno.mkdir(`${parent}/${STAGING_PREFIX}${Deno.pid}-live`);
 * await removeAbandonedStaging(parent);
 * assert((await Deno.stat(`${parent}/${STAGING_PREFIX}${Deno.pid}-live`)).isDirectory);
 * await Deno.remove(parent, { recursive: true });
 * ```
 */
export async function removeAbandonedStaging(parent: string): Promise<void> {
  const procExists = (pid: string) => {
    try {
      Deno.statSync(`/proc/${pid}`);
      return true;
    } catch {
      return false;
    }
  };
  if (!procExists("self")) return;
  try {
    for await (const entry of Deno.readDir(parent)) {
      const pid = entry.isDirectory && entry.name.startsWith(STAGING_PREFIX)
        ? /^(\d+)-/.exec(entry.name.slice(STAGING_PREFIX.length))?.[1]
        : undefined;
      if (pid !== undefined && !procExists(pid)) {
        await Deno.remove(join(parent, entry.name), { recursive: true }).catch(
          () => {},
        );
      }
    }
  } catch {
    // A temp directory we cannot list holds nothing we could clean.
  }
}
