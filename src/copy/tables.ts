/**
 * The tables `copyStore` moves, described once for both backends: their columns and
 * column types, the order rows are read in, and the per-row checksum both ends compute
 * (in JavaScript for rows read, in SQL on PostgreSQL for rows written), so a copy is
 * verified without trusting either driver.
 *
 * The checksum of a table is the sum of a 52-bit prefix of each row's MD5 over a
 * canonical text (text as UTF-8 hex, numbers in decimal, bytes as hex, NULL as `-`):
 * independent of row order, and every row carries its key (ids, revisions), so a
 * reordered history changes it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";

/** How a column's values are typed on both backends. */
export type ColumnType = "text" | "int" | "bytes" | "bool";

/** A value of a copied row. */
export type CopyValue = string | number | Uint8Array | boolean | null;

/** One copied table. */
export interface TableSpec {
  /** The table's name (the same on both backends). */
  name: CopiedTable;
  /** Its columns, in the order rows carry them. */
  columns: readonly string[];
  /** The type of each column. */
  types: readonly ColumnType[];
  /** ORDER BY of the read: the primary key, so inserts go in index order. */
  orderBy: string;
}

/** The names of the copied tables. */
export type CopiedTable =
  | "message_schemas"
  | "resources"
  | "resource_audit"
  | "resource_audit_orphans"
  | "resource_changes";

/** The copied tables, in insert order (parents first). */
export const TABLES: readonly TableSpec[] = [
  {
    name: "message_schemas",
    columns: ["id", "type_name", "digest", "descriptor_set", "created_at"],
    types: ["int", "text", "text", "bytes", "text"],
    orderBy: "id",
  },
  {
    name: "resources",
    columns: [
      "kind",
      "id",
      "data",
      "updated_at",
      "schema_id",
      "revision",
      "create_revision",
    ],
    types: ["text", "text", "bytes", "text", "int", "int", "int"],
    orderBy: "kind, id",
  },
  {
    name: "resource_audit",
    columns: [
      "id",
      "kind",
      "resource_id",
      "data",
      "archived_at",
      "version_hash",
      "tag",
      "schema_id",
      "revision",
    ],
    types: [
      "int",
      "text",
      "text",
      "bytes",
      "text",
      "text",
      "text",
      "int",
      "int",
    ],
    orderBy: "id",
  },
  {
    name: "resource_audit_orphans",
    columns: [
      "id",
      "kind",
      "resource_id",
      "data",
      "archived_at",
      "version_hash",
      "tag",
      "schema_id",
    ],
    types: ["int", "text", "text", "bytes", "text", "text", "text", "int"],
    orderBy: "id",
  },
  {
    name: "resource_changes",
    columns: ["revision", "kind", "id", "deleted"],
    types: ["int", "text", "text", "bool"],
    orderBy: "revision, kind, id",
  },
];

/** Rows and checksum of one table. */
export interface TableTally {
  /** Rows. */
  rows: number;
  /** Sum of the rows' hashes (a decimal string: it outgrows 2^53). */
  checksum: string;
}

/** Accumulates the count and checksum of the rows of one table. */
export class Tally {
  #rows = 0;
  #sum = 0n;
  readonly #types: readonly ColumnType[];

  /** A tally for rows of `types`. */
  constructor(types: readonly ColumnType[]) {
    this.#types = types;
  }

  /** Counts `row` and adds its hash. */
  add(row: readonly CopyValue[]): void {
    this.#rows++;
    this.#sum += rowHash(row, this.#types);
  }

  /** The count and checksum so far. */
  get result(): TableTally {
    return { rows: this.#rows, checksum: this.#sum.toString() };
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .toString("hex");
}

/** The 52-bit hash of one row (see the module doc). */
export function rowHash(
  row: readonly CopyValue[],
  types: readonly ColumnType[],
): bigint {
  let text = "";
  for (let i = 0; i < types.length; i++) {
    if (i > 0) text += "|";
    const value = row[i];
    if (value === null) {
      text += "-";
      continue;
    }
    switch (types[i]) {
      case "text":
        text += Buffer.from(value as string, "utf8").toString("hex");
        break;
      case "int":
        text += String(value);
        break;
      case "bytes":
        text += hex(value as Uint8Array);
        break;
      case "bool":
        text += value ? "1" : "0";
        break;
    }
  }
  const digest = createHash("md5").update(text).digest("hex");
  return BigInt("0x" + digest.slice(0, 13));
}

/** The same canonical text in PostgreSQL SQL, for a server-side checksum. */
export function pgRowText(spec: TableSpec): string {
  return spec.columns.map((column, i) => {
    switch (spec.types[i]) {
      case "text":
        return `coalesce(encode(convert_to(${column}, 'UTF8'), 'hex'), '-')`;
      case "int":
        return `coalesce(${column}::text, '-')`;
      case "bytes":
        return `coalesce(encode(${column}, 'hex'), '-')`;
      case "bool":
        return `CASE WHEN ${column} THEN '1' ELSE '0' END`;
    }
  }).join(" || '|' || ");
}

/** SQL computing `{ rows, checksum }` of a table on PostgreSQL. */
export function pgTallySql(spec: TableSpec): string {
  return `SELECT count(*)::int8 AS rows, coalesce(sum(('x' || substr(md5(${
    pgRowText(spec)
  }), 1, 13))::bit(52)::int8), 0)::text AS checksum FROM ${spec.name}`;
}
