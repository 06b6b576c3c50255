/**
 * The only place the `postgres` driver is opened: a pool with the settings the store
 * relies on, and one classifier of PostgreSQL failures into {@linkcode StoreError}.
 *
 * What the driver does by default and the store cannot have:
 * - server notices go to stdout (that would corrupt `--json` output): `onnotice` drops them;
 * - `bytea` arrives as a Node `Buffer` (messages with bytes fields would compare unequal
 *   to the ones saved): parsed to a plain `Uint8Array`;
 * - `int8` (ids, revisions, `count(*)`) arrives as a string: parsed to a number (all of
 *   them stay far below 2^53);
 * - the store's tables live in one schema (`search_path`, a startup parameter, so every
 *   pooled connection has it and prepared statements stay valid).
 *
 * @module
 */
import postgres from "postgres";
import { fileURLToPath } from "node:url";
import { Buffer } from "node:buffer";
import { StoreError, type StoreErrorOptions } from "../errors.ts";

/** The driver's handle: a pool, a reserved connection or a transaction. */
export type Sql = postgres.Sql<Record<string, never>>;
/** A transaction handle of the driver. */
export type TransactionSql = postgres.TransactionSql<Record<string, never>>;

/** Options of {@linkcode openPool}. */
export interface PoolOptions {
  /** The schema holding the store's tables (default `public`). */
  schema: string;
  /** Connections in the pool (default 10). */
  max?: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeoutSeconds?: number;
  /** Every transaction of the pool read-only (the server refuses writes too). */
  readOnly?: boolean;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,51}$/;

/**
 * Checks a schema name: lower-case letters, digits and `_`, not starting with a digit,
 * so it needs no quoting anywhere; at most 52 bytes, since the store's change channel
 * `protostore_<schema>` must fit PostgreSQL's 63-byte names too (a longer one migrated
 * fine and then failed every write with "channel name too long").
 */
export function requireSchemaName(schema: unknown): string {
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema)) {
    throw new StoreError(
      `schema must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 52 characters, so that its change channel protostore_<schema> fits PostgreSQL's 63-byte names), got ${
        JSON.stringify(schema)
      }`,
    );
  }
  if (schema.startsWith("pg_")) {
    throw new StoreError(
      `schema ${
        JSON.stringify(schema)
      }: names starting with pg_ are reserved by PostgreSQL; choose another`,
    );
  }
  return schema;
}

function parseBytea(text: string): Uint8Array {
  const buffer = Buffer.from(text.slice(2), "hex");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** How the driver is pointed at a server: a URL it parses, and what it cannot parse. */
export interface DriverTarget {
  /** The connection string in a form the driver's URL parser takes. */
  url: string;
  /** A host or Unix socket directory (`/run/postgresql`) given outside the authority. */
  host?: string;
  /** A port given as `?port=` or after a socket directory. */
  port?: number;
}

/**
 * libpq's ways of naming a Unix socket or a host outside the authority, which the
 * driver's URL parser does not take (it sends an unknown `host` query parameter to the
 * server as a setting, and an empty host with a user name is not a valid URL): `?host=`
 * and `?port=`, an empty host (`postgres://app@/db?host=/run/postgresql`,
 * `postgresql:///db?host=/tmp`) and a percent-encoded directory as the host
 * (`postgresql://%2Frun%2Fpostgresql/db`). Returns the URL with those parts taken out
 * and them as options; any other URL is returned as it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { driverTarget } from "./connection.ts";
 *
 * assert.deepEqual(driverTarget("postgres://app@/db?host=/run/postgresql&sslmode=disable"), {
 *   url: "postgres://app@localhost/db?sslmode=disable",
 *   host: "/run/postgresql",
 * });
 * assert.deepEqual(driverTarget("postgresql://%2Ftmp:5433/db"), {
 *   url: "postgresql://localhost/db",
 *   host: "/tmp",
 *   port: 5433,
 * });
 * assert.deepEqual(driverTarget("postgres://db:5432/app"), { url: "postgres://db:5432/app" });
 * ```
 */
export function driverTarget(url: string): DriverTarget {
  const parts = /^(postgres(?:ql)?:\/\/)([^/?#]*)([^?#]*)(?:\?([^#]*))?/i.exec(
    url,
  );
  if (parts === null) return { url };
  const [, scheme, authority, path, query = ""] = parts;
  const at = authority.lastIndexOf("@");
  const userinfo = authority.slice(0, at + 1);
  let hostPort = authority.slice(at + 1);
  let host: string | undefined;
  let port: number | undefined;
  const socket = /^(%2F[^:]*)(?::(\d+))?$/i.exec(hostPort);
  if (socket !== null) {
    host = decodeURIComponent(socket[1]);
    if (socket[2] !== undefined) port = Number(socket[2]);
    hostPort = "";
  }
  const params = new URLSearchParams(query);
  const hostParam = params.get("host");
  if (hostParam !== null && hostParam !== "") host = hostParam;
  const portParam = params.get("port");
  if (portParam !== null && /^\d+$/.test(portParam)) port = Number(portParam);
  if (host === undefined && port === undefined) return { url };
  params.delete("host");
  params.delete("port");
  // The driver takes the host option over the URL's; this placeholder only parses.
  if (hostPort === "") hostPort = "localhost";
  const rest = params.toString();
  return {
    url: `${scheme}${userinfo}${hostPort}${path}${
      rest === "" ? "" : `?${rest}`
    }`,
    ...(host === undefined ? {} : { host }),
    ...(port === undefined ? {} : { port }),
  };
}

/** Opens a pool on `url` (connections are made lazily, on the first query). */
export function openPool(url: string, options: PoolOptions): Sql {
  const target = driverTarget(url);
  // The driver's own error quotes the whole string, password included.
  if (!URL.canParse(target.url)) {
    throw new StoreError(
      `${
        redactUrl(url)
      } is not a valid connection string: expected postgres://user:password@host:port/database ` +
        "(percent-encode / @ : # ? and spaces in the user name and password; a Unix socket " +
        "directory goes in ?host=)",
    );
  }
  return postgres(target.url, {
    ...(target.host === undefined ? {} : { host: target.host }),
    ...(target.port === undefined ? {} : { port: target.port }),
    max: options.max ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    onnotice: () => {},
    // Connections are long-lived; the driver's default recycles them every 30-60 min.
    max_lifetime: null,
    connection: {
      application_name: "protostore",
      search_path: options.schema,
      ...(options.readOnly ? { default_transaction_read_only: true } : {}),
    },
    types: {
      bytea: {
        to: 17,
        from: [17],
        serialize: (x: Uint8Array) =>
          "\\x" + Buffer.from(x.buffer, x.byteOffset, x.byteLength)
            .toString("hex"),
        parse: parseBytea,
      },
      int8: {
        to: 20,
        from: [20],
        serialize: (x: number) => String(x),
        parse: (x: string) => Number(x),
      },
    },
  }) as unknown as Sql;
}

/** SQLSTATE of a driver error, or its Node error code (`ECONNREFUSED`, `CONNECTION_CLOSED`). */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Whether the failure is a serialization failure or deadlock: the transaction may be retried. */
export function isRetryable(error: unknown): boolean {
  const state = sqlState(error);
  return state === "40001" || state === "40P01";
}

/** Whether the connection is gone (the server stopped, crashed or dropped us). */
export function isConnectionLost(error: unknown): boolean {
  const state = sqlState(error) ?? "";
  return state.startsWith("08") || state === "57P01" || state === "57P02" ||
    state === "57P03" || state === "CONNECTION_CLOSED" ||
    state === "CONNECTION_DESTROYED" || state === "CONNECTION_ENDED" ||
    state === "ECONNRESET" || state === "ECONNREFUSED" || state === "EPIPE" ||
    state === "CONNECT_TIMEOUT";
}

/**
 * A PostgreSQL or driver failure as a {@linkcode StoreError} with the same `code`
 * classes as SQLite's; a `StoreError` passes through. `where` names the target
 * (`postgres://…` without its password).
 */
export function pgFailure(
  op: string,
  target: string,
  error: unknown,
): StoreError {
  if (error instanceof StoreError) return error;
  const state = sqlState(error) ?? "";
  const reason = (error as Error)?.message ?? String(error);
  let code: StoreErrorOptions["code"];
  let hint = "";
  if (state === "40001" || state === "40P01") {
    code = "busy";
    hint =
      ": another transaction wrote the same rows concurrently; run the transaction again";
  } else if (state === "53100") {
    code = "disk_full";
    hint = ": free disk space on the server and retry; nothing was written";
  } else if (state === "25006") {
    code = "read_only";
    hint = ": the server or the transaction is read-only";
  } else if (state.startsWith("23")) {
    code = "constraint";
  } else if (state === "54000") {
    code = "too_big";
  } else if (state === "XX001" || state === "XX002") {
    code = "corrupt";
  } else if (
    state === "ECONNREFUSED" || state === "CONNECT_TIMEOUT" ||
    state === "28P01" || state === "28000" || state === "3D000"
  ) {
    code = "cant_open";
  } else if (/\b(TLS|SSL)\b/.test(reason)) {
    // E.g. sslmode=require against a server without TLS: the socket is reset during
    // the handshake, which is no lost connection of a running session.
    code = "cant_open";
    hint =
      ": the TLS handshake failed; check sslmode and that the server has TLS enabled";
  } else if (op === "connect" && isConnectionLost(error)) {
    code = "cant_open";
    hint = ": could not connect to the server";
  } else if (isConnectionLost(error)) {
    code = "io";
    hint =
      ": the connection to the server was lost; an open transaction was rolled back by " +
      "the server, and the next call reconnects";
  }
  return new StoreError(
    `${op} on ${target} failed: ${reason}${state ? ` (${state})` : ""}${hint}`,
    { cause: error, code },
  );
}

/**
 * How messages name a PostgreSQL store: the URL without its password, and the schema
 * unless it is `public`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storeLabel } from "./connection.ts";
 *
 * assert.equal(storeLabel("postgres://app:pw@db/app", "crm"), "postgres://app:***@db/app (schema crm)");
 * assert.equal(storeLabel("postgres://db/app"), "postgres://db/app");
 * ```
 */
export function storeLabel(url: string, schema = "public"): string {
  return `${redactUrl(url)}${schema === "public" ? "" : ` (schema ${schema})`}`;
}

/**
 * `url` with its password replaced by `***`, for messages. Text that is not a URL is
 * returned as it is (see {@linkcode redactSecrets} for text that contains URLs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactUrl } from "./connection.ts";
 *
 * assert.equal(redactUrl("postgres://app:s3cret@db:5432/app"), "postgres://app:***@db:5432/app");
 * ```
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    for (const key of [...parsed.searchParams.keys()]) {
      if (/^(ssl)?(password|pass)$/i.test(key)) {
        parsed.searchParams.set(key, "***");
      }
    }
    return parsed.toString();
  } catch {
    // Still one location, not free text: neither whitespace nor `/` ends its password
    // (the user info runs to the last `@`, a password parameter to the next `&`).
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@\/]*:).*@/is, "$1***@")
      .replace(/\b((?:ssl)?(?:password|pass))=[^&]*/gi, "$1=***");
  }
}

// `scheme://user:PASSWORD@` (the password may hold `@` and `:`; whitespace, `/` and
// quotes end the URL), and `password=VALUE` in a query string or a keyword list.
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@\/"'`]*:)[^\s\/"'`]*@/gi;
// (libpq's sslpassword, the client key's passphrase, too.)
const PASSWORD_PARAM = /\b((?:ssl)?(?:password|pass))=[^&\s"'`]*/gi;

/**
 * `text` with every password of a connection string in it replaced by `***`: the one
 * redaction every message, error and CLI output that may quote a URL goes through.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactSecrets } from "./connection.ts";
 *
 * assert.equal(
 *   redactSecrets("cannot reach postgres://app:p@ss:w0rd@db/app?password=x&sslmode=require"),
 *   "cannot reach postgres://app:***@db/app?password=***&sslmode=require",
 * );
 * ```
 */
export function redactSecrets(text: string): string {
  return text.replace(USERINFO, "$1***@").replace(PASSWORD_PARAM, "$1=***");
}

/**
 * Whether `location` is a PostgreSQL connection string (`postgres://`, `postgresql://`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPostgresUrl } from "./connection.ts";
 *
 * assert(isPostgresUrl("postgresql://db/app") && !isPostgresUrl("./app.sqlite"));
 * ```
 */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * A store location that is not a PostgreSQL URL — a path or a `file:` URL — as a
 * SQLite file path; throws {@linkcode StoreError} on an empty location, a bad `file:`
 * URL or another scheme. (It lives beside {@linkcode isPostgresUrl}: every layer that
 * takes "a path or a URL" chooses the backend with these two.)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sqlitePath } from "./connection.ts";
 *
 * assert.equal(sqlitePath("file:///tmp/app.sqlite"), "/tmp/app.sqlite");
 * assert.equal(sqlitePath("./app.sqlite"), "./app.sqlite");
 * assert.throws(() => sqlitePath("mysql://db/app"), /unsupported scheme/);
 * ```
 */
export function sqlitePath(location: string): string {
  if (typeof location !== "string" || location === "") {
    throw new StoreError(
      `a store location is a path or a URL, got ${JSON.stringify(location)}`,
    );
  }
  if (/^file:/i.test(location)) {
    try {
      return fileURLToPath(location);
    } catch (error) {
      throw new StoreError(`${location} is not a valid file: URL`, {
        cause: error,
      });
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new StoreError(
      `${
        redactUrl(location)
      }: unsupported scheme; use postgres://, postgresql://, a file: URL or a path`,
    );
  }
  return location;
}
