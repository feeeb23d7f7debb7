#!/usr/bin/env node
// The local mesh's demo sidecar, used while services/sidecar is not built: run as the
// workload's uid, it keeps a SPIFFE Workload API stream open, picks the SVID with its SPIFFE ID,
// writes key (0600), chain and bundle into a fresh directory and swaps the `current` link to it
// (NGINX never reads a key of one SVID with the certificate of another), then starts NGINX or
// reloads it (SIGHUP). One JSON line per written SVID on stdout.
// Usage: demo-sidecar <config.json>
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { spiffeWorkload } from "@meshid/proto";
import { ChannelCredentials, Metadata, createChannel, createClient } from "nice-grpc";
import { certificateFacts, derCertificatesToPem, pkcs8DerToPem } from "./der";

/** The demo sidecar's settings (a JSON file written by the local mesh). */
export interface DemoSidecarConfig {
  /** Workload API socket path. */
  readonly socketPath: string;
  /** The SPIFFE ID to serve with (the workload's uid may be given several). */
  readonly spiffeId: string;
  /** Directory for `svid-<n>/` and the `current` link. */
  readonly svidDir: string;
  /** nginx binary, prefix and config file. */
  readonly nginx: { readonly binary: string; readonly prefix: string; readonly conf: string };
}

/** Subdirectories written so far are named `svid-<n>`; the two newest are kept. */
const KEEP_SVID_DIRS = 2;
const RETRY_MAX_MS = 5_000;

function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

async function writeSvid(
  config: DemoSidecarConfig,
  generation: number,
  svid: spiffeWorkload.X509SVID,
): Promise<{ serial: string; notAfter: Date; notBefore: Date }> {
  const dir = join(config.svidDir, `svid-${generation}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const chain = derCertificatesToPem(svid.x509Svid);
  await writeFile(join(dir, "svid.key"), pkcs8DerToPem(svid.x509SvidKey), { mode: 0o600 });
  await writeFile(join(dir, "svid.pem"), chain, { mode: 0o644 });
  await writeFile(join(dir, "bundle.pem"), derCertificatesToPem(svid.bundle), { mode: 0o644 });
  const link = join(config.svidDir, "current");
  await rm(`${link}.tmp`, { force: true });
  await symlink(`svid-${generation}`, `${link}.tmp`);
  await rename(`${link}.tmp`, link);
  const facts = certificateFacts(chain);
  return { serial: facts.serial, notBefore: facts.notBefore, notAfter: facts.notAfter };
}

async function pruneSvidDirs(config: DemoSidecarConfig, generation: number): Promise<void> {
  for (const name of await readdir(config.svidDir)) {
    const m = /^svid-(\d+)$/.exec(name);
    if (m !== null && Number(m[1]) <= generation - KEEP_SVID_DIRS) {
      await rm(join(config.svidDir, name), { recursive: true, force: true });
    }
  }
}

async function run(config: DemoSidecarConfig, signal: AbortSignal): Promise<void> {
  const channel = createChannel(`unix://${config.socketPath}`, ChannelCredentials.createInsecure());
  const client = createClient(spiffeWorkload.SpiffeWorkloadAPIDefinition, channel);
  let nginx: ChildProcess | undefined;
  let generation = 0;
  let attempts = 0;
  signal.addEventListener("abort", () => {
    nginx?.kill("SIGTERM");
    channel.close();
  });
  while (!signal.aborted) {
    try {
      const stream = client.fetchX509SVID(
        {},
        { metadata: Metadata({ "workload.spiffe.io": "true" }), signal },
      );
      for await (const response of stream) {
        attempts = 0;
        const svid = response.svids.find((s) => s.spiffeId === config.spiffeId);
        if (svid === undefined) {
          log({ msg: "svid not offered", spiffeId: config.spiffeId });
          continue;
        }
        generation += 1;
        const facts = await writeSvid(config, generation, svid);
        if (nginx === undefined || nginx.exitCode !== null) {
          nginx = spawn(
            config.nginx.binary,
            ["-p", config.nginx.prefix, "-c", config.nginx.conf, "-g", "daemon off;"],
            { stdio: ["ignore", "inherit", "inherit"] },
          );
          const started = nginx;
          started.once("exit", (code, sig) => {
            if (!signal.aborted) log({ msg: "nginx exited", code, signal: sig });
          });
        } else {
          nginx.kill("SIGHUP");
        }
        log({
          msg: "svid written",
          spiffeId: svid.spiffeId,
          serial: facts.serial,
          notBefore: facts.notBefore.toISOString(),
          notAfter: facts.notAfter.toISOString(),
          generation,
        });
        await pruneSvidDirs(config, generation);
      }
    } catch (err) {
      if (signal.aborted) break;
      attempts += 1;
      const delayMs = Math.min(RETRY_MAX_MS, 100 * 2 ** attempts);
      log({ msg: "workload api stream failed", err: (err as Error).message, retryInMs: delayMs });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

if (require.main === module) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write("usage: demo-sidecar <config.json>\n");
    process.exit(2);
  }
  const config = JSON.parse(readFileSync(file, "utf8")) as DemoSidecarConfig;
  const controller = new AbortController();
  const stop = (): void => {
    controller.abort();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  run(config, controller.signal).then(
    () => process.exit(0),
    (err: unknown) => {
      log({ msg: "demo sidecar failed", err: (err as Error).message });
      process.exit(1);
    },
  );
}
