/**
 * The schema: the migration files shipped with the module (`files.ts`) and the runner
 * that plans, checks and applies them, one transaction each, recorded in
 * `schema_version` (`runner.ts`).
 *
 * May import: `src/errors.ts`, `src/sqlite/`. Used by store (every open migrates or
 * checks), admin and cli.
 *
 * @module
 */
export { defineMigration, type Migration, MIGRATIONS } from "./files.ts";
export {
  type AppliedMigration,
  applyMigrations,
  migrate,
  type MigrateOptions,
  type MigrateResult,
  migrateWith,
  type MigrateWithOptions,
  type MigrationPlan,
  type MigrationStatus,
  migrationStatus,
  parseSqliteTime,
  type PendingMigration,
  planMigrations,
  prepareDatabase,
  type PrepareOptions,
} from "./runner.ts";
