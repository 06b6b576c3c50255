/**
 * Error classes thrown by protostore. Every error the library throws on purpose is a
 * {@linkcode StoreError}, so callers can catch the whole family with one `instanceof`,
 * and every error carries data (`kind`, `id`, `offset`, `file`, `code`) so that programs
 * branch on fields, never on message text.
 *
 * This module imports nothing: every subsystem may import it.
 *
 * @module
 */

/**
 * How a SQLite failure is classified (from its primary result code), so callers can
 * retry on `"busy"`, report `"disk_full"`, or restore a backup on `"corrupt"`:
 *
 * - `"busy"`: another connection holds the lock (SQLITE_BUSY, SQLITE_LOCKED);
 * - `"disk_full"`: the disk or a quota is full (SQLITE_FULL);
 * - `"read_only"`: the file, directory or connection cannot be written (SQLITE_READONLY);
 * - `"corrupt"`: the file is damaged or not a database (SQLITE_CORRUPT, SQLITE_NOTADB);
 * - `"constraint"`: a constraint refused the write (SQLITE_CONSTRAINT);
 * - `"too_big"`: a value exceeds SQLite's limits (SQLITE_TOOBIG);
 * - `"cant_open"`: the file cannot be opened (SQLITE_CANTOPEN);
 * - `"io"`: the operating system reported an I/O error (SQLITE_IOERR).
 *
 * @example Branch on the code, not on the message
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, StoreError } from "@protostore/store";
 * import { fromJson } from "@bufbuild/protobuf";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * openStore(path).close();
 * using reader = openStore(path, { readOnly: true });
 * try {
 *   reader.saveResource(StructSchema, "agent", "a1", fromJson(StructSchema, {}));
 *   assert.fail("a read-only store cannot write");
 * } catch (error) {
 *   assert.ok(error instanceof StoreError && error.code === "read_only");
 * }
 * ```
 */
export type SqliteErrorCode =
  | "busy"
  | "disk_full"
  | "read_only"
  | "corrupt"
  | "constraint"
  | "too_big"
  | "cant_open"
  | "io";

/** Options of {@linkcode StoreError}: the cause and the SQLite failure class. */
export interface StoreErrorOptions extends ErrorOptions {
  /** The SQLite failure class, when a SQLite call failed. */
  code?: SqliteErrorCode;
}

/**
 * Base class of every error protostore throws on purpose.
 *
 * @example Catch any store failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, StoreError } from "@protostore/store";
 *
 * assert.throws(() => openStore("/dev/null/not-a-dir/db.sqlite"), StoreError);
 * ```
 */
export class StoreError extends Error {
  /** The SQLite failure class when a SQLite call failed; `undefined` otherwise. */
  readonly code?: SqliteErrorCode;

  /** Creates an error; `cause` keeps the underlying SQLite or decode error. */
  constructor(message: string, options?: StoreErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    if (options?.code !== undefined) this.code = options.code;
  }
}

/**
 * A resource (kind, id) does not exist.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NotFoundError, openStore } from "@protostore/store";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * assert.throws(
 *   () => store.getResource(StructSchema, "agent", "missing"),
 *   (error) => error instanceof NotFoundError && error.kind === "agent" && error.id === "missing",
 * );
 * ```
 */
export class NotFoundError extends StoreError {
  /** The kind looked up. */
  readonly kind: string;
  /** The id looked up. */
  readonly id: string;

  /** Creates the error for `kind`/`id`; the message is built when not given. */
  constructor(
    kind: string,
    id: string,
    message?: string,
    options?: StoreErrorOptions,
  ) {
    super(
      message ?? `resource ${describeResource(kind, id)} does not exist`,
      options,
    );
    this.kind = kind;
    this.id = id;
  }
}

/** What an audit lookup asked for: a snapshot id, a version hash, a tag or a time. */
export type AuditLookup =
  | { auditId: number }
  | { versionHash: string }
  | { tag: string }
  | { at: Date | number };

/**
 * No audit snapshot of (kind, id) matches what was asked for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuditNotFoundError, openStore } from "@protostore/store";
 * import { StructSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * assert.throws(
 *   () => store.getAuditByTag(StructSchema, "agent", "a1", "v9"),
 *   (error) => error instanceof AuditNotFoundError && error.lookup.tag === "v9",
 * );
 * ```
 */
export class AuditNotFoundError extends StoreError {
  /** The kind looked up. */
  readonly kind: string;
  /** The resource id looked up. */
  readonly id: string;
  /** What was looked up (`{ tag }`, `{ versionHash }`, `{ auditId }` or `{ at }`). */
  readonly lookup: Partial<
    { auditId: number; versionHash: string; tag: string; at: Date | number }
  >;

  /** Creates the error; the message names the resource and the lookup. */
  constructor(
    kind: string,
    id: string,
    lookup: AuditLookup,
    message?: string,
    options?: StoreErrorOptions,
  ) {
    super(
      message ??
        `no audit snapshot of ${describeResource(kind, id)} with ${
          describeLookup(lookup)
        }`,
      options,
    );
    this.kind = kind;
    this.id = id;
    this.lookup = lookup;
  }
}

/**
 * A method was called on a store after it was closed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, StoreClosedError } from "@protostore/store";
 *
 * const store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * store.close();
 * assert.throws(() => store.deleteResource("agent", "a1"), StoreClosedError);
 * ```
 */
export class StoreClosedError extends StoreError {}

/** Options of {@linkcode MigrationError}. */
export interface MigrationErrorOptions extends StoreErrorOptions {
  /** The migration file concerned (`0003_cascade_ms_types.sql`), when one is. */
  file?: string;
}

/**
 * The database schema cannot be brought to this code's version: pending migrations on a
 * read-only open, an applied migration file that was edited, a database written by newer
 * code, a file that is not protostore's, or a migration file that failed. `file` names
 * the migration file concerned, when one is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MigrationError, openStore } from "@protostore/store";
 *
 * const path = await Deno.makeTempFile({ suffix: ".sqlite" });
 * // An empty file opened read-only: every migration is pending.
 * assert.throws(() => openStore(path, { readOnly: true }), MigrationError);
 * ```
 */
export class MigrationError extends StoreError {
  /** The migration file concerned, when one is. */
  readonly file?: string;

  /** Creates the error; `options.file` names the migration file. */
  constructor(message: string, options?: MigrationErrorOptions) {
    super(message, options);
    if (options?.file !== undefined) this.file = options.file;
  }
}

/**
 * Bytes that cannot be decoded: a Badger backup stream, a KVList or a protobuf wire blob.
 * `offset` is the byte offset, from the start of the input, where decoding failed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DecodeError } from "@protostore/store";
 *
 * const error = new DecodeError("truncated varint", 12);
 * assert.equal(error.offset, 12);
 * assert.match(error.message, /byte offset 12/);
 * ```
 */
export class DecodeError extends StoreError {
  /** Byte offset of the failure from the start of the input. */
  readonly offset: number;

  /** Creates the error; the message gets " at byte offset N" appended. */
  constructor(message: string, offset: number, options?: StoreErrorOptions) {
    super(`${message} at byte offset ${offset}`, options);
    this.offset = offset;
  }
}

/**
 * A row was read with a message schema whose type differs from the one the row was
 * written with (saved as `example.v1.Skill`, read with `example.v1.Agent`). Every typed
 * read of the Store checks; rows with no recorded type (written by the Go daemon,
 * imported from Badger) are not checked. To read across a rename of the message, pass
 * the old name in `acceptTypes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore, TypeMismatchError } from "@protostore/store";
 * import { create } from "@bufbuild/protobuf";
 * import { BytesValueSchema, StringValueSchema } from "@bufbuild/protobuf/wkt";
 *
 * using store = openStore(`${await Deno.makeTempDir()}/db.sqlite`);
 * store.saveResource(StringValueSchema, "note", "n1", create(StringValueSchema, { value: "hi" }));
 * assert.throws(
 *   () => store.getResource(BytesValueSchema, "note", "n1"),
 *   (error) =>
 *     error instanceof TypeMismatchError && error.id === "n1" &&
 *     error.recordedType === "google.protobuf.StringValue" &&
 *     error.requestedType === "google.protobuf.BytesValue",
 * );
 * // Reading the bytes as another type is explicit (same wire format: field 1, length-delimited).
 * const bytes = store.getResource(BytesValueSchema, "note", "n1", {
 *   acceptTypes: ["google.protobuf.StringValue"],
 * });
 * assert.equal(new TextDecoder().decode(bytes.value), "hi");
 * ```
 */
export class TypeMismatchError extends StoreError {
  /** The kind of the row. */
  readonly kind: string;
  /** The id of the row (the resource id, for a snapshot). */
  readonly id: string;
  /** The type name recorded with the row. */
  readonly recordedType: string;
  /** The type name of the schema the caller read with. */
  readonly requestedType: string;

  /** Creates the error; the message names both types. */
  constructor(
    kind: string,
    id: string,
    recordedType: string,
    requestedType: string,
    message?: string,
  ) {
    super(
      message ??
        `${
            describeResource(kind, id)
          } was saved as ${recordedType}, not ${requestedType}: ` +
          `read it with the ${recordedType} schema`,
    );
    this.kind = kind;
    this.id = id;
    this.recordedType = recordedType;
    this.requestedType = requestedType;
  }
}

/**
 * A conditional write (`ifRevision`) found the resource at another revision. `actual` is
 * 0 when the resource does not exist. Nothing was changed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConflictError } from "@protostore/store";
 *
 * const error = new ConflictError("agent", "a1", 3, 5);
 * assert.equal(error.actual, 5);
 * ```
 */
export class ConflictError extends StoreError {
  /** The kind written. */
  readonly kind: string;
  /** The id written. */
  readonly id: string;
  /** The revision the caller expected (`ifRevision`; 0 means "must not exist"). */
  readonly expected: number;
  /** The resource's revision found (0 when absent). */
  readonly actual: number;

  /** Creates the error; the message names the resource and both revisions. */
  constructor(kind: string, id: string, expected: number, actual: number) {
    super(
      `${
        describeResource(kind, id)
      } is at revision ${actual}, not ${expected}` +
        (actual === 0 ? " (it does not exist)" : "") +
        ": read it again and retry",
    );
    this.kind = kind;
    this.id = id;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The change log no longer holds the revision asked for: it was compacted. List again
 * and watch from the list's revision (etcd `ErrCompacted`, Kubernetes 410 Gone).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CompactedError } from "@protostore/store";
 *
 * const error = new CompactedError(10, 42);
 * assert.equal(error.oldestRevision, 42);
 * ```
 */
export class CompactedError extends StoreError {
  /** The revision asked for. */
  readonly requestedRevision: number;
  /** The oldest revision the change log can still answer from. */
  readonly oldestRevision: number;

  /** Creates the error; the message says to list again. */
  constructor(requestedRevision: number, oldestRevision: number) {
    super(
      `changes after revision ${requestedRevision} were compacted; the change log starts ` +
        `after revision ${oldestRevision}: list again and watch from the list's revision`,
    );
    this.requestedRevision = requestedRevision;
    this.oldestRevision = oldestRevision;
  }
}

/**
 * `copyStore` refused to write into a store that already holds data: nothing was
 * written. Copy into an empty store (or a new file or schema), or merge into it
 * (option `merge`, CLI `--merge skip|overwrite`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TargetNotEmptyError } from "@protostore/store";
 *
 * const error = new TargetNotEmptyError("b.sqlite", { resources: 2, revision: 5 });
 * assert.equal(error.rows.resources, 2);
 * ```
 */
export class TargetNotEmptyError extends StoreError {
  /** The target, as named in messages (passwords redacted). */
  readonly target: string;
  /** What the target holds: rows per table, and its revision. */
  readonly rows: Readonly<Record<string, number>>;

  /** Creates the error; the message names the target and what it holds. */
  constructor(target: string, rows: Record<string, number>) {
    const held = Object.entries(rows).filter(([, n]) => n > 0)
      .map(([name, n]) => `${name} ${n}`).join(", ");
    super(
      `${target} is not empty (${held}): copy writes into an empty store only, unless ` +
        "told how to merge (--merge skip|overwrite; option merge); or copy into a new " +
        "file or an empty schema; nothing was written",
      { code: "constraint" },
    );
    this.target = target;
    this.rows = rows;
  }
}

/**
 * What `copyStore` wrote does not match what it read (row count or checksum of a table,
 * or the revision state): the copy was rolled back and the target is as it was.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CopyVerificationError } from "@protostore/store";
 *
 * const error = new CopyVerificationError("b.sqlite", "resources", "3 rows", "2 rows");
 * assert.equal(error.table, "resources");
 * ```
 */
export class CopyVerificationError extends StoreError {
  /** The target, as named in messages (passwords redacted). */
  readonly target: string;
  /** The table (or `revision state`) that differs. */
  readonly table: string;
  /** What the source held. */
  readonly expected: string;
  /** What the target held before the rollback. */
  readonly actual: string;

  /** Creates the error; the message names the table and both values. */
  constructor(target: string, table: string, expected: string, actual: string) {
    super(
      `copy to ${target} failed verification: ${table} of the source is ${expected}, ` +
        `of the target ${actual}; the copy was rolled back`,
      { code: "corrupt" },
    );
    this.target = target;
    this.table = table;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * `"kind"/"id"` for messages: JSON-quoted, so slashes, quotes and control characters in
 * either cannot make the message ambiguous. Without an id (an operation on a whole
 * kind): `kind "kind"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeResource } from "./errors.ts";
 *
 * assert.equal(describeResource("skill", "a/b"), '"skill"/"a/b"');
 * assert.equal(describeResource("skill"), 'kind "skill"');
 * ```
 */
export function describeResource(kind: string, id?: string): string {
  return id === undefined
    ? `kind ${JSON.stringify(kind)}`
    : `${JSON.stringify(kind)}/${JSON.stringify(id)}`;
}

/**
 * The message of an unknown thrown value, for wrapping into a {@linkcode StoreError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { messageOf } from "./errors.ts";
 *
 * assert.equal(messageOf(new Error("boom")), "boom");
 * assert.equal(messageOf("text"), "text");
 * ```
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describeLookup(lookup: AuditLookup): string {
  if ("auditId" in lookup) return `id ${lookup.auditId}`;
  if ("versionHash" in lookup) {
    return `version hash ${JSON.stringify(lookup.versionHash)}`;
  }
  if ("tag" in lookup) return `tag ${JSON.stringify(lookup.tag)}`;
  const at = lookup.at;
  return typeof at === "number"
    ? `revision <= ${at}`
    : `archive time <= ${at.toISOString()}`;
}
