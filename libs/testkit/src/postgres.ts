import { accessSync, constants as fsConstants, readdirSync } from "node:fs";
import { chown, mkdir } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";

import { MeshidError } from "@meshid/errors";
import { Client } from "pg";

import { getFreePort } from "./ports";
import {
  type ManagedProcess,
  lookupSystemUser,
  requireBinary,
  runCommand,
  spawnManaged,
  stopProcess,
} from "./process";
import { createTempDir } from "./temp-dir";

/** Name of the database {@link startPostgres} creates. */
export const POSTGRES_TEST_DATABASE = "meshid_test";
/** Superuser name of the throwaway cluster (trust auth, no password). */
export const POSTGRES_TEST_USER = "postgres";
/** System user that runs initdb/postgres when we are root (they refuse to run as root). */
const POSTGRES_SYSTEM_USER = "postgres";
/** How long the server may take to accept connections (ms). */
const START_TIMEOUT_MS = 30_000;
/** Attempts when another process grabs the free port first. */
const START_ATTEMPTS = 3;

/** Options of {@link startPostgres}. */
export interface StartPostgresParams {
  /** Extra `postgresql.conf` settings passed as `-c name=value`, e.g. `{ max_connections: 20 }`. */
  settings?: Readonly<Record<string, string | number>>;
}

/** A throwaway PostgreSQL cluster on 127.0.0.1, started by {@link startPostgres}. */
export interface PostgresServer {
  /** `postgresql://postgres@127.0.0.1:<port>/meshid_test`. */
  readonly connectionString: string;
  /** Always 127.0.0.1. */
  readonly host: string;
  /** TCP port the server listens on. */
  readonly port: number;
  /** The test database, `meshid_test`. */
  readonly database: string;
  /** Superuser to connect as (trust auth on loopback, no password). */
  readonly user: string;
  /** Data directory of the cluster (inside a temp dir removed by stop()). */
  readonly dataDir: string;
  /** Process id of the postmaster (for leak checks). */
  readonly pid: number;
  /** Fast shutdown (`pg_ctl stop -m fast`), then removes the cluster's temp dir. Idempotent. */
  stop(): Promise<void>;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the directory holding `initdb`, `postgres` and `pg_ctl`: the highest version under
 * /usr/lib/postgresql/<ver>/bin (Debian keeps them off $PATH), else `pg_config --bindir`.
 * Symlinks elsewhere on $PATH (e.g. /usr/local/bin/pg_ctl) are not relied on.
 *
 * @throws MeshidError `testkit.binary.missing` naming the Debian package `postgresql`.
 */
export async function findPostgresBinDir(): Promise<string> {
  const hasAll = (dir: string): boolean =>
    ["initdb", "postgres", "pg_ctl"].every((bin) => isExecutable(join(dir, bin)));
  let versions: string[] = [];
  try {
    versions = readdirSync("/usr/lib/postgresql").filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // no Debian layout
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (hasAll(dir)) return dir;
  }
  try {
    const pgConfig = requireBinary("pg_config", "postgresql");
    const { code, stdout } = await runCommand(pgConfig, ["--bindir"]);
    const dir = stdout.trim();
    if (code === 0 && dir !== "" && hasAll(dir)) return dir;
  } catch {
    // no pg_config either
  }
  throw new MeshidError(
    "failed_precondition",
    "testkit.binary.missing",
    "initdb not found; install the Debian package postgresql (run .ci/run as root to install it automatically)",
    { details: { binary: "initdb", debianPackage: "postgresql" } },
  );
}

/**
 * Starts a throwaway PostgreSQL cluster: `initdb` (trust auth, UTF8, C locale) in a fresh temp
 * dir, `postgres` on a free 127.0.0.1 port with its Unix socket inside the temp dir and
 * fsync/synchronous_commit/full_page_writes off for speed, then creates the database
 * `meshid_test`. When we are root, initdb and postgres run as the `postgres` system user (they
 * refuse root) and the temp dir is chowned to it. The postmaster is killed if this process
 * dies. Call `stop()` in afterAll.
 *
 * @throws MeshidError `testkit.binary.missing` when PostgreSQL is not installed,
 *   `testkit.postgres.start_failed` (with the server's output) when it does not come up.
 */
export async function startPostgres(params: StartPostgresParams = {}): Promise<PostgresServer> {
  const binDir = await findPostgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const runAs = asRoot ? POSTGRES_SYSTEM_USER : undefined;
  const tmp = await createTempDir("postgres");
  try {
    const dataDir = join(tmp.path, "data");
    const socketDir = join(tmp.path, "socket");
    await mkdir(socketDir);
    if (asRoot) {
      const { uid, gid } = await lookupSystemUser(POSTGRES_SYSTEM_USER).catch((cause: unknown) => {
        throw new MeshidError(
          "failed_precondition",
          "testkit.postgres.no_system_user",
          `running as root but the system user "${POSTGRES_SYSTEM_USER}" does not exist; install the Debian package postgresql (it creates the user)`,
          { cause },
        );
      });
      await chown(tmp.path, uid, gid);
      await chown(socketDir, uid, gid);
    }
    const init = await runCommand(
      join(binDir, "initdb"),
      [
        "-D",
        dataDir,
        `--username=${POSTGRES_TEST_USER}`,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
      ],
      { runAs, cwd: tmp.path },
    );
    if (init.code !== 0) {
      throw new MeshidError(
        "failed_precondition",
        "testkit.postgres.start_failed",
        `initdb failed (exit ${String(init.code)}) as ${runAs ?? userInfo().username}:\n${init.stdout}${init.stderr}`,
      );
    }

    const settings: Record<string, string | number> = {
      listen_addresses: "127.0.0.1",
      unix_socket_directories: socketDir,
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      max_connections: 50,
      ...params.settings,
    };
    let postmaster: ManagedProcess | undefined;
    let port = 0;
    let lastOutput = "";
    for (let attempt = 0; attempt < START_ATTEMPTS && postmaster === undefined; attempt++) {
      port = await getFreePort();
      const candidate = await spawnManaged(
        join(binDir, "postgres"),
        [
          "-D",
          dataDir,
          "-p",
          String(port),
          ...Object.entries(settings).flatMap(([key, value]) => ["-c", `${key}=${value}`]),
        ],
        // SIGQUIT = immediate shutdown: the postmaster takes its backends down with it.
        { name: "postgres", runAs, cwd: tmp.path, orphanSignal: "SIGQUIT" },
      );
      try {
        await candidate.waitForOutput(/database system is ready to accept connections/, {
          timeoutMs: START_TIMEOUT_MS,
        });
        postmaster = candidate;
      } catch (err) {
        lastOutput = candidate.output();
        await stopProcess(candidate, { signal: "SIGQUIT", timeoutMs: 5_000 });
        // Retry only when someone else took the port between getFreePort() and bind().
        if (!/could not bind|Address already in use/.test(lastOutput)) {
          throw new MeshidError(
            "unavailable",
            "testkit.postgres.start_failed",
            `postgres did not start: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
        }
      }
    }
    if (postmaster === undefined) {
      throw new MeshidError(
        "unavailable",
        "testkit.postgres.start_failed",
        `postgres could not bind a free port after ${START_ATTEMPTS} attempts:\n${lastOutput}`,
      );
    }
    const server = postmaster;

    const host = "127.0.0.1";
    try {
      const admin = new Client({ host, port, user: POSTGRES_TEST_USER, database: "postgres" });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${POSTGRES_TEST_DATABASE}`);
      } finally {
        await admin.end();
      }
    } catch (err) {
      await stopProcess(server, { signal: "SIGQUIT", timeoutMs: 5_000 });
      throw new MeshidError(
        "unavailable",
        "testkit.postgres.start_failed",
        `could not create database ${POSTGRES_TEST_DATABASE}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }

    let stopping: Promise<void> | undefined;
    const stop = async (): Promise<void> => {
      if (server.exitStatus() === undefined) {
        const result = await runCommand(
          join(binDir, "pg_ctl"),
          ["stop", "-D", dataDir, "-m", "fast", "-w", "-t", "30"],
          { runAs, cwd: tmp.path },
        );
        if (result.code !== 0 && server.exitStatus() === undefined) {
          // pg_ctl could not do it: fall back to signals (SIGINT = fast shutdown, then SIGKILL).
          await stopProcess(server, { signal: "SIGINT", timeoutMs: 10_000 });
        }
      }
      await server.exited;
      await tmp.cleanup();
    };

    return {
      connectionString: `postgresql://${POSTGRES_TEST_USER}@${host}:${port}/${POSTGRES_TEST_DATABASE}`,
      host,
      port,
      database: POSTGRES_TEST_DATABASE,
      user: POSTGRES_TEST_USER,
      dataDir,
      pid: server.pid,
      stop: () => (stopping ??= stop()),
    };
  } catch (err) {
    await tmp.cleanup();
    throw err;
  }
}
