/**
 * The backends of the behaviour suite: each opens a fresh, empty `AsyncStore` (a temp
 * SQLite file, or a fresh schema on the process's PostgreSQL server).
 *
 * @module
 */
import {
  type AsyncStore,
  type ConnectOptions,
  connectStore,
} from "../../mod.ts";
import { freshSchema, sharedPostgres } from "./postgres.ts";

/** A way to open a fresh store. */
export interface Backend {
  /** `sqlite` or `postgres`. */
  name: "sqlite" | "postgres";
  /** A new, empty store; `reopen` opens another store on the same data. */
  open(options?: ConnectOptions): Promise<Fixture>;
}

/** A fresh store and how to open it again (e.g. read-only). */
export interface Fixture {
  /** The store. */
  store: AsyncStore;
  /** Another store on the same data. */
  reopen(options?: ConnectOptions): Promise<AsyncStore>;
  /** Closes the store and removes its data. */
  cleanup(): Promise<void>;
}

const sqlite: Backend = {
  name: "sqlite",
  async open(options = {}) {
    const dir = await Deno.makeTempDir({ prefix: "protostore-test-" });
    const path = `${dir}/store.sqlite`;
    const store = await connectStore(path, options);
    return {
      store,
      reopen: (more = {}) => connectStore(path, { ...options, ...more }),
      async cleanup() {
        await store.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

const postgres: Backend = {
  name: "postgres",
  async open(options = {}) {
    const server = await sharedPostgres();
    const schema = freshSchema();
    const store = await connectStore(server.url, {
      ...options,
      schema,
      poolSize: 4,
    });
    return {
      store,
      reopen: (more = {}) =>
        connectStore(server.url, {
          ...options,
          ...more,
          schema,
          poolSize: 2,
        }),
      async cleanup() {
        await store.close();
      },
    };
  },
};

/** Both backends, SQLite first. */
export const BACKENDS: readonly Backend[] = [sqlite, postgres];
