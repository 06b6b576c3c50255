/**
 * The schema: the migration files shipped with the module (`files.ts`), the plan of a
 * connection (what is applied, pending, refused: `plan.ts`), the shape check against
 * what the files create (`shape.ts`), the runner that applies files one transaction
 * each, recorded in `schema_version` (`runner.ts`), and migration of a database file
 * by path (`migrate.ts`).
 *
 * May import: `src/errors.ts`, `src/sqlite/`. Used by store (every open migrates or
 * checks), admin and cli.
 *
 * @module
 */
export { defineMigration, type Migration, MIGRATIONS } from "./files.ts";
export {
  type AppliedMigration,
  type MigrationPlan,
  type PendingMigration,
  planMigrations,
  refuseProblems,
} from "./plan.ts";
export { schemaProblems } from "./shape.ts";
export {
  applyMigrations,
  migrateWith,
  type MigrateWithOptions,
  prepareDatabase,
  type PrepareOptions,
} from "./runner.ts";
export {
  migrate,
  type MigrateOptions,
  type MigrateResult,
  type MigrationStatus,
  migrationStatus,
} from "./migrate.ts";
