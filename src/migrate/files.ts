/**
 * The migration files shipped with the module. They are text imports, so they travel
 * inside the published package and work when protostore is imported from a registry;
 * `tests/migrate/runner_test.ts` fails when a file in `migrations/` is missing here.
 *
 * @module
 */
import { createHash } from "node:crypto";
import m0001 from "../../migrations/0001_resources.sql" with { type: "text" };
import m0002 from "../../migrations/0002_resource_audit.sql" with {
  type: "text",
};
import m0003 from "../../migrations/0003_cascade_ms_types.sql" with {
  type: "text",
};
import m0004 from "../../migrations/0004_iso_time_checks_16k_pages.sql" with {
  type: "text",
};
import m0005 from "../../migrations/0005_revisions.sql" with { type: "text" };

/** One migration file: `NNNN_description.sql`. */
export interface Migration {
  /** The number the file name starts with; recorded in `schema_version.version`. */
  readonly version: number;
  /** The file name, e.g. `0001_resources.sql`. */
  readonly name: string;
  /** The SQL text. */
  readonly sql: string;
  /** SHA-256 of the SQL text, hex; recorded when applied, compared on every run. */
  readonly checksum: string;
  /**
   * The file asks for foreign keys off while it runs (first line
   * `-- protostore: foreign-keys-off`): it rebuilds a table, and a DROP TABLE with
   * foreign keys on would cascade. The runner checks `foreign_key_check` before commit.
   */
  readonly foreignKeysOff: boolean;
  /**
   * The page size the file asks for (a leading line `-- protostore: page-size N`), or
   * `undefined`. A new database gets it before its first table; an existing one is
   * rebuilt with `VACUUM` (outside WAL) after the file commits.
   */
  readonly pageSize?: number;
}

const FOREIGN_KEYS_OFF = /^--\s*protostore:\s*foreign-keys-off\s*$/m;
const PAGE_SIZE = /^--\s*protostore:\s*page-size\s+(\d+)\s*$/;

/**
 * Builds a {@linkcode Migration} from a file name and its SQL text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineMigration } from "./files.ts";
 *
 * const m = defineMigration("0004_tags.sql", "CREATE INDEX i ON resources(updated_at);");
 * assert(m.version === 4);
 * ```
 */
export function defineMigration(name: string, sql: string): Migration {
  const match = /^(\d{4})_[A-Za-z0-9_]+\.sql$/.exec(name);
  if (!match) {
    throw new Error(
      `migration file name ${name} does not match NNNN_description.sql`,
    );
  }
  // Directives are the leading comment lines.
  const header: string[] = [];
  for (const line of sql.split("\n")) {
    if (!line.startsWith("--")) break;
    header.push(line);
  }
  const pageSize = header.map((line) => PAGE_SIZE.exec(line)).find((m) => m);
  if (pageSize) {
    const size = Number(pageSize[1]);
    if (size < 512 || size > 65536 || (size & (size - 1)) !== 0) {
      throw new Error(
        `migration ${name} asks for page size ${size}: SQLite takes a power of two from 512 to 65536`,
      );
    }
  }
  return {
    version: Number(match[1]),
    name,
    sql,
    checksum: createHash("sha256").update(sql).digest("hex"),
    foreignKeysOff: FOREIGN_KEYS_OFF.test(sql.split("\n", 1)[0]),
    ...(pageSize ? { pageSize: Number(pageSize[1]) } : {}),
  };
}

/**
 * Every migration this version of protostore knows, in the order they apply.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MIGRATIONS } from "./files.ts";
 *
 * assert(MIGRATIONS[0].name === "0001_resources.sql");
 * ```
 */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  defineMigration("0001_resources.sql", m0001),
  defineMigration("0002_resource_audit.sql", m0002),
  defineMigration("0003_cascade_ms_types.sql", m0003),
  defineMigration("0004_iso_time_checks_16k_pages.sql", m0004),
  defineMigration("0005_revisions.sql", m0005),
]);
