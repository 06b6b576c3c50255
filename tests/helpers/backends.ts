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
import pg from "postgres";
import { Buffer } from "node:buffer";
import { freshSchema, sharedPostgres } from "./postgres.ts";
import { insertOrphans, type OrphanRow } from "./cli.ts";

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
  /**
   * Adds orphaned snapshots (whose resource is gone, as a migrated Go-era file or a
   * copy of one holds them) behind the store's back; returns their ids.
   */
  insertOrphans(rows: OrphanRow[]): Promise<number[]>;
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
      insertOrphans: (rows) => Promise.resolve(insertOrphans(path, rows)),
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
      async insertOrphans(rows) {
        const sql = pg(server.url, {
          onnotice: () => {},
          connection: { search_path: schema },
        });
        try {
          const ids: number[] = [];
          for (const r of rows) {
            // The orphans table has no identity: ids come from the copied SQLite rows.
            const [{ id }] = await sql`
              INSERT INTO resource_audit_orphans
                (id, kind, resource_id, data, archived_at, version_hash, tag)
              SELECT coalesce(max(id), 0) + 1, ${r.kind}, ${r.resourceId}, ${
              Buffer.from(r.data)
            },
                ${r.archivedAt}, ${r.versionHash ?? null}, ${r.tag ?? null}
              FROM resource_audit_orphans RETURNING id`;
            ids.push(Number(id));
          }
          return ids;
        } finally {
          await sql.end();
        }
      },
    };
  },
};

/** Both backends, SQLite first. */
export const BACKENDS: readonly Backend[] = [sqlite, postgres];
