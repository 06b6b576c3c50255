/**
 * The shape of `src/` (README "Layout"): no import cycles between files, each folder
 * importing only the layers below it, nothing under `src/` importing `tests/`, `bench/`
 * or the CLI, `node:sqlite` opened only in `src/sqlite/`, and a `mod.ts` per folder.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  ERRORS,
  findCycles,
  type ImportGraph,
  LAYERS,
  layerViolations,
  readImportGraph,
  sourceFiles,
} from "./helpers/import_graph.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const FILES = sourceFiles(ROOT);
const graph = await readImportGraph(ROOT, FILES);

Deno.test("the import graph covers every file under src/", () => {
  assert.ok(FILES.length > 20, `only ${FILES.length} files found`);
  assert.deepEqual([...graph.keys()].sort(), FILES);
  // A known import, to prove edges are read and resolved.
  assert.ok(
    graph.get("src/store/store.ts")!.some((e) => e.to === "src/errors.ts"),
  );
});

Deno.test("no file under src/ takes part in an import cycle", () => {
  assert.deepEqual(findCycles(graph), []);
});

Deno.test("each folder imports only the layers below it, and nothing outside src/", () => {
  assert.deepEqual(layerViolations(graph, LAYERS), []);
});

Deno.test("every folder of src/ has a mod.ts with a module doc, placed in the layers", () => {
  const folders = new Set(
    FILES.map((f) => f.split("/")).filter((p) => p.length > 2).map((p) => p[1]),
  );
  for (const folder of folders) {
    const path = `src/${folder}/mod.ts`;
    assert.ok(FILES.includes(path), `${path} is missing`);
    const text = Deno.readTextFileSync(`${ROOT}/${path}`);
    assert.match(text, /^\/\*\*[\s\S]*?May import:[\s\S]*?@module/, path);
    assert.ok(folder in LAYERS, `src/${folder}/ is not in LAYERS`);
  }
});

Deno.test("the README's Layout section lists every folder of src/ and names only paths that exist", () => {
  const readme = Deno.readTextFileSync(`${ROOT}/README.md`);
  const section = readme.split(/^## Layout$/m)[1]?.split(/^## /m)[0] ?? "";
  assert.ok(section.length > 0, "README has a Layout section");
  const folders = new Set(
    FILES.map((f) => f.split("/")).filter((p) => p.length > 2).map((p) => p[1]),
  );
  const listed = new Set(
    [...section.matchAll(/`src\/([a-z_]+)\/`/g)].map((m) => m[1]),
  );
  assert.deepEqual([...listed].sort(), [...folders].sort());
  // Every concrete path it names (no placeholders like <subsystem>) is in the tree.
  for (
    const [, path] of section.matchAll(/`([\w./-]+\.(?:ts|md)|[\w-]+\/)`/g)
  ) {
    let exists = true;
    try {
      Deno.statSync(`${ROOT}/${path}`);
    } catch {
      exists = false;
    }
    assert.ok(exists, `README Layout names ${path}, which does not exist`);
  }
});

Deno.test("the root mod.ts re-exports from folder mod.ts files and src/errors.ts only", () => {
  const text = Deno.readTextFileSync(`${ROOT}/mod.ts`);
  const sources = [...text.matchAll(/^} from "\.\/(src\/[^"]+)";$/gm)]
    .map((m) => m[1]);
  assert.ok(sources.length > 0);
  for (const source of sources) {
    assert.ok(
      source === "src/errors.ts" || /^src\/[a-z]+\/mod\.ts$/.test(source),
      `mod.ts re-exports from ${source}`,
    );
  }
});

// The checks themselves must fail on broken graphs, or the tests above prove nothing.
Deno.test("the checks find a cycle, a layer breach, an import of tests/, the CLI and node:sqlite", () => {
  const edge = (to: string, typeOnly = false) => ({ to, typeOnly });
  const broken: ImportGraph = new Map([
    ["src/cli/main.ts", [edge("src/cli/inspect.ts")]],
    ["src/cli/inspect.ts", [edge("src/cli/main.ts", true)]],
    ["src/store/store.ts", [edge("src/admin/inspect.ts")]],
    ["src/admin/inspect.ts", [edge("src/cli/output.ts", true)]],
    ["src/decode/wire.ts", [edge("tests/helpers/prng.ts")]],
    ["src/migrate/runner.ts", [edge("src/badger/reader.ts")]],
    ["src/badger/importer.ts", [
      edge("node:sqlite"),
      edge("src/store/store.ts"),
    ]],
    ["src/admin/history.ts", [edge("node:sqlite", true)]],
    ["src/sqlite/connection.ts", [edge("node:sqlite")]],
    ["src/errors.ts", [edge("src/sqlite/connection.ts")]],
    ["src/nowhere/pool.ts", []],
  ]);
  assert.deepEqual(findCycles(broken), [[
    "src/cli/inspect.ts",
    "src/cli/main.ts",
    "src/cli/inspect.ts",
  ]]);
  const problems = layerViolations(broken, LAYERS);
  const about = (file: string) => problems.filter((p) => p.startsWith(file));
  assert.equal(about("src/store/store.ts").length, 1);
  assert.equal(about("src/admin/inspect.ts").length, 1);
  assert.equal(about("src/decode/wire.ts").length, 1);
  assert.equal(about("src/migrate/runner.ts").length, 1);
  assert.deepEqual(about("src/badger/importer.ts").length, 1);
  assert.match(about("src/badger/importer.ts")[0], /node:sqlite/);
  assert.deepEqual(about("src/admin/history.ts"), []);
  assert.deepEqual(about("src/sqlite/connection.ts"), []);
  assert.equal(about("src/errors.ts").length, 1);
  assert.match(about("src/nowhere/pool.ts")[0], /no place in the layers/);
  assert.equal(problems.length, 7);
  assert.deepEqual(LAYERS[ERRORS], []);
});
