/**
 * The store on PostgreSQL: the `AsyncStore` contract on the tables of
 * `migrations/postgres/` (`store.ts`, with their SQL), its migrations (`migrate.ts`),
 * the driver's settings and the classifier of its failures (`connection.ts`, the only
 * place the `postgres` driver is opened; also where a store location is told apart:
 * `isPostgresUrl`, `sqlitePath`), and `watch` on `LISTEN/NOTIFY` (`watch.ts`).
 *
 * May import: `src/errors.ts`, `src/migrate/` (migration file records), `src/store/`
 * (the contract's types, argument checks, codecs, page tokens). Used by `src/async/`,
 * `src/copy/`, `src/admin/`.
 *
 * @module
 */
export {
  connectPostgres,
  PG_SQL,
  type PostgresOptions,
  PostgresStore,
} from "./store.ts";
export { PG_LATEST_VERSION, PG_MIGRATIONS } from "./migrate.ts";
export {
  isPostgresUrl,
  openPool,
  pgFailure,
  redactSecrets,
  redactUrl,
  sqlitePath,
} from "./connection.ts";
