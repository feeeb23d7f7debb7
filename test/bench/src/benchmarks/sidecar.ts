// SVID rotation at the agent → NGINX serving the new certificate, end to end: a real
// nats-server, the built CA, agent and sidecar as child processes, and Debian nginx run by the
// sidecar. Rotations are forced by changing the entry's TTL (the agent re-mints at once). The
// clock starts when this process's own FetchX509SVID stream on the agent socket (same uid,
// same entry) delivers the new serial, i.e. when the agent streamed it, and stops at the first
// TLS handshake in which NGINX presents that serial.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import {
  createTempDir,
  getFreePort,
  SERVICE_NODE_FLAGS,
  spawnManaged,
  startMeshidAgent,
  startMeshidCa,
  startNatsServer,
  type ManagedProcess,
  type MeshidAgentProcess,
  type MeshidCaProcess,
  type NatsServer,
  type TempDir,
} from "@meshid/testkit";
import {
  fetchX509Context,
  pickSvidById,
  watchX509Context,
  type WorkloadX509Svid,
} from "@meshid/workload-api";
import type { Benchmark, BenchmarkContext } from "../benchmark";
import { percentile } from "./ca";

/** The built sidecar entry point (`npm run bench` builds it: @meshid/sidecar is a devDependency). */
export const SIDECAR_MAIN = join(
  __dirname,
  "..",
  "..",
  "..",
  "..",
  "services",
  "sidecar",
  "dist",
  "main.js",
);
/** Rotations measured (quick mode: 3). */
export const ROTATIONS = 20;
/** Generous bound on anything that must happen (never a timing assertion). */
export const EVENT_TIMEOUT_MS = 60_000;

const SERVER_PATH = "/bench/sidecar/server";
const CLIENT_PATH = "/bench/sidecar/client";

/** The serial (uppercase hex) NGINX presents on a fresh TLS handshake with `client`. */
export function servedSerial(port: number, client: WorkloadX509Svid): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      cert: client.certChainPem,
      key: client.keyPem,
      ca: client.bundlePem,
      // SVIDs carry a SPIFFE ID, not a host name: the chain is verified, not the name.
      checkServerIdentity: () => undefined,
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error("TLS probe timed out")));
    socket.once("secureConnect", () => {
      const serial = socket.getPeerCertificate().serialNumber.toUpperCase();
      socket.destroy();
      resolve(serial);
    });
    socket.once("error", reject);
  });
}

function strictTemplate(port: number): string {
  return `{{user}}
worker_processes 1;
pid {{nginx_prefix}}/nginx.pid;
error_log {{nginx_prefix}}/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path {{nginx_prefix}}/tmp/client_body;
  proxy_temp_path {{nginx_prefix}}/tmp/proxy;
  fastcgi_temp_path {{nginx_prefix}}/tmp/fastcgi;
  uwsgi_temp_path {{nginx_prefix}}/tmp/uwsgi;
  scgi_temp_path {{nginx_prefix}}/tmp/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate {{svid_cert}};
    ssl_certificate_key {{svid_key}};
    ssl_client_certificate {{bundle}};
    ssl_verify_client on;
    ssl_verify_depth 4;
    location / { return 200 "ok\\n"; }
  }
}
`;
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      !name.startsWith("MESHID_SIDECAR_") &&
      !name.startsWith("OTEL_") &&
      name !== "SPIFFE_ENDPOINT_SOCKET"
    ) {
      env[name] = value;
    }
  }
  return env;
}

async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + EVENT_TIMEOUT_MS;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch {
      // not yet (connection refused while NGINX starts, …)
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${EVENT_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs the benchmark; see the file comment. */
export async function runSidecarBenchmark(
  ctx: BenchmarkContext,
): Promise<Record<string, number | string | boolean>> {
  const rotations = ctx.quick ? 3 : ROTATIONS;
  let dir: TempDir | undefined;
  let nats: NatsServer | undefined;
  let ca: MeshidCaProcess | undefined;
  let agent: MeshidAgentProcess | undefined;
  let sidecar: ManagedProcess | undefined;
  const watch = new AbortController();
  try {
    dir = await createTempDir("bench-sidecar");
    nats = await startNatsServer();
    ca = await startMeshidCa({ natsUrl: nats.url });
    agent = await startMeshidAgent({ ca, natsUrl: nats.url });
    const admin = ca.admin();
    const uid = process.getuid?.() ?? 0;
    const parentPath = new URL(agent.agentId).pathname;
    const created = await admin.entries.batchCreateEntry({
      entries: [SERVER_PATH, CLIENT_PATH].map((path) => ({
        spiffeId: { trustDomain: ca!.trustDomain, path },
        parentId: { trustDomain: ca!.trustDomain, path: parentPath },
        selectors: [{ type: "unix", value: `uid:${uid}` }],
        x509SvidTtlSeconds: 3_600,
      })),
    });
    const serverEntryId = created.results[0]?.entry?.id;
    if (serverEntryId === undefined || serverEntryId === "") {
      throw new Error(`entry not created: ${JSON.stringify(created.results[0]?.status)}`);
    }
    const serverId = `spiffe://${ca.trustDomain}${SERVER_PATH}`;
    const clientId = `spiffe://${ca.trustDomain}${CLIENT_PATH}`;
    const socketPath = agent.workloadSocketPath;
    const client = await until("client SVID", async () =>
      pickSvidById(clientId)((await fetchX509Context({ socketPath })).svids),
    );

    const port = await getFreePort();
    const template = join(dir.path, "nginx.conf.tmpl");
    await writeFile(template, strictTemplate(port));
    const configFile = join(dir.path, "sidecar.yaml");
    await writeFile(
      configFile,
      JSON.stringify({
        spiffeId: serverId,
        svidDir: join(dir.path, "run", "svid"),
        proxyConfig: { file: template },
        nginx: { prefix: join(dir.path, "nginx"), user: "root" },
        ops: { listen: `127.0.0.1:${await getFreePort()}` },
        logLevel: "warn",
      }),
    );
    ctx.progress("starting the sidecar");
    sidecar = await spawnManaged(
      process.execPath,
      [...SERVICE_NODE_FLAGS, SIDECAR_MAIN, "--config", configFile],
      {
        name: "meshid-sidecar",
        env: { ...cleanEnv(), SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}` },
        outputLimitChars: 100_000,
      },
    );

    // Our own stream: when it sees a serial, the agent has just streamed it to every watcher.
    const seenAt = new Map<string, number>();
    let latest: string | undefined;
    const watcher = (async () => {
      for await (const context of watchX509Context({ socketPath, signal: watch.signal })) {
        const svid = pickSvidById(serverId)(context.svids);
        if (svid === undefined) continue;
        const serial = svid.serialNumber.toUpperCase();
        if (!seenAt.has(serial)) seenAt.set(serial, performance.now());
        latest = serial;
      }
    })();

    const first = await until("first SVID on our stream", () => Promise.resolve(latest));
    await until("NGINX serving the first SVID", async () =>
      (await servedSerial(port, client)) === first ? true : undefined,
    );
    ctx.progress(`measuring ${rotations} rotations`);

    const latenciesMs: number[] = [];
    let probes = 0;
    for (let i = 0; i < rotations; i += 1) {
      const before = latest;
      const entry = await admin.entries.getEntry({ id: serverEntryId });
      await admin.entries.batchUpdateEntry({
        entries: [{ ...entry, x509SvidTtlSeconds: i % 2 === 0 ? 3_000 : 3_600 }],
      });
      const serial = await until("rotated SVID on our stream", () =>
        Promise.resolve(latest !== before ? latest : undefined),
      );
      const start = seenAt.get(serial) ?? performance.now();
      // Back-to-back fresh handshakes until NGINX presents the new serial.
      for (;;) {
        probes += 1;
        let served: string | undefined;
        try {
          served = await servedSerial(port, client);
        } catch {
          served = undefined;
        }
        if (served === serial) break;
        if (performance.now() - start > EVENT_TIMEOUT_MS) {
          throw new Error(`NGINX did not serve ${serial} within ${EVENT_TIMEOUT_MS} ms`);
        }
      }
      latenciesMs.push(performance.now() - start);
      ctx.progress(`rotation ${i + 1}: ${latenciesMs[latenciesMs.length - 1]!.toFixed(1)} ms`);
    }
    watch.abort();
    await watcher.catch(() => undefined);
    admin.close();

    const round = (n: number): number => Math.round(n * 10) / 10;
    return {
      rotations,
      rotationToNginxP50Ms: round(percentile(latenciesMs, 50)),
      rotationToNginxP99Ms: round(percentile(latenciesMs, 99)),
      rotationToNginxMaxMs: round(Math.max(...latenciesMs)),
      rotationToNginxMinMs: round(Math.min(...latenciesMs)),
      handshakeProbes: probes,
      loadAverage1m: round(loadavg()[0] ?? 0),
    };
  } finally {
    watch.abort();
    await sidecar?.stop();
    await agent?.stop();
    await ca?.stop();
    await nats?.stop();
    await dir?.cleanup();
  }
}

/** The sidecar benchmark (`npm run bench -- sidecar`). */
export const benchmark: Benchmark = {
  name: "sidecar",
  async run(ctx) {
    if (!existsSync(SIDECAR_MAIN)) {
      throw new Error(
        `${SIDECAR_MAIN} is missing: build it (npx turbo run build --filter=@meshid/sidecar...)`,
      );
    }
    return runSidecarBenchmark(ctx);
  },
};
