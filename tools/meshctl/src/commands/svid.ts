import { chmod, mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { ActionBinder, CommandEnv } from "../command-env";
import { usageError } from "../exit-codes";
import { formatRelative, formatTime, renderTable } from "../output";
import {
  SPIFFE_ENDPOINT_SOCKET_ENV,
  fetchX509SvidsOnce,
  type FetchedX509Svid,
} from "../workload-fetch";

/** File names written by `svid fetch --write`. */
export const SVID_FILES = Object.freeze({
  certChain: "svid.pem",
  key: "svid.key",
  bundle: "bundle.pem",
});

interface FetchOptions {
  socket?: string;
  write?: string;
}

/** The Workload API endpoint: --socket, --workload-socket, context, SPIFFE_ENDPOINT_SOCKET. */
function workloadEndpoint(env: CommandEnv, flag: string | undefined): string {
  const fromFlags = flag ?? env.flags.workloadSocket;
  if (fromFlags !== undefined) {
    return fromFlags.startsWith("unix:") ? fromFlags : resolve(env.io.cwd, fromFlags);
  }
  const fromContext = env.context().workloadSocket ?? env.io.env[SPIFFE_ENDPOINT_SOCKET_ENV];
  if (fromContext === undefined) {
    throw usageError(
      `no Workload API socket: pass --socket <path>, set ${SPIFFE_ENDPOINT_SOCKET_ENV}, or run ` +
        "the local mesh (npm start) which writes .meshid/meshctl.yaml",
    );
  }
  return fromContext;
}

/** Writes `content` to `path` through a temp file and a rename, with `mode`. */
async function writeAtomic(path: string, content: string, mode: number): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, content, { mode });
  await chmod(temp, mode);
  await rename(temp, path);
}

/** Writes svid.pem (0644), svid.key (0600) and bundle.pem (0644) into `dir` (created 0700). */
async function writeSvidFiles(env: CommandEnv, dir: string, svid: FetchedX509Svid): Promise<void> {
  const existing = await stat(dir).catch(() => undefined);
  if (existing === undefined) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } else if (!existing.isDirectory()) {
    throw usageError(`--write ${dir}: not a directory`);
  } else if ((existing.mode & 0o077) !== 0) {
    env.out.warn(
      `${dir} is accessible by other users (mode ${(existing.mode & 0o777).toString(8)}); 0700 is safer`,
    );
  }
  await writeAtomic(join(dir, SVID_FILES.key), svid.keyPem, 0o600);
  await writeAtomic(join(dir, SVID_FILES.certChain), svid.certChainPem, 0o644);
  await writeAtomic(join(dir, SVID_FILES.bundle), svid.bundlePem, 0o644);
}

/** Registers `svid fetch`. */
export function registerSvidCommands(program: Command, bind: ActionBinder): void {
  const svid = program.command("svid").description("X509-SVIDs from the SPIFFE Workload API");
  bind<FetchOptions>(
    svid
      .command("fetch")
      .description("fetch this process's X509-SVIDs once from the Workload API (any SPIFFE agent)")
      .option(
        "--socket <path>",
        `Workload API socket (default: context file, else $${SPIFFE_ENDPOINT_SOCKET_ENV})`,
      )
      .option(
        "--write <dir>",
        "write svid.pem, svid.key (0600) and bundle.pem of the first SVID to dir",
      )
      .addHelpText(
        "after",
        "\nExample:\n  meshctl svid fetch --socket /run/meshid/workload.sock --write ./certs",
      ),
    async (env, _args, o) => {
      const endpoint = workloadEndpoint(env, o.socket);
      const svids = await fetchX509SvidsOnce({ endpoint, timeoutMs: env.timeoutMs });
      const first = svids[0];
      if (o.write !== undefined && first !== undefined) {
        await writeSvidFiles(env, resolve(env.io.cwd, o.write), first);
      }
      if (env.out.json) {
        env.out.printJson({
          svids: svids.map((s) => ({
            spiffeId: s.spiffeId,
            serial: s.serial,
            expiresAt: s.notAfter.toISOString(),
            hint: s.hint,
            certChainPem: s.certChainPem,
          })),
          bundlePem: first?.bundlePem ?? "",
          ...(o.write === undefined ? {} : { writtenTo: resolve(env.io.cwd, o.write) }),
        });
        return;
      }
      const now = new Date();
      env.out.print(
        renderTable(
          [
            { header: "spiffe id", value: (s: FetchedX509Svid) => s.spiffeId },
            { header: "serial", value: (s: FetchedX509Svid) => s.serial },
            {
              header: "expires",
              value: (s: FetchedX509Svid) =>
                `${formatTime(s.notAfter)} (${formatRelative(s.notAfter, now)})`,
            },
            { header: "hint", value: (s: FetchedX509Svid) => s.hint || "-" },
          ],
          svids,
        ),
      );
      if (o.write !== undefined)
        env.out.note(
          `wrote ${SVID_FILES.certChain}, ${SVID_FILES.key}, ${SVID_FILES.bundle} to ${resolve(env.io.cwd, o.write)}`,
        );
    },
  );
}
