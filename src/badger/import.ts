/**
 * The public face of the BadgerDB import: {@linkcode importBadgerBackup} brings a
 * `badger backup` dump into an open {@linkcode Store}. The work is done by
 * `import_badger.ts` on the store's connection.
 *
 * @module
 */
import { StoreError } from "../errors.ts";
import {
  importBadger,
  type ImportBadgerOptions,
  type ImportSummary,
} from "./importer.ts";
import { Store } from "../store/store.ts";

/**
 * Imports a BadgerDB backup (the file `badger backup` or Go's `db.Backup` writes; a path
 * or a stream of its bytes) into `store`, all or nothing: the dump is read and
 * validated completely, then written in one transaction. For each key only its newest
 * version counts; deleted and expired keys are skipped; `<kind>/<id>` becomes a
 * resource, updated in place like a save (its history is kept); a legacy
 * `<kind>/<kind>_audit/<resourceId>/<unixNanos>` key becomes an audit snapshot (an
 * orphan when its resource does not exist). Importing the same dump again changes
 * nothing. A corrupt or truncated dump throws a {@linkcode StoreError} naming the byte
 * offset and leaves the database as it was. With `dryRun` nothing is written (the store
 * may then be read-only).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importBadgerBackup, openStore } from "@protostore/store";
 *
 * // One record holding KV { key: "agent/a1", value: 0x0801, version: 1 }.
 * const kv = [0x0a, 0x08, ...new TextEncoder().encode("agent/a1"), 0x12, 0x02, 0x08, 0x01, 0x20, 0x01];
 * const body = [0x0a, kv.length, ...kv];
 * const dump = new Uint8Array([body.length, 0, 0, 0, 0, 0, 0, 0, ...body]);
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * const summary = await importBadgerBackup(store, ReadableStream.from([dump]));
 * assert(summary.resources === 1 && summary.kinds.agent === 1);
 * ```
 */
export function importBadgerBackup(
  store: Store,
  source: string | ReadableStream<Uint8Array>,
  options: ImportBadgerOptions = {},
): Promise<ImportSummary> {
  if (!(store instanceof Store)) {
    return Promise.reject(
      new StoreError(
        "importBadgerBackup takes an open Store (from openStore) first",
      ),
    );
  }
  try {
    return importBadger(Store.connectionOf(store), source, options);
  } catch (error) {
    return Promise.reject(error);
  }
}
