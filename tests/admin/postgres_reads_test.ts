/**
 * One resource and one snapshot read from PostgreSQL directly (no scratch copy) are
 * what the SQLite admin reads give for the same store: decoded the same way, with the
 * same revisions and the same errors.
 */
import assert from "node:assert/strict";
import {
  AuditNotFoundError,
  copyStore,
  exportStore,
  inspectStoreResource,
  NotFoundError,
  storeAuditSnapshot,
} from "../../mod.ts";
import { makeDatabase, ORIGINS } from "../helpers/lifecycle.ts";
import { withTempDir } from "../helpers/temp_dir.ts";
import { freshSchema, sharedPostgres } from "../helpers/postgres.ts";

for (const origin of ORIGINS) {
  Deno.test(`inspect KIND ID and one snapshot read from PostgreSQL equal the SQLite reads of the same store (${origin} file)`, () =>
    withTempDir(async (dir) => {
      const server = await sharedPostgres();
      const schema = freshSchema();
      const path = `${dir}/source.sqlite`;
      await makeDatabase(origin, path);
      await copyStore(path, server.url, { toSchema: schema });
      const pg = { schema };
      let resources = 0;
      const snapshots: Record<string, number> = { snapshot: 0, orphan: 0 };
      for await (const line of exportStore(path, { history: true })) {
        const record = JSON.parse(line);
        if (record.type === "resource" && resources++ < 4) {
          assert.deepEqual(
            await inspectStoreResource(server.url, record.kind, record.id, pg),
            await inspectStoreResource(path, record.kind, record.id),
          );
        }
        if (record.type in snapshots && snapshots[record.type]++ < 3) {
          const args = [
            record.kind,
            record.resourceId,
            record.auditId,
          ] as const;
          assert.deepEqual(
            await storeAuditSnapshot(server.url, ...args, pg),
            await storeAuditSnapshot(path, ...args),
          );
        }
      }
      assert(resources > 0);
      if (origin === "go") assert(snapshots.orphan > 0, "orphans read too");
      await assert.rejects(
        inspectStoreResource(server.url, "nope", "nope", pg),
        (error) =>
          error instanceof NotFoundError && error.kind === "nope" &&
          /does not exist in postgres:\/\/.*\(schema t/.test(error.message),
      );
      await assert.rejects(
        storeAuditSnapshot(server.url, "nope", "nope", 1, pg),
        (error) => error instanceof AuditNotFoundError && error.kind === "nope",
      );
    }));
}
