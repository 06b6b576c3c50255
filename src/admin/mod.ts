/**
 * Read-only administration of a database file, as plain data for the CLI and for
 * programs: the overview and one resource (`inspect.ts`), a resource's audit history
 * with diffs (`history.ts`), and decoding rows with the types recorded in the database
 * (`row_decoder.ts`). Opens files read-only, never migrates, and does not trust them
 * (`read_only.ts`).
 *
 * May import: `src/errors.ts`, `src/sqlite/`, `src/migrate/`, `src/store/`,
 * `src/decode/`. Used by cli.
 *
 * @module
 */
export {
  type DatabaseOverview,
  inspectDatabase,
  type InspectedResource,
  type InspectOptions,
  type InspectProgress,
  inspectResource,
  type KindSummary,
} from "./inspect.ts";
export {
  type AuditHistory,
  auditHistory,
  auditSnapshot,
  type HistoryEntry,
  type HistoryOptions,
} from "./history.ts";
export { type DecodeOptions, RowDecoder } from "./row_decoder.ts";
export { openUntrusted, requireTable } from "./read_only.ts";
