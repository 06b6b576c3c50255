/**
 * PostgreSQL migrations: the plain `.sql` files of `migrations/postgres/`, recorded in
 * `schema_version` (version, applied_at, name, checksum — the SQLite store's columns)
 * in the store's schema. As on SQLite: an edited file is refused by name, a database
 * newer than this code is refused before anything is written, and a non-empty schema
 * that is not protostore's is refused untouched. Concurrent migrators (several app
 * servers starting at once) are serialized by a transaction-scoped advisory lock on
 * the schema name; all pending files apply in one transaction (PostgreSQL's DDL is
 * transactional), so a failure leaves the schema as it was.
 *
 * @module
 */
import m0001 from "../../migrations/postgres/0001_store.sql" with {
  type: "text",
};
import { MigrationError } from "../errors.ts";
import { defineMigration, type Migration } from "../migrate/files.ts";
import type { Sql } from "./connection.ts";

/** The PostgreSQL migrations, in order. */
export const PG_MIGRATIONS: readonly Migration[] = Object.freeze([
  defineMigration("0001_store.sql", m0001),
]);

/** The newest version this code knows. */
export const PG_LATEST_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]
  .version;

interface VersionRow {
  version: number;
  name: string | null;
  checksum: string | null;
}

/** What {@linkcode preparePostgres} found and did. */
export interface PgMigrateResult {
  /** Versions applied now. */
  applied: number[];
  /** The version the schema is at afterwards. */
  version: number;
}

async function readVersions(
  sql: Sql,
  schema: string,
): Promise<VersionRow[] | null> {
  const [{ exists }] = await sql<{ exists: boolean }[]>`
    SELECT to_regclass(${`"${schema}".schema_version`}) IS NOT NULL AS exists`;
  if (!exists) return null;
  return await sql.unsafe<VersionRow[]>(
    `SELECT version::int8 AS version, name, checksum FROM "${schema}".schema_version
     ORDER BY version`,
  );
}

/** Refuses what must not be touched; returns the files still to apply. */
function plan(rows: VersionRow[], schema: string): Migration[] {
  const byVersion = new Map(PG_MIGRATIONS.map((m) => [m.version, m]));
  for (const row of rows) {
    const file = byVersion.get(row.version);
    if (file === undefined) {
      throw new MigrationError(
        `schema ${schema} is at version ${row.version}, newer than this protostore ` +
          `(which knows up to ${PG_LATEST_VERSION}): upgrade protostore; nothing was changed`,
      );
    }
    if (row.checksum !== null && row.checksum !== file.checksum) {
      throw new MigrationError(
        `migration ${file.name} was edited after it was applied to schema ${schema} ` +
          `(recorded checksum ${row.checksum.slice(0, 12)}…, file now ${
            file.checksum.slice(0, 12)
          }…): restore the file as it was applied`,
        { file: file.name },
      );
    }
    if (row.name !== null && row.name !== file.name) {
      throw new MigrationError(
        `schema_version of schema ${schema} records version ${row.version} as ${row.name}, ` +
          `but this code's file is ${file.name}`,
        { file: file.name },
      );
    }
  }
  const applied = new Set(rows.map((r) => r.version));
  return PG_MIGRATIONS.filter((m) => !applied.has(m.version));
}

/** Refuses a schema without `schema_version` that holds tables (another application's). */
async function refuseForeign(sql: Sql, schema: string): Promise<void> {
  const rows = await sql<{ name: string }[]>`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
    ORDER BY c.relname LIMIT 5`;
  if (rows.length > 0) {
    throw new MigrationError(
      `schema ${schema} holds tables that are not protostore's (${
        rows.map((r) => r.name).join(", ")
      }) and no schema_version: refusing to add protostore's tables to it; use another ` +
        "schema (the schema option)",
    );
  }
}

/**
 * Brings `schema` to the newest version, or (with `migrate: false` or `readOnly`)
 * checks that it is there. Safe to run from many processes at once.
 */
export async function preparePostgres(
  sql: Sql,
  schema: string,
  options: { migrate: boolean; readOnly: boolean },
): Promise<PgMigrateResult> {
  // Fast path without the lock: already current (the common case of every start).
  const rows = await readVersions(sql, schema);
  if (rows !== null && plan(rows, schema).length === 0) {
    return { applied: [], version: PG_LATEST_VERSION };
  }
  if (!options.migrate || options.readOnly) {
    if (rows === null) await refuseForeign(sql, schema);
    const pending = rows === null ? PG_MIGRATIONS : plan(rows, schema);
    throw new MigrationError(
      `schema ${schema} needs migrations ${
        pending.map((m) => m.name).join(", ")
      }${
        options.readOnly ? " and the store was opened read-only" : ""
      }: run the migrate command or connect with migrate enabled`,
      { file: pending[0]?.name },
    );
  }
  return await inMigrationTransaction(
    sql,
    schema,
    (tx) => migrateLocked(tx, schema),
  );
}

/**
 * Whether `schema` needs migrations this code can apply (false: it is current).
 * Throws {@linkcode MigrationError} for a schema newer than this code, an edited file,
 * or (when it has no store yet) tables of another application.
 */
export async function needsMigration(
  sql: Sql,
  schema: string,
): Promise<boolean> {
  const rows = await readVersions(sql, schema);
  if (rows === null) {
    await refuseForeign(sql, schema);
    return true;
  }
  return plan(rows, schema).length > 0;
}

/**
 * Runs `fn` in one transaction on one connection of `sql`, holding the schema's
 * migration lock: `fn` may call {@linkcode migrateLocked} and go on writing in the same
 * transaction (a copy creates its target schema and fills it, all or nothing).
 */
export async function inMigrationTransaction<T>(
  sql: Sql,
  schema: string,
  fn: (tx: Sql) => Promise<T>,
): Promise<T> {
  // One migrator per schema at a time, by a session advisory lock taken before the
  // transaction begins: a transaction that waited for a lock inside it could still
  // see the catalog as it was when it began (stale caches), and miss the tables the
  // migrator before it committed.
  const conn = await sql.reserve();
  try {
    await lockMigrations(conn as unknown as Sql, schema);
    try {
      await conn.unsafe("BEGIN");
      try {
        const result = await fn(conn as unknown as Sql);
        await conn.unsafe("COMMIT");
        return result;
      } catch (error) {
        await conn.unsafe("ROLLBACK").catch(() => {});
        throw error;
      }
    } finally {
      await unlockMigrations(conn as unknown as Sql, schema).catch(() => {});
    }
  } finally {
    conn.release();
  }
}

/**
 * Takes the schema's migration lock (a session advisory lock) on the one connection
 * `sql` runs on: one migrator per schema at a time. Take it before `BEGIN` (see
 * {@linkcode inMigrationTransaction}); release it with {@linkcode unlockMigrations}.
 */
export async function lockMigrations(sql: Sql, schema: string): Promise<void> {
  await sql`SELECT pg_advisory_lock(hashtextextended(${
    "protostore:migrate:" + schema
  }, 0))`;
}

/** Releases the lock of {@linkcode lockMigrations}. */
export async function unlockMigrations(
  sql: Sql,
  schema: string,
): Promise<void> {
  await sql`SELECT pg_advisory_unlock(hashtextextended(${
    "protostore:migrate:" + schema
  }, 0))`;
}

/** Applies the pending files, inside the caller's transaction and under the lock. */
export async function migrateLocked(
  tx: Sql,
  schema: string,
): Promise<PgMigrateResult> {
  if (await readVersions(tx, schema) === null) {
    await refuseForeign(tx, schema);
  }
  await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await tx.unsafe(
    `CREATE TABLE IF NOT EXISTS "${schema}".schema_version (
         version integer PRIMARY KEY, applied_at text NOT NULL, name text, checksum text)`,
  );
  const current = await readVersions(tx, schema) ?? [];
  const pending = plan(current, schema);
  for (const file of pending) {
    try {
      await tx.unsafe(`SET LOCAL search_path TO "${schema}"`);
      await tx.unsafe(file.sql);
    } catch (error) {
      throw new MigrationError(
        `migration ${file.name} failed on schema ${schema}: ${
          (error as Error).message
        }; nothing was changed`,
        { file: file.name, cause: error },
      );
    }
    await tx.unsafe(
      `INSERT INTO "${schema}".schema_version (version, applied_at, name, checksum)
         VALUES ($1, $2, $3, $4)`,
      [file.version, new Date().toISOString(), file.name, file.checksum],
    );
  }
  return {
    applied: pending.map((m) => m.version),
    version: PG_LATEST_VERSION,
  };
}
