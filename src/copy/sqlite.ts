/**
 * The SQLite ends of `copyStore`: a source read in one read transaction (a consistent
 * snapshot, other writers go on), and a target written in one `BEGIN IMMEDIATE`
 * transaction. A target file that does not exist yet is built under a temporary name
 * beside it and renamed into place only after the commit, so a failed copy leaves no
 * file behind.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { basename, dirname, join } from "node:path";
import { messageOf, StoreError } from "../errors.ts";
import {
  openConnection,
  readText,
  returnArrays,
  wholeText,
} from "../sqlite/connection.ts";
import { planMigrations } from "../migrate/plan.ts";
import { prepareDatabase } from "../migrate/runner.ts";
import { CURRENT_REVISION } from "../store/revisions.ts";
import { sqliteMergeWriter } from "./sqlite_merge.ts";
import type {
  CopySource,
  CopyTarget,
  RevisionState,
  TargetTransaction,
} from "./endpoint.ts";
import {
  type CopyValue,
  type TableSpec,
  type TableTally,
  Tally,
} from "./tables.ts";

const encoder = new TextEncoder();

function toValue(value: unknown, type: TableSpec["types"][number]): CopyValue {
  if (value === null || value === undefined) return null;
  switch (type) {
    case "text":
      return readText(value);
    case "int":
      return Number(value);
    case "bytes":
      return value instanceof Uint8Array
        ? value
        : encoder.encode(String(value));
    case "bool":
      return Number(value) !== 0;
  }
}

function selectSql(spec: TableSpec): string {
  const columns = spec.columns.map((c, i) =>
    spec.types[i] === "text" ? `${wholeText(c)} AS ${c}` : c
  );
  return `SELECT ${
    columns.join(", ")
  } FROM ${spec.name} ORDER BY ${spec.orderBy}`;
}

function fail(op: string, label: string, error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  return new StoreError(`${op} ${label} failed: ${messageOf(error)}`, {
    cause: error,
  });
}

function auditSequence(db: DatabaseSync): number {
  const row = db.prepare(
    `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'resource_audit'), 0),
       coalesce((SELECT max(id) FROM resource_audit), 0),
       coalesce((SELECT max(id) FROM resource_audit_orphans), 0)) AS n`,
  ).get() as { n: number };
  return row.n;
}

function readState(db: DatabaseSync): RevisionState & { newestChange: number } {
  const row = db.prepare(
    `SELECT ${CURRENT_REVISION} AS revision,
       coalesce((SELECT compacted_through FROM change_log WHERE id = 1), 0) AS compacted,
       coalesce((SELECT max(revision) FROM resource_changes), 0) AS newest`,
  ).get() as { revision: number; compacted: number; newest: number };
  return {
    revision: row.revision,
    compactedThrough: row.compacted,
    newestChange: row.newest,
    auditSequence: auditSequence(db),
  };
}

/**
 * Opens the SQLite store at `path` as a copy source, read-only. It must be a protostore
 * database at the current schema (a Go or older file: run `migrate` on it first).
 */
export function openSqliteSource(path: string): CopySource {
  const db = openConnection(path, { readOnly: true });
  try {
    const plan = planMigrations(db);
    if (plan.problems.length > 0) {
      throw new StoreError(
        `cannot copy from ${path}: ${plan.problems.join("; ")}`,
      );
    }
    if (plan.pending.length > 0 || plan.schemaVersion === 0) {
      throw new StoreError(
        `cannot copy from ${path}: it is at schema version ${plan.schemaVersion} with ` +
          `${plan.pending.length} migration(s) pending; run \`deno run -A cli.ts migrate --db PATH\` on it first`,
      );
    }
  } catch (error) {
    db.close();
    throw error;
  }
  return {
    label: path,
    async snapshot(fn) {
      db.exec("BEGIN");
      try {
        return await fn();
      } finally {
        db.exec("COMMIT");
      }
    },
    count(spec) {
      return Promise.resolve(
        (db.prepare(`SELECT count(*) AS n FROM ${spec.name}`).get() as {
          n: number;
        }).n,
      );
    },
    state() {
      return Promise.resolve(readState(db));
    },
    async *rows(spec, batchSize) {
      const statement = returnArrays(db.prepare(selectSql(spec)));
      let batch: CopyValue[][] = [];
      try {
        for (const raw of statement.iterate() as Iterable<unknown[]>) {
          const row = new Array<CopyValue>(raw.length);
          for (let i = 0; i < raw.length; i++) {
            row[i] = toValue(raw[i], spec.types[i]);
          }
          batch.push(row);
          if (batch.length >= batchSize) {
            yield batch;
            batch = [];
          }
        }
      } catch (error) {
        throw fail(`reading ${spec.name} of`, path, error);
      }
      if (batch.length > 0) yield batch;
    },
    close() {
      if (db.isOpen) db.close();
      return Promise.resolve();
    },
  };
}

function fileExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function removeQuietly(path: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    try {
      Deno.removeSync(path + suffix);
    } catch { /* not there */ }
  }
}

/**
 * Opens the SQLite store at `path` as a copy target, migrated to the current schema. A
 * missing file is built as `.NAME.copy-PID` in the same directory and renamed to `path`
 * by {@linkcode CopyTarget.close} only if the copy committed.
 */
export function openSqliteTarget(path: string): CopyTarget {
  const existed = fileExists(path);
  const work = existed ? path : join(
    dirname(path),
    `.${basename(path)}.copy-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
  );
  let db: DatabaseSync;
  try {
    db = openConnection(work);
  } catch (error) {
    throw fail("opening", path, error);
  }
  try {
    prepareDatabase(db);
  } catch (error) {
    db.close();
    if (!existed) removeQuietly(work);
    throw fail("preparing", path, error);
  }
  let committed = false;
  const inserts = new Map<string, StatementSync>();
  const insert = (spec: TableSpec) => {
    let statement = inserts.get(spec.name);
    if (statement === undefined) {
      statement = db.prepare(
        `INSERT INTO ${spec.name} (${spec.columns.join(", ")}) VALUES (${
          spec.columns.map(() => "?").join(", ")
        })`,
      );
      inserts.set(spec.name, statement);
    }
    return statement;
  };
  const tx: TargetTransaction = {
    occupancy() {
      const row = db.prepare(
        `SELECT (SELECT count(*) FROM resources) AS resources,
           (SELECT count(*) FROM resource_audit) AS resource_audit,
           (SELECT count(*) FROM resource_audit_orphans) AS resource_audit_orphans,
           (SELECT count(*) FROM message_schemas) AS message_schemas,
           (SELECT count(*) FROM resource_changes) AS resource_changes,
           ${CURRENT_REVISION} AS revision`,
      ).get() as Record<string, number>;
      return Promise.resolve({ ...row });
    },
    write(spec, rows) {
      const statement = insert(spec);
      const bools = spec.types.map((t) => t === "bool");
      for (const row of rows) {
        const values = bools.some(Boolean)
          ? row.map((v, i) => bools[i] ? (v ? 1 : 0) : v)
          : row;
        statement.run(...(values as (string | number | Uint8Array | null)[]));
      }
      return Promise.resolve();
    },
    endTable() {
      return Promise.resolve();
    },
    setState(state) {
      db.prepare(
        `INSERT INTO change_log (id, compacted_through) VALUES (1, ?)
         ON CONFLICT (id) DO UPDATE SET compacted_through = excluded.compacted_through`,
      ).run(state.compactedThrough);
      db.prepare("DELETE FROM sqlite_sequence WHERE name = 'resource_audit'")
        .run();
      db.prepare(
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('resource_audit', ?)",
      ).run(state.auditSequence);
      return Promise.resolve();
    },
    tally(spec): Promise<TableTally> {
      const tally = new Tally(spec.types);
      const statement = returnArrays(db.prepare(selectSql(spec)));
      for (const raw of statement.iterate() as Iterable<unknown[]>) {
        tally.add(raw.map((v, i) => toValue(v, spec.types[i])));
      }
      return Promise.resolve(tally.result);
    },
    state() {
      const { newestChange: _, ...state } = readState(db);
      return Promise.resolve(state);
    },
    merge(mode) {
      return Promise.resolve(sqliteMergeWriter(db, path, mode));
    },
  };
  return {
    label: path,
    revisionFromLog: true,
    async transaction(fn) {
      try {
        db.exec("BEGIN IMMEDIATE");
      } catch (error) {
        throw fail("writing", path, error);
      }
      try {
        const result = await fn(tx);
        db.exec("COMMIT");
        committed = true;
        return result;
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw fail("copy to", path, error);
      }
    },
    close() {
      if (db.isOpen) db.close();
      if (!existed) {
        if (committed && !fileExists(path)) Deno.renameSync(work, path);
        else if (committed) {
          removeQuietly(work);
          throw new StoreError(
            `${path} appeared while the copy ran; the copy was not moved into place`,
          );
        } else removeQuietly(work);
      }
      return Promise.resolve();
    },
  };
}
