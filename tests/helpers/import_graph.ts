/**
 * The import graph of `src/`, as Deno resolves it (`deno info --json`, so comments, doc
 * examples and strings never count as imports), and the architecture rules checked on
 * it: no cycles between files, and each folder importing only the folders below it.
 *
 * @module
 */
import { join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** One import of a file: what it names, and whether it is a type-only import. */
export interface Edge {
  /** The imported module: a path relative to the project root, or a `node:`/`npm:` specifier. */
  to: string;
  /** `import type` (erased at runtime, but still a dependency of the design). */
  typeOnly: boolean;
}

/** Imports of every file, keyed by path relative to the project root (`src/x/y.ts`). */
export type ImportGraph = Map<string, Edge[]>;

/** What each folder of `src/` may import: folder name to the folders it may use. */
export type Layers = Record<string, readonly string[]>;

/** `src/errors.ts` is a folder of its own for the rules: `"errors"`. */
export const ERRORS = "errors";

/**
 * The layers of `src/`: errors ← sqlite ← {migrate, store} ← {admin, badger} ← cli;
 * decode (pure byte decoding) is used by store, admin, badger and cli; store uses
 * migrate. A folder missing here fails the architecture test until it is placed.
 */
export const LAYERS: Layers = {
  [ERRORS]: [],
  sqlite: [ERRORS],
  decode: [ERRORS],
  migrate: [ERRORS, "sqlite"],
  store: [ERRORS, "sqlite", "migrate", "decode"],
  admin: [ERRORS, "sqlite", "migrate", "store", "decode", "postgres", "copy"],
  badger: [ERRORS, "sqlite", "migrate", "store", "decode"],
  postgres: [ERRORS, "migrate", "store"],
  async: [ERRORS, "store", "postgres"],
  copy: [ERRORS, "sqlite", "migrate", "store", "postgres"],
  cli: [
    ERRORS,
    "sqlite",
    "migrate",
    "store",
    "decode",
    "admin",
    "badger",
    "postgres",
    "async",
    "copy",
  ],
};

/** Every `.ts` file under `dir`, relative to `root`, sorted. */
export function sourceFiles(root: string, dir = "src"): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    for (const entry of Deno.readDirSync(join(root, path))) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory) walk(child);
      else if (entry.isFile && entry.name.endsWith(".ts")) out.push(child);
    }
  };
  walk(dir);
  return out.sort();
}

interface InfoDependency {
  specifier: string;
  code?: { specifier?: string };
  type?: { specifier?: string };
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}

/**
 * Reads the import graph of `files` (paths relative to `root`) with `deno info --json`
 * on a generated module that imports them all, so that files no entry point reaches are
 * included too. Only the listed files get entries; their edges name any module.
 */
export async function readImportGraph(
  root: string,
  files: string[],
): Promise<ImportGraph> {
  const dir = await Deno.makeTempDir({ prefix: "protostore-graph-" });
  try {
    const entry = join(dir, "all.ts");
    await Deno.writeTextFile(
      entry,
      files.map((f) => `import "${pathToFileURL(join(root, f)).href}";\n`).join(
        "",
      ),
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", join(root, "deno.json"), entry],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`deno info failed: ${new TextDecoder().decode(stderr)}`);
    }
    const info = JSON.parse(new TextDecoder().decode(stdout)) as {
      modules: InfoModule[];
    };
    const wanted = new Set(files);
    const graph: ImportGraph = new Map(files.map((f) => [f, []]));
    const name = (specifier: string) =>
      specifier.startsWith("file:")
        ? relative(root, fileURLToPath(specifier)).split(sep).join("/")
        : specifier;
    for (const module of info.modules) {
      const from = name(module.specifier);
      if (!wanted.has(from)) continue;
      const edges = graph.get(from)!;
      for (const dep of module.dependencies ?? []) {
        const code = dep.code?.specifier;
        const type = dep.type?.specifier;
        const to = code ?? type;
        if (to === undefined) {
          throw new Error(`${from}: cannot resolve ${dep.specifier}`);
        }
        edges.push({ to: name(to), typeOnly: code === undefined });
      }
    }
    return graph;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Import cycles between files (type-only imports included), each as the files around
 * it with the first repeated at the end: `["a.ts", "b.ts", "a.ts"]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findCycles } from "./import_graph.ts";
 *
 * const graph = new Map([
 *   ["a.ts", [{ to: "b.ts", typeOnly: true }]],
 *   ["b.ts", [{ to: "a.ts", typeOnly: false }]],
 * ]);
 * assert.deepEqual(findCycles(graph), [["a.ts", "b.ts", "a.ts"]]);
 * ```
 */
export function findCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const { to } of graph.get(file) ?? []) {
      if (!graph.has(to)) continue;
      if (state.get(to) === "open") {
        cycles.push([...stack.slice(stack.indexOf(to)), to]);
      } else if (!state.has(to)) {
        visit(to);
      }
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) {
    if (!state.has(file)) visit(file);
  }
  return cycles;
}

/** The folder of a `src/` file for the layer rules (`src/errors.ts` is `"errors"`). */
export function folderOf(file: string): string | undefined {
  const parts = file.split("/");
  if (parts[0] !== "src") return undefined;
  if (parts.length === 2) return parts[1] === "errors.ts" ? ERRORS : parts[1];
  return parts[1];
}

/**
 * Breaches of the architecture, one sentence each: a folder not in `layers`; a
 * `src/` file importing a folder its layer may not, or anything outside `src/` but
 * `node:` and `npm:` modules and the `migrations/` files; a value import of
 * `node:sqlite` (which is how a database gets opened) outside `src/sqlite/`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LAYERS, layerViolations } from "./import_graph.ts";
 *
 * const graph = new Map([
 *   ["src/store/store.ts", [{ to: "src/admin/inspect.ts", typeOnly: true }]],
 *   ["src/admin/inspect.ts", [{ to: "node:sqlite", typeOnly: true }]],
 * ]);
 * assert.equal(layerViolations(graph, LAYERS).length, 1);
 * ```
 */
export function layerViolations(graph: ImportGraph, layers: Layers): string[] {
  const problems: string[] = [];
  for (const [file, edges] of graph) {
    const folder = folderOf(file);
    if (folder === undefined) continue;
    const allowed = layers[folder];
    if (allowed === undefined) {
      problems.push(
        `${file}: folder src/${folder}/ has no place in the layers ` +
          "(add it to LAYERS in tests/helpers/import_graph.ts and to its mod.ts doc)",
      );
      continue;
    }
    for (const { to, typeOnly } of edges) {
      if (to === "node:sqlite") {
        if (!typeOnly && folder !== "sqlite") {
          problems.push(
            `${file} imports node:sqlite values: only src/sqlite/ opens databases ` +
              "(import type is fine)",
          );
        }
        continue;
      }
      if (/^(node|npm):/.test(to)) continue;
      // Each backend ships its migration files: migrations/ (SQLite), migrations/postgres/.
      if (to.startsWith("migrations/postgres/") && folder === "postgres") {
        continue;
      }
      if (to.startsWith("migrations/") && folder === "migrate") continue;
      const target = folderOf(to);
      if (target === undefined) {
        problems.push(`${file} imports ${to}, which is outside src/`);
      } else if (target !== folder && !allowed.includes(target)) {
        problems.push(
          `${file} imports ${to}: src/${folder}/ may import only ${
            allowed.length === 0 ? "nothing" : allowed.join(", ")
          }`,
        );
      }
    }
  }
  return problems.sort();
}
