/**
 * The shape protostore's tables must have at each schema version, and the check that
 * compares a database against it before anything is written: missing or early tables
 * and columns, the audit cascade, and objects protostore never creates (triggers, views).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { tableColumns } from "../sqlite/connection.ts";

/**
 * The shape of protostore's tables by schema version, checked before any write: the
 * version whose file creates each table, whether that file uses CREATE TABLE IF NOT
 * EXISTS (the Go store's files did, so an existing table of that shape is taken over),
 * and the version that added each column.
 */
const TABLE_SHAPES: Record<
  string,
  { created: number; ifNotExists: boolean; columns: Record<string, number> }
> = {
  resources: {
    created: 1,
    ifNotExists: true,
    columns: { kind: 1, id: 1, data: 1, updated_at: 1, schema_id: 3 },
  },
  resource_audit: {
    created: 2,
    ifNotExists: true,
    columns: {
      id: 2,
      kind: 2,
      resource_id: 2,
      data: 2,
      archived_at: 2,
      version_hash: 2,
      tag: 2,
      schema_id: 3,
    },
  },
  resource_audit_orphans: {
    created: 3,
    ifNotExists: false,
    columns: {
      id: 3,
      kind: 3,
      resource_id: 3,
      data: 3,
      archived_at: 3,
      version_hash: 3,
      tag: 3,
      schema_id: 3,
    },
  },
  message_schemas: {
    created: 3,
    ifNotExists: false,
    columns: {
      id: 3,
      type_name: 3,
      digest: 3,
      descriptor_set: 3,
      created_at: 3,
    },
  },
};
/** From this version on, deleting a resource cascades to its history. */
const CASCADE_SINCE = 3;
/** A name 0003 uses while it rebuilds resource_audit; it never exists between files. */
const REBUILD_TABLE = "resource_audit_new";

/**
 * Problems with the schema of a database at `version`: protostore's tables must have
 * the columns of that version (and none a later file adds), tables must not exist
 * before the file that creates them unless it takes them over, the audit cascade must
 * be in place, and there must be no triggers or views: protostore creates none, and
 * writing or migrating through someone else's would be blind trust (a view on a table
 * that a migration rebuilds also makes that migration fail).
 */
export function schemaProblems(db: DatabaseSync, version: number): string[] {
  const problems: string[] = [];
  for (const [table, shape] of Object.entries(TABLE_SHAPES)) {
    const columns = tableColumns(db, table);
    const exists = columns.length > 0;
    const shapeAt = Math.max(version, shape.created);
    if (!exists) {
      if (version >= shape.created) {
        problems.push(
          `table ${table} is missing (schema version ${version} has it)`,
        );
      }
      continue;
    }
    if (version < shape.created && !shape.ifNotExists) {
      problems.push(
        `table ${table} exists, but schema version ${version} predates the migration ` +
          "that creates it: the file was not written by protostore",
      );
      continue;
    }
    const expected = Object.entries(shape.columns);
    const missing = expected.filter(([c, since]) =>
      since <= shapeAt && !columns.includes(c)
    ).map(([c]) => c);
    if (missing.length > 0) {
      problems.push(
        `table ${table} lacks column(s) ${missing.join(", ")} ` +
          `(schema version ${version})`,
      );
    }
    const early = expected.filter(([c, since]) =>
      since > shapeAt && columns.includes(c)
    ).map(([c]) => c);
    if (early.length > 0) {
      problems.push(
        `table ${table} already has column(s) ${
          early.join(", ")
        }, which a migration ` +
          `after schema version ${version} adds: the file was not written by protostore`,
      );
    }
  }
  if (
    version >= CASCADE_SINCE && tableColumns(db, "resource_audit").length > 0
  ) {
    const keys = db.prepare(
      `SELECT "table" AS parent, on_delete FROM pragma_foreign_key_list('resource_audit')`,
    ).all() as { parent: string; on_delete: string }[];
    if (
      !keys.some((k) => k.parent === "resources" && k.on_delete === "CASCADE")
    ) {
      problems.push(
        "table resource_audit lacks its foreign key to resources ON DELETE CASCADE: " +
          "deleting a resource would leave its history behind",
      );
    }
  }
  if (tableColumns(db, REBUILD_TABLE).length > 0) {
    problems.push(
      `table ${REBUILD_TABLE} exists: it is not protostore's (migration 0003 uses ` +
        "the name only inside its transaction)",
    );
  }
  const objects = db.prepare(
    `SELECT type, name, tbl_name FROM sqlite_schema
     WHERE type IN ('trigger', 'view') ORDER BY type, name`,
  ).all() as { type: string; name: string; tbl_name: string }[];
  for (const o of objects) {
    problems.push(
      o.type === "trigger"
        ? `trigger ${o.name} on ${o.tbl_name} was not created by protostore; ` +
          "refusing to write through it (drop it if you trust nothing depends on it)"
        : `view ${o.name} was not created by protostore; refusing to migrate or write ` +
          "next to it (a view on protostore's tables breaks migrations that rebuild " +
          "them; drop it)",
    );
  }
  return problems;
}
