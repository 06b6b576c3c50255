/**
 * The PostgreSQL ends of `copyStore`: a source read in one `REPEATABLE READ READ ONLY`
 * transaction (one snapshot of every table) through cursors, and a target written in
 * one transaction with `COPY … FROM STDIN` (text format), whose counts and checksums
 * are computed by the server before the commit.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { once } from "node:events";
import { StoreError } from "../errors.ts";
import type { Writable } from "node:stream";
import {
  openPool,
  pgFailure,
  requireSchemaName,
  type Sql,
  storeLabel,
  type TransactionSql,
} from "../postgres/connection.ts";
import {
  inMigrationTransaction,
  migrateLocked,
  needsMigration,
  preparePostgres,
} from "../postgres/migrate.ts";
import { AUDIT_SEQUENCE, postgresMergeWriter } from "./postgres_merge.ts";
import type {
  CopySource,
  CopyTarget,
  RevisionState,
  TargetTransaction,
} from "./endpoint.ts";
import {
  type ColumnType,
  type CopyValue,
  pgTallySql,
  type TableSpec,
  type TableTally,
} from "./tables.ts";

/** Opens the store at `url` (schema `schema`) as a copy source, read-only. */
export async function openPostgresSource(
  url: string,
  schema: string,
): Promise<CopySource> {
  const label = storeLabel(url, schema);
  let pool: Sql;
  try {
    pool = openPool(url, { schema: requireSchemaName(schema), max: 1 });
  } catch (error) {
    throw pgFailure("opening the copy source", label, error);
  }
  try {
    await preparePostgres(pool, schema, { migrate: false, readOnly: true });
  } catch (error) {
    await pool.end({ timeout: 1 });
    throw pgFailure("opening the copy source", label, error);
  }
  let sql: Sql | TransactionSql = pool;
  return {
    label,
    async snapshot(fn) {
      try {
        return await pool.begin(
          "isolation level repeatable read read only",
          async (tx) => {
            sql = tx;
            try {
              return await fn();
            } finally {
              sql = pool;
            }
          },
        ) as Awaited<ReturnType<typeof fn>>;
      } catch (error) {
        throw pgFailure("reading the copy source", label, error);
      }
    },
    async count(spec) {
      const [row] = await sql.unsafe(
        `SELECT count(*)::int8 AS n FROM ${spec.name}`,
      );
      return row.n as number;
    },
    async state() {
      const [row] = await sql.unsafe(
        `SELECT s.revision, s.compacted_through,
           coalesce((SELECT max(revision) FROM resource_changes), 0)::int8 AS newest,
           greatest(${AUDIT_SEQUENCE},
             coalesce((SELECT max(id) FROM resource_audit), 0),
             coalesce((SELECT max(id) FROM resource_audit_orphans), 0))::int8 AS seq
         FROM revision_state s WHERE s.id = 1`,
      );
      return {
        revision: row.revision as number,
        compactedThrough: row.compacted_through as number,
        newestChange: row.newest as number,
        auditSequence: row.seq as number,
      };
    },
    async *rows(spec, batchSize) {
      const query = sql.unsafe(
        `SELECT ${
          spec.columns.join(", ")
        } FROM ${spec.name} ORDER BY ${spec.orderBy}`,
      );
      try {
        for await (
          const rows of query.cursor(batchSize) as AsyncIterable<
            Record<string, unknown>[]
          >
        ) {
          yield rows.map((row) =>
            spec.columns.map((column) => (row[column] ?? null) as CopyValue)
          );
        }
      } catch (error) {
        throw pgFailure(`reading ${spec.name} of`, label, error);
      }
    },
    async close() {
      await pool.end({ timeout: 5 });
    },
  };
}

const ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
};

function copyField(value: CopyValue, type: TableSpec["types"][number]): string {
  if (value === null) return "\\N";
  switch (type) {
    case "text":
      return (value as string).replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]);
    case "int":
      return String(value);
    case "bool":
      return value ? "t" : "f";
    case "bytes": {
      const bytes = value as Uint8Array;
      return "\\\\x" +
        Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
          .toString("hex");
    }
  }
}

/** Rows in COPY's text format. */
export function copyText(
  spec: Pick<TableSpec, "types">,
  rows: CopyValue[][],
): string {
  let text = "";
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      text += (i === 0 ? "" : "\t") + copyField(row[i], spec.types[i]);
    }
    text += "\n";
  }
  return text;
}

/**
 * Opens the store at `url` (schema `schema`) as a copy target. A schema that is missing
 * or behind is created and migrated inside the copy's transaction (under the schema's
 * migration lock, so connects to it wait), so a failed copy leaves no schema behind.
 */
export async function openPostgresTarget(
  url: string,
  schema: string,
): Promise<CopyTarget> {
  const label = storeLabel(url, schema);
  let pool: Sql;
  try {
    pool = openPool(url, { schema: requireSchemaName(schema), max: 1 });
  } catch (error) {
    throw pgFailure("preparing the copy target", label, error);
  }
  let migrate: boolean;
  try {
    migrate = await needsMigration(pool, schema);
  } catch (error) {
    await pool.end({ timeout: 1 });
    throw pgFailure("preparing the copy target", label, error);
  }
  const fill = async <T>(
    sql: Sql,
    fn: (tx: TargetTransaction) => Promise<T>,
  ): Promise<T> => {
    if (migrate) await migrateLocked(sql, schema);
    // Nobody else writes the store while it fills (writers wait, readers go on).
    await sql.unsafe(
      "LOCK TABLE revision_state, resources, resource_audit IN EXCLUSIVE MODE",
    );
    const tx = targetTransaction(
      sql as unknown as TransactionSql,
      label,
      schema,
    );
    try {
      return await fn(tx);
    } catch (error) {
      // An open COPY must be failed (CopyFail) before the rollback can run.
      await tx.abort();
      throw error;
    }
  };
  return {
    label,
    revisionFromLog: false,
    async transaction(fn) {
      try {
        return migrate
          ? await inMigrationTransaction(pool, schema, (sql) => fill(sql, fn))
          : await pool.begin((sql) =>
            fill(sql as unknown as Sql, fn)
          ) as Awaited<ReturnType<typeof fn>>;
      } catch (error) {
        const where = (error as { where?: unknown })?.where;
        throw pgFailure(
          `writing the copy${typeof where === "string" ? ` (${where})` : ""}`,
          label,
          error,
        );
      }
    },
    async close() {
      await pool.end({ timeout: 5 });
    },
  };
}

interface Rejecting {
  reject(error: Error): unknown;
}

function targetTransaction(
  sql: TransactionSql,
  label: string,
  schema: string,
): TargetTransaction & { abort(): Promise<void> } {
  const streams = new Map<string, Writable>();
  const failures = new Map<Writable, Error>();
  const failed = (stream: Writable) => {
    if (stream.destroyed) {
      throw failures.get(stream) ??
        new StoreError("the COPY stream closed before its rows were sent");
    }
  };
  // `event`, or the stream's end by an error (which `once` would miss if it came first).
  const settled = (stream: Writable, event: string) =>
    new Promise<void>((resolve, reject) => {
      const done = () => {
        stream.off("close", closed);
        resolve();
      };
      const closed = () => {
        stream.off(event, done);
        const error = failures.get(stream);
        if (error !== undefined || event !== "finish") {
          reject(
            error ??
              new StoreError(
                "the COPY stream closed before its rows were sent",
              ),
          );
        } else resolve();
      };
      stream.once(event, done);
      stream.once("close", closed);
      if (stream.destroyed) closed();
    });
  const send = async (
    name: string,
    columns: readonly string[],
    types: readonly ColumnType[],
    rows: CopyValue[][],
  ): Promise<void> => {
    let stream = streams.get(name);
    if (stream === undefined) {
      const query = sql.unsafe(
        `COPY ${name} (${columns.join(", ")}) FROM STDIN`,
      );
      // The driver reports a row the server refused at the end of the COPY only to
      // the query, already resolved with the stream (postgres 3.4.9 then never
      // finishes the stream): pass it on to the stream, which rethrows it below.
      let opened: Writable | undefined;
      const reject = (query as unknown as Rejecting).reject;
      (query as unknown as Rejecting).reject = (error) => {
        if (opened !== undefined && !opened.destroyed) {
          failures.set(opened, error);
          opened.destroy(error);
        }
        return reject(error);
      };
      stream = opened = await query.writable() as unknown as Writable;
      const current = stream;
      stream.on("error", (error) => {
        if (!failures.has(current)) failures.set(current, error);
      });
      streams.set(name, stream);
    }
    failed(stream);
    if (!stream.write(Buffer.from(copyText({ types }, rows)))) {
      await settled(stream, "drain");
    }
  };
  const finish = async (name: string): Promise<void> => {
    const stream = streams.get(name);
    if (stream === undefined) return;
    streams.delete(name);
    failed(stream);
    const finished = settled(stream, "finish");
    stream.end();
    await finished;
  };
  return {
    async abort() {
      for (const stream of streams.values()) {
        stream.on("error", () => {});
        const closed = once(stream, "close").catch(() => {});
        stream.destroy(new Error("copy aborted"));
        await closed;
      }
      streams.clear();
    },
    async occupancy() {
      const [row] = await sql.unsafe(
        `SELECT (SELECT count(*) FROM resources)::int8 AS resources,
           (SELECT count(*) FROM resource_audit)::int8 AS resource_audit,
           (SELECT count(*) FROM resource_audit_orphans)::int8 AS resource_audit_orphans,
           (SELECT count(*) FROM message_schemas)::int8 AS message_schemas,
           (SELECT count(*) FROM resource_changes)::int8 AS resource_changes,
           (SELECT revision FROM revision_state WHERE id = 1) AS revision`,
      );
      return { ...row } as Record<string, number>;
    },
    write(spec, rows) {
      return send(spec.name, spec.columns, spec.types, rows);
    },
    endTable(spec) {
      return finish(spec.name);
    },
    async setState(state: RevisionState) {
      await sql.unsafe(
        "UPDATE revision_state SET revision = $1, compacted_through = $2 WHERE id = 1",
        [state.revision, state.compactedThrough],
      );
      // New snapshots and schemas must get ids above every copied one.
      await sql.unsafe(
        `SELECT setval(pg_get_serial_sequence('resource_audit', 'id'), greatest($1::int8, 1), $1::int8 > 0)`,
        [state.auditSequence],
      );
      await sql.unsafe(
        `SELECT setval(pg_get_serial_sequence('message_schemas', 'id'),
           coalesce((SELECT max(id) FROM message_schemas), 1),
           (SELECT count(*) > 0 FROM message_schemas))`,
      );
    },
    merge(mode) {
      return postgresMergeWriter(sql, { label, schema, mode }, async (
        table,
        columns,
        types,
        rows,
      ) => {
        await send(table, columns, types, rows);
        await finish(table);
      });
    },
    async tally(spec): Promise<TableTally> {
      const [row] = await sql.unsafe(pgTallySql(spec));
      return { rows: row.rows as number, checksum: row.checksum as string };
    },
    async state() {
      const [row] = await sql.unsafe(
        `SELECT revision, compacted_through, ${AUDIT_SEQUENCE}::int8 AS seq
         FROM revision_state WHERE id = 1`,
      );
      return {
        revision: row.revision as number,
        compactedThrough: row.compacted_through as number,
        auditSequence: row.seq as number,
      };
    },
  };
}
