/**
 * The Store's public shapes: the options it takes and the entries, pages and results it
 * returns. The same shapes are returned by every backend behind `AsyncStore`.
 *
 * @module
 */

/** Options of {@linkcode openStore}. */
export interface OpenOptions {
  /** Apply pending migrations on open (default true). When false, pending migrations
   * make the open fail with a `MigrationError` that says to run `migrate`. */
  migrate?: boolean;
  /** Never create, migrate or change the file; every write throws `StoreError`. */
  readOnly?: boolean;
  /** How long to wait for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number;
  /**
   * How many revisions of changes the change log keeps (default 100,000): every
   * 1,024th revision's commit drops older ones, and `changesSince`/`watch` from before
   * them throw `CompactedError`. `Infinity` keeps everything (compact with
   * {@linkcode Store.compactChanges}).
   */
  changeRetention?: number;
}

/** What {@linkcode Store.saveResource} did. */
export interface SavedResource {
  /** The revision of the write (shared by everything its transaction changed). */
  revision: number;
  /** When it was saved, to the millisecond. */
  updatedAt: Date;
}

/** Options of {@linkcode Store.saveResource} and {@linkcode Store.deleteResource}. */
export interface WriteOptions {
  /**
   * Write only if the resource is at this revision; `0`: only if it does not exist.
   * Otherwise the write throws `ConflictError` and changes nothing.
   */
  ifRevision?: number;
}

/** A resource with its revisions, as {@linkcode Store.getResourceEntry} returns it. */
export interface ResourceEntry<M> {
  /** The kind. */
  kind: string;
  /** The id. */
  id: string;
  /** The decoded message. */
  message: M;
  /** The revision of its last change. */
  revision: number;
  /** The revision that created it (for rows older than revisions: their first revision). */
  createRevision: number;
  /** When it was last saved. */
  updatedAt: Date;
}

/** One page of {@linkcode Store.listResourceEntries} or a paged history. */
export interface Page<E> {
  /** The entries, in the list's order. */
  entries: E[];
  /** Pass as `pageToken` for the next page; absent on the last page. */
  nextPageToken?: string;
  /**
   * The revision the page was read at. To follow a list with `watch`, watch from the
   * revision of the first page: nothing after it is missed.
   */
  revision: number;
}

/** Where a saved audit snapshot landed. */
export interface AuditEntryInfo {
  /** The snapshot's id (`resource_audit.id`), increasing with every save. */
  id: number;
  /** When it was archived, to the millisecond. */
  archivedAt: Date;
  /** The store's revision when it was archived (a snapshot takes no revision). */
  revision: number;
}

/** One audit snapshot, as {@linkcode Store.listAuditHistory} returns it. */
export interface AuditEntry<M> extends AuditEntryInfo {
  /** The version hash given when it was saved; `undefined` when absent or empty. */
  versionHash?: string;
  /** The tag given when it was saved; `undefined` when absent or empty. */
  tag?: string;
  /** The decoded message. */
  message: M;
}

/**
 * Options of the Store's typed reads. By default a row recorded with another message
 * type than the schema's throws {@linkcode TypeMismatchError}.
 */
export interface ReadOptions {
  /**
   * Also decode rows recorded with these type names, e.g. the old name of a message
   * that was renamed (`["example.v1.Skill"]` when reading with `example.v2.Skill`).
   * Only for types whose wire format the schema shares: the bytes are decoded as is.
   */
  acceptTypes?: readonly string[];
}

/** Optional labels of an audit snapshot; empty strings are stored as absent. */
export interface AuditMeta {
  /** A content hash of this version, to find it again with `getAuditByHash`. */
  versionHash?: string;
  /** A release label such as `v2`, to find the newest with `getAuditByTag`. */
  tag?: string;
}
