/** Admin row decoding: the recorded type wins over descriptors the user gives. */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import { openStore, Store } from "../../mod.ts";
import { RowDecoder } from "../../src/admin/row_decoder.ts";
import { SkillSchema } from "../fixtures/gen/example/v1/example_pb.ts";
import { withTempDir } from "../helpers/temp_dir.ts";

const DESCRIPTORS = Deno.readFileSync(
  new URL("../fixtures/example.binpb", import.meta.url),
);

Deno.test("given descriptors never decode a row recorded as another type", () =>
  withTempDir((dir) => {
    const path = `${dir}/db.sqlite`;
    {
      using store = openStore(path);
      store.saveResource(
        SkillSchema,
        "skill",
        "lint",
        create(SkillSchema, { name: "lint" }),
      );
    }
    // The recorded descriptors are damaged, so decoding with them fails.
    const raw = new DatabaseSync(path);
    raw.exec("UPDATE message_schemas SET descriptor_set = x'ff'");
    raw.close();
    using store = openStore(path, { readOnly: true });
    const db = Store.connectionOf(store);
    const [row] = db.prepare("SELECT data, schema_id FROM resources").all() as {
      data: Uint8Array;
      schema_id: number;
    }[];
    const asAgent = new RowDecoder(db, {
      descriptorSet: DESCRIPTORS,
      typeName: "example.v1.Agent",
    }).decode("skill", row.data, row.schema_id);
    assert.notEqual(asAgent.decodedWith, "descriptors");
    assert.notEqual(asAgent.type, "example.v1.Agent");
    const asSkill = new RowDecoder(db, {
      descriptorSet: DESCRIPTORS,
      typeName: "example.v1.Skill",
    }).decode("skill", row.data, row.schema_id);
    assert.equal(asSkill.decodedWith, "descriptors");
    assert.deepEqual(asSkill.message, { name: "lint" });
  }));
