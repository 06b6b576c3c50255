/**
 * The schema: the migration files shipped with the module (`files.ts`), the plan of a
 * connection (what is applied, pending, refused: `plan.ts`), the shape check against
 * what the files create (`shape.ts`), the runner that applies files one transaction
 * each, recorded in `schema_version` (`runner.ts`), migration of a database file by
 * path (`migrate.ts`), the way back to the Go store's schema (`downgrade.ts`), and the
 * time checks of 0004 seen from protostore's side (`time_checks.ts`).
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
export {
  downgrade,
  type DowngradeOptions,
  type DowngradeResult,
} from "./downgrade.ts";
export { timeCheckFailure } from "./time_checks.ts";
