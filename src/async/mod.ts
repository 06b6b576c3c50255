/**
 * `connectStore(url)`: the entry point of `AsyncStore`, choosing the backend from the
 * connection string — the embedded SQLite store for a path or `file:` URL, PostgreSQL
 * for `postgres://`. It sits above both backends so that neither imports the other.
 *
 * May import: `src/errors.ts`, `src/store/`, `src/postgres/`. Used by the root `mod.ts`
 * (and the CLI, for `--db postgres://`).
 *
 * @module
 */
export { type ConnectOptions, connectStore } from "./connect.ts";
