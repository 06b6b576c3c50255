/**
 * `connectStore(url)`: the one entry point of {@linkcode AsyncStore}, choosing the
 * backend from the connection string.
 *
 * @module
 */
import { StoreError } from "../errors.ts";
import { openStore } from "../store/store.ts";
import { connectPostgres } from "../postgres/store.ts";
import { isPostgresUrl, sqlitePath } from "../postgres/connection.ts";
import { SqliteAsyncStore } from "../store/async_sqlite.ts";
import type { AsyncStore } from "../store/async_store.ts";

/** Options of {@linkcode connectStore}; each applies where it makes sense. */
export interface ConnectOptions {
  /** Apply pending migrations on connect (default true). */
  migrate?: boolean;
  /** Never create, migrate or write; every write throws `StoreError`. */
  readOnly?: boolean;
  /** How many revisions the change log keeps (default 100,000). */
  changeRetention?: number;
  /** PostgreSQL: the schema holding the store's tables (default `public`; `[a-z_][a-z0-9_]*`,
   * at most 52 characters). */
  schema?: string;
  /** PostgreSQL: connections in the pool (default 10). */
  poolSize?: number;
  /** SQLite: how long to wait for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number;
}

/**
 * Opens the store at `url`: `postgres://` or `postgresql://` connects to PostgreSQL
 * (pooled; the tables live in `options.schema`), a path or `file:` URL opens the
 * embedded SQLite store. Either way the result is an {@linkcode AsyncStore} that
 * behaves the same, so moving an application is a change of connection string.
 * Passwords never appear in `target` or in error messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectStore } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const dir = await Deno.makeTempDir();
 * await using store = await connectStore(new URL(`file://${dir}/app.sqlite`).href);
 * await store.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, { v: 1 }));
 * const entry = await store.getResourceEntry(StructSchema, "agent", "a1");
 * assert.equal(entry.revision, 1);
 * ```
 */
export async function connectStore(
  url: string,
  options: ConnectOptions = {},
): Promise<AsyncStore> {
  if (typeof url !== "string" || url === "") {
    throw new StoreError(
      `connectStore takes a path or a URL, got ${JSON.stringify(url)}`,
    );
  }
  if (isPostgresUrl(url)) {
    return await connectPostgres(url, {
      schema: options.schema,
      migrate: options.migrate,
      readOnly: options.readOnly,
      poolSize: options.poolSize,
      changeRetention: options.changeRetention,
    });
  }
  const path = sqlitePath(url);
  return new SqliteAsyncStore(
    openStore(path, {
      migrate: options.migrate,
      readOnly: options.readOnly,
      busyTimeoutMs: options.busyTimeoutMs,
      changeRetention: options.changeRetention,
    }),
  );
}
