/**
 * Error classes thrown by protostore. Every error the library throws on purpose is a
 * {@linkcode StoreError}, so callers can catch the whole family with one `instanceof`.
 *
 * @module
 */

/**
 * Base class of every error protostore throws on purpose.
 *
 * @example Catch any store failure
 * ```ts
 * import { openStore, StoreError } from "@protostore/store";
 *
 * try {
 *   openStore("/dev/null/not-a-dir/db.sqlite");
 * } catch (error) {
 *   if (!(error instanceof StoreError)) throw error;
 * }
 * ```
 */
export class StoreError extends Error {
  /** Creates an error; `cause` keeps the underlying SQLite or decode error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A resource (kind, id) does not exist.
 *
 * @example
 * ```ts
 * import { NotFoundError, openStore } from "@protostore/store";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * try {
 *   store.getResource(StructSchema, "agent", "missing");
 * } catch (error) {
 *   console.assert(error instanceof NotFoundError);
 * }
 * ```
 */
export class NotFoundError extends StoreError {}

/**
 * No audit snapshot matches the version hash or tag asked for.
 *
 * @example
 * ```ts
 * import { AuditNotFoundError, openStore } from "@protostore/store";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * try {
 *   store.getAuditByTag(StructSchema, "agent", "a1", "v9");
 * } catch (error) {
 *   console.assert(error instanceof AuditNotFoundError);
 * }
 * ```
 */
export class AuditNotFoundError extends StoreError {}

/**
 * A method was called on a store after {@linkcode Store.close}.
 *
 * @example
 * ```ts
 * import { openStore, StoreClosedError } from "@protostore/store";
 *
 * const store = openStore(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * store.close();
 * try {
 *   store.deleteResource("agent", "a1");
 * } catch (error) {
 *   console.assert(error instanceof StoreClosedError);
 * }
 * ```
 */
export class StoreClosedError extends StoreError {}

/**
 * The database schema cannot be brought to this code's version: pending migrations on a
 * read-only open, an applied migration file that was edited, a database written by newer
 * code, or a migration file that failed.
 *
 * @example
 * ```ts
 * import { MigrationError, openStore } from "@protostore/store";
 *
 * const path = await Deno.makeTempFile({ suffix: ".sqlite" });
 * try {
 *   openStore(path, { readOnly: true }); // empty file: migrations are pending
 * } catch (error) {
 *   console.assert(error instanceof MigrationError);
 * }
 * ```
 */
export class MigrationError extends StoreError {}
