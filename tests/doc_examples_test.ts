import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

function shippedFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(new URL(dir, ROOT))) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) files.push(...shippedFiles(`${path}/`));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

// `console.assert` only prints in Deno: an example that uses it passes when it is wrong.
Deno.test("no doc example or shipped file checks with console.assert", () => {
  const offenders: string[] = [];
  for (
    const file of ["mod.ts", "cli.ts", "README.md", ...shippedFiles("src/")]
  ) {
    const text = Deno.readTextFileSync(new URL(file, ROOT));
    text.split("\n").forEach((line, index) => {
      if (line.includes("console" + ".assert")) {
        offenders.push(`${file}:${index + 1}`);
      }
    });
  }
  assert.deepEqual(offenders, [], "use node:assert/strict in examples");
});

// An example that asserts nothing passes whatever the code does.
Deno.test("every doc example in shipped files asserts with node:assert/strict", () => {
  const offenders: string[] = [];
  for (const file of ["mod.ts", "cli.ts", ...shippedFiles("src/")]) {
    const text = Deno.readTextFileSync(new URL(file, ROOT));
    for (const block of text.matchAll(/```ts\n([\s\S]*?)```/g)) {
      if (!block[1].includes('from "node:assert/strict"')) {
        const line = text.slice(0, block.index).split("\n").length;
        offenders.push(`${file}:${line}`);
      }
    }
  }
  assert.deepEqual(offenders, [], "examples without node:assert/strict");
});
