/**
 * `copyStore`: a whole store from one backend to another, in one verified transaction.
 * The orchestration (`copy.ts`) sees each backend through the same two interfaces
 * (`endpoint.ts`): SQLite's (`sqlite.ts`) and PostgreSQL's (`postgres.ts`, writing with
 * `COPY … FROM STDIN`); `tables.ts` describes the copied tables and their checksums.
 *
 * May import: `src/errors.ts`, `src/sqlite/`, `src/postgres/`, `src/migrate/`,
 * `src/store/` (the revision counter's SQL). Used by the root `mod.ts` and the CLI.
 *
 * @module
 */
export {
  type CopyOptions,
  type CopyProgress,
  type CopyResult,
  copyStore,
} from "./copy.ts";
export type { MergeMode, ResourceMerge } from "./endpoint.ts";
export type { MergeSummary } from "./merge.ts";
export type { CopiedTable, TableTally } from "./tables.ts";
