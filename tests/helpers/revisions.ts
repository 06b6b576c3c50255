/**
 * Checks of the revision invariants on a database file, read with raw SQL (not through
 * the Store under test): shared by the upgrade, crash and concurrency tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";

/** What {@linkcode checkRevisions} found, for further asserts. */
export interface RevisionState {
  /** The current revision. */
  current: number;
  /** The log holds the changes after this revision. */
  compactedThrough: number;
  /** Resources by `kind\0id`: their revision. */
  resources: Map<string, number>;
  /** The change log, oldest first. */
  changes: { revision: number; kind: string; id: string; deleted: number }[];
}

/**
 * Asserts the invariants every file with revisions keeps: resource revisions within
 * `1..current`, created no later than changed; every change in the log of a resource
 * is backed by its write (the newest put of a resource is its revision, the newest
 * delete means it is gone) and every write after the compaction point has its change;
 * snapshots' revisions never decrease along a history and never exceed the current.
 *
 * @example
 * ```ts
 * import { openStore } from "../../mod.ts";
 * import { checkRevisions } from "./revisions.ts";
 *
 * const path = `${await Deno.makeTempDir()}/db.sqlite`;
 * openStore(path).close();
 * checkRevisions(path);
 * ```
 */
export function checkRevisions(path: string): RevisionState {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec("BEGIN");
    const { current, compacted } = db.prepare(
      `SELECT max(coalesce((SELECT max(revision) FROM resource_changes), 0),
                  coalesce((SELECT compacted_through FROM change_log), 0)) AS current,
              coalesce((SELECT compacted_through FROM change_log), 0) AS compacted`,
    ).get() as { current: number; compacted: number };
    const resources = new Map<string, number>();
    for (
      const r of db.prepare(
        "SELECT kind, id, revision, create_revision FROM resources",
      ).all() as {
        kind: string;
        id: string;
        revision: number;
        create_revision: number;
      }[]
    ) {
      const what = `${r.kind}/${r.id} at ${r.revision}`;
      assert.ok(r.revision >= 1 && r.revision <= current, what);
      assert.ok(
        r.create_revision >= 1 && r.create_revision <= r.revision,
        what,
      );
      resources.set(`${r.kind}\0${r.id}`, r.revision);
    }
    const changes = db.prepare(
      "SELECT revision, kind, id, deleted FROM resource_changes ORDER BY revision, kind, id",
    ).all() as RevisionState["changes"];
    const newest = new Map<string, { revision: number; deleted: number }>();
    for (const c of changes) {
      assert.ok(c.revision > compacted && c.revision <= current);
      newest.set(`${c.kind}\0${c.id}`, c);
    }
    for (const [key, c] of newest) {
      const what = `newest change of ${key.replace("\0", "/")}: ${
        JSON.stringify(c)
      }`;
      if (c.deleted) assert.equal(resources.get(key), undefined, what);
      else assert.equal(resources.get(key), c.revision, what);
    }
    for (const [key, revision] of resources) {
      if (revision <= compacted) continue;
      const c = newest.get(key);
      assert.ok(
        c !== undefined && c.revision === revision && !c.deleted,
        `${
          key.replace("\0", "/")
        } was written at ${revision} without its change`,
      );
    }
    const history = db.prepare(
      `SELECT kind, resource_id, revision FROM resource_audit
       ORDER BY kind, resource_id, archived_at, id`,
    ).all() as { kind: string; resource_id: string; revision: number }[];
    for (let i = 0; i < history.length; i++) {
      const h = history[i];
      assert.ok(h.revision >= 0 && h.revision <= current);
      const prev = history[i - 1];
      if (prev && prev.kind === h.kind && prev.resource_id === h.resource_id) {
        assert.ok(
          prev.revision <= h.revision,
          `history of ${h.kind}/${h.resource_id} goes back from ${prev.revision} to ${h.revision}`,
        );
      }
    }
    db.exec("COMMIT");
    return { current, compactedThrough: compacted, resources, changes };
  } finally {
    db.close();
  }
}
