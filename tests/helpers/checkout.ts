/**
 * A copy of the project as a fresh clone has it, for tests that run the README's
 * commands: the files git tracks (plus new, not ignored ones), as they are in the working
 * tree, without databases or other ignored files a developer left behind.
 *
 * @module
 */
import { ROOT } from "./cli.ts";

/**
 * The project's files, relative to {@linkcode ROOT}: `git ls-files` (tracked and new,
 * not ignored, still present), or every file outside `.git` when this is not a checkout.
 */
function projectFiles(): string[] {
  try {
    const out = new Deno.Command("git", {
      args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (out.success) {
      return new TextDecoder().decode(out.stdout).split("\0").filter((file) => {
        if (file === "") return false;
        try {
          return Deno.statSync(`${ROOT}${file}`).isFile;
        } catch {
          return false; // deleted in the working tree, not yet committed
        }
      });
    }
  } catch {
    // no git: fall through
  }
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(`${ROOT}${dir}`)) {
      if (entry.name === ".git") continue;
      if (entry.isDirectory) walk(`${dir}${entry.name}/`);
      else if (entry.isFile) files.push(`${dir}${entry.name}`);
    }
  };
  walk("");
  return files;
}

/**
 * Copies the project into `dest` (created if missing), as a fresh clone would have it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyCheckout } from "./checkout.ts";
 *
 * const dir = await Deno.makeTempDir();
 * copyCheckout(`${dir}/protostore`);
 * assert(Deno.statSync(`${dir}/protostore/deno.json`).isFile);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function copyCheckout(dest: string): void {
  const made = new Set<string>();
  for (const file of projectFiles()) {
    const dir = `${dest}/${file}`.replace(/\/[^/]*$/, "");
    if (!made.has(dir)) {
      Deno.mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    Deno.copyFileSync(`${ROOT}${file}`, `${dest}/${file}`);
  }
}
