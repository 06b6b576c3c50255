/**
 * Every command that meets a damaged page says the file is damaged and what to do (one
 * line, exit 1), whichever table the page belongs to; none reports an "unexpected error".
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { fromJson } from "@bufbuild/protobuf";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { openStore } from "../../mod.ts";
import { assertFailure, runCli } from "../helpers/cli.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { damageTable } from "../helpers/rows.ts";

/** A store with one resource, its snapshot and its recorded type, checkpointed. */
function writeStore(path: string): void {
  using store = openStore(path);
  const message = fromJson(StructSchema, { name: "reviewer" });
  store.saveResource(StructSchema, "agent", "a1", message);
  store.saveAudit(StructSchema, "agent", "a1", message, { tag: "v1" });
}

const COMMANDS: Record<string, string[][]> = {
  schema_version: [
    ["migrate"],
    ["migrate", "--status"],
    ["prune", "--keep-last", "1"],
  ],
  message_schemas: [
    ["inspect", "agent", "a1"],
    ["audit-history", "agent", "a1"],
    ["audit-history", "agent", "a1", "--json", "--diff"],
    ["export", "--history"],
  ],
};

for (const [table, commands] of Object.entries(COMMANDS)) {
  Deno.test(`a damaged ${table} page: every command says the file is damaged and what to do`, async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/damaged.sqlite`;
      writeStore(path);
      damageTable(path, table);
      for (
        const args of [...commands, ["backup", "--to", `${dir}/copy.sqlite`]]
      ) {
        // Before the fix: "unexpected error: database disk image is malformed".
        const line = assertFailure(
          await runCli([...args, "--db", path]),
          1,
        );
        assert.doesNotMatch(line, /unexpected error/, args.join(" "));
        assert.match(line, /damaged/, args.join(" "));
        assert.match(line, /backup/, args.join(" "));
        assert.match(line, /\.recover/, args.join(" "));
      }
    });
  });
}

Deno.test("a damaged schema page (page 1 after its header) is called damaged, not 'not a SQLite database'", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/damaged.sqlite`;
    writeStore(path);
    const db = new DatabaseSync(path);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
    const file = Deno.openSync(path, { read: true, write: true });
    try {
      file.seekSync(100, Deno.SeekMode.Start); // the 100-byte file header stays
      file.writeSync(new Uint8Array(200).fill(0xa5));
    } finally {
      file.close();
    }
    for (const args of [["inspect"], ["migrate", "--status"], ["export"]]) {
      const line = assertFailure(await runCli([...args, "--db", path]), 1);
      assert.doesNotMatch(line, /not a SQLite database/, args.join(" "));
      assert.match(line, /damaged/, args.join(" "));
      assert.match(line, /\.recover/, args.join(" "));
    }
  });
});
