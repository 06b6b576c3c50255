/**
 * The BadgerDB backup importer: reads the `badger backup` stream format and brings a
 * dump into a protostore database, all or nothing.
 *
 * Owns: `framing.ts` (length-prefixed records), `kvlist.ts` (KVList decoding on
 * protobuf-es `BinaryReader`), `records.ts` (both, as records of KV objects), `keys.ts`
 * (Badger key → resource, audit snapshot, internal or invalid), `staging.ts` (phase 1:
 * the dump into a private staging file), `counts.ts` (the summary's counts from it),
 * `apply.ts` (phase 2: staged rows into the target in the caller's transaction),
 * `stale_staging.ts` (staging dirs of killed imports), `summary.ts` (options and
 * summary types), `import.ts` (the public `importBadgerBackup` and the order of phases).
 *
 * May import: `src/errors.ts`, `src/sqlite/` (connections), `src/migrate/` (migrating in
 * the import's transaction) and `src/store/` (the `Store` it imports into). Nothing
 * outside this folder imports from it but `mod.ts` and `src/cli/`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importBadgerBackup } from "./mod.ts";
 *
 * const summary = await importBadgerBackup(
 *   `${await Deno.makeTempDir()}/db.sqlite`,
 *   ReadableStream.from([new Uint8Array(0)]),
 *   { dryRun: true },
 * );
 * assert.equal(summary.records, 0);
 * ```
 *
 * @module
 */
export { importBadgerBackup } from "./import.ts";
export type {
  ImportBadgerOptions,
  ImportSummary,
  InvalidBadgerKey,
} from "./summary.ts";
