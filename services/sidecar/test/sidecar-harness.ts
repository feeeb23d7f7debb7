// Shared set-up of the sidecar integration suites: a real nats-server, the built CA and agent
// as child processes, entries for our own uid, a real nginx driven by the sidecar, and TLS
// probes that read the certificate NGINX presents.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile, realpath, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "node:tls";
import { createMemoryLogger, type MemoryLogger } from "@meshid/telemetry";
import {
  createTempDir,
  getFreePort,
  startMeshidAgent,
  startMeshidCa,
  startNatsServer,
  type MeshidAgentProcess,
  type MeshidCaProcess,
  type NatsServer,
  type TempDir,
} from "@meshid/testkit";
import { fetchX509Context, pickSvidById, type WorkloadX509Svid } from "@meshid/workload-api";
import { buildSidecarConfig, type SidecarConfig } from "../src/config";
import type { SidecarEvent } from "../src/domain/sidecar-controller";
import { startSidecar, type RunningSidecar } from "../src/sidecar";

/** Generous bound for anything asynchronous (never a timing assertion). */
export const WAIT_MS = 60_000;
/** Fast retries so reconnects do not dominate a test's run time. */
export const TEST_BACKOFF = { initialMs: 100, maxMs: 1_000 };

/** Polls `check` every 50 ms until it returns a value other than undefined. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not within ${timeoutMs} ms (${lastError instanceof Error ? lastError.message : ""})`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A static nginx.conf template: one strict mTLS HTTP server on `port` answering 200. */
export function strictTemplate(port: number, extra = ""): string {
  return `{{user}}
worker_processes 1;
pid {{nginx_prefix}}/nginx.pid;
error_log {{nginx_prefix}}/logs/error.log notice;
events { worker_connections 64; }
http {
  access_log {{nginx_prefix}}/logs/access.log;
  client_body_temp_path {{nginx_prefix}}/tmp/client_body;
  proxy_temp_path {{nginx_prefix}}/tmp/proxy;
  fastcgi_temp_path {{nginx_prefix}}/tmp/fastcgi;
  uwsgi_temp_path {{nginx_prefix}}/tmp/uwsgi;
  scgi_temp_path {{nginx_prefix}}/tmp/scgi;
  ${extra}
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

/** What a TLS handshake with NGINX showed. */
export interface PeerCertificateSeen {
  readonly serialNumber: string;
  readonly uri: string;
}

/**
 * Connects to 127.0.0.1:`port` with `client` as client certificate, verifies the server chain
 * against the client's bundle, and returns the server certificate's serial (uppercase hex) and
 * URI SAN.
 */
export function tlsPeer(port: number, client: WorkloadX509Svid): Promise<PeerCertificateSeen> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      cert: client.certChainPem,
      key: client.keyPem,
      ca: client.bundlePem,
      // SVIDs carry a SPIFFE ID, not a host name: the chain is what is verified here.
      checkServerIdentity: () => undefined,
    });
    socket.setTimeout(15_000, () => socket.destroy(new Error("TLS probe timed out")));
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve({
        serialNumber: cert.serialNumber.toUpperCase(),
        uri: /URI:([^,\s]+)/.exec(cert.subjectaltname ?? "")?.[1] ?? "",
      });
    });
    socket.once("error", reject);
  });
}

/** A CA, NATS and an agent, with entries for this process's uid. */
export interface SidecarStack {
  readonly nats: NatsServer;
  readonly ca: MeshidCaProcess;
  readonly agent: MeshidAgentProcess;
  readonly dir: TempDir;
  /** Creates an entry for `uid` (default ours); resolves with its id. */
  createEntry(path: string, ttlSeconds?: number, uid?: number): Promise<string>;
  /** Changes an entry's TTL: the agent re-mints its SVID. */
  forceRotation(entryId: string): Promise<void>;
  /** Fetches our SVID for `spiffeId` from the agent (a client certificate for probes). */
  fetchSvid(spiffeId: string): Promise<WorkloadX509Svid>;
  stop(): Promise<void>;
}

/** Starts nats-server, the built CA and the built agent. */
export async function startSidecarStack(): Promise<SidecarStack> {
  const dir = await createTempDir("sidecar-it");
  const nats = await startNatsServer();
  let ca: MeshidCaProcess | undefined;
  let agent: MeshidAgentProcess | undefined;
  try {
    ca = await startMeshidCa({ natsUrl: nats.url });
    agent = await startMeshidAgent({ ca, natsUrl: nats.url });
  } catch (err) {
    await agent?.stop();
    await ca?.stop();
    await nats.stop();
    await dir.cleanup();
    throw err;
  }
  const caProcess = ca;
  const agentProcess = agent;
  const uid = process.getuid?.() ?? 0;
  const ttls = new Map<string, number>();
  return {
    nats,
    ca: caProcess,
    agent: agentProcess,
    dir,
    async createEntry(path, ttlSeconds = 3_600, entryUid = uid) {
      const admin = caProcess.admin();
      const res = await admin.entries.batchCreateEntry({
        entries: [
          {
            spiffeId: { trustDomain: caProcess.trustDomain, path },
            parentId: {
              trustDomain: caProcess.trustDomain,
              path: new URL(agentProcess.agentId).pathname,
            },
            selectors: [{ type: "unix", value: `uid:${entryUid}` }],
            x509SvidTtlSeconds: ttlSeconds,
          },
        ],
      });
      const id = res.results[0]?.entry?.id;
      if (id === undefined || id === "") {
        throw new Error(`entry not created: ${JSON.stringify(res.results[0]?.status)}`);
      }
      ttls.set(id, ttlSeconds);
      return id;
    },
    async forceRotation(entryId) {
      const admin = caProcess.admin();
      const entry = await admin.entries.getEntry({ id: entryId });
      // Alternate between two TTLs so every call changes the entry.
      const ttl = (ttls.get(entryId) ?? 3_600) === 3_600 ? 3_000 : 3_600;
      ttls.set(entryId, ttl);
      const res = await admin.entries.batchUpdateEntry({
        entries: [{ ...entry, x509SvidTtlSeconds: ttl }],
      });
      const status = res.results[0]?.status;
      if (status !== undefined && status.code !== 0) {
        throw new Error(`entry not updated: ${JSON.stringify(status)}`);
      }
    },
    async fetchSvid(spiffeId) {
      return eventually(`SVID ${spiffeId}`, async () => {
        const context = await fetchX509Context({ socketPath: agentProcess.workloadSocketPath });
        return pickSvidById(spiffeId)(context.svids);
      });
    },
    async stop() {
      await agentProcess.stop();
      await caProcess.stop();
      await nats.stop();
      await dir.cleanup();
    },
  };
}

/** A sidecar started in-process by {@link startTestSidecar}. */
export interface TestSidecar {
  readonly sidecar: RunningSidecar;
  readonly config: SidecarConfig;
  readonly memory: MemoryLogger;
  readonly events: SidecarEvent[];
  /** The template file (file mode). */
  readonly templateFile: string;
  /** The port reserved for the template's server. */
  readonly port: number;
  /** Status and log, for failure messages. */
  diagnose(): string;
  /** Waits until `check` passes; the failure message carries {@link TestSidecar.diagnose}. */
  until<T>(what: string, check: () => T | undefined | Promise<T | undefined>): Promise<T>;
  /** Waits for an event matching `match` (seen already or later). */
  waitForEvent<E extends SidecarEvent>(
    what: string,
    match: (e: SidecarEvent) => e is E,
    after?: number,
  ): Promise<E>;
  stop(): Promise<void>;
}

/** Parameters of {@link startTestSidecar}. */
export interface StartTestSidecarParams {
  readonly stack: SidecarStack;
  /** Sub-directory of the stack's temp dir for this sidecar. */
  readonly name: string;
  /** Template text for file mode (default: {@link strictTemplate} on `port`). */
  readonly template?: string;
  readonly port?: number;
  /** Top-level settings merged into the config input (`nginx` goes in {@link nginx}). */
  readonly config?: Record<string, unknown>;
  /** Settings merged into the `nginx` section (the prefix always stays in the temp dir). */
  readonly nginx?: Record<string, unknown>;
  readonly env?: Record<string, string>;
}

/** Starts the sidecar in-process (file mode unless `config.proxyConfig` says otherwise). */
export async function startTestSidecar(params: StartTestSidecarParams): Promise<TestSidecar> {
  const base = join(params.stack.dir.path, params.name);
  const templateFile = `${base}-nginx.conf.tmpl`;
  const port = params.port ?? (await getFreePort());
  await writeFile(templateFile, params.template ?? strictTemplate(port));
  const config = buildSidecarConfig(
    {
      workloadSocket: params.stack.agent.workloadSocketPath,
      svidDir: join(base, "run", "svid"),
      proxyConfig: { file: templateFile, filePollInterval: "100ms" },
      ops: { listen: "127.0.0.1:0" },
      ...params.config,
      nginx: { prefix: join(base, "nginx"), user: "root", reloadTimeout: "20s", ...params.nginx },
    },
    params.env ?? {},
  );
  const memory = createMemoryLogger();
  const events: SidecarEvent[] = [];
  const sidecar = await startSidecar({
    config,
    logger: memory.logger,
    backoff: TEST_BACKOFF,
    onEvent: (e) => events.push(e),
  });
  const diagnose = (): string =>
    `status: ${JSON.stringify(sidecar.status())}\nlog:\n${memory.text()}`;
  return {
    sidecar,
    config,
    memory,
    events,
    templateFile,
    port,
    diagnose: () => diagnose(),
    until: (what, check) =>
      eventually(what, check).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${diagnose()}`);
      }),
    waitForEvent: (what, match, after = 0) =>
      eventually(what, () => events.slice(after).find(match)),
    stop: () => sidecar.stop(),
  };
}

function certificatesOf(pem: string): X509Certificate[] {
  return pem
    .split(/(?=-----BEGIN CERTIFICATE-----)/)
    .filter((b) => b.includes("BEGIN CERTIFICATE"))
    .map((b) => new X509Certificate(b));
}

/** What one SVID directory holds. */
export interface SvidFilesSeen {
  /** The version directory the link pointed to. */
  readonly dir: string;
  readonly serialNumber: string;
  readonly uri: string;
  /** The key is the leaf's. */
  readonly keyMatches: boolean;
  /** Leaf → intermediates → a bundle root, each signature checked. */
  readonly chainVerifies: boolean;
  /** File modes (octal strings) and the directory's. */
  readonly modes: {
    readonly dir: string;
    readonly key: string;
    readonly cert: string;
    readonly bundle: string;
  };
}

/**
 * Resolves the SVID link once and reads the three files of that version directory, as NGINX
 * sees them after a reload. Rejects with ENOENT when the directory was pruned meanwhile.
 */
export async function readSvidFiles(svidDir: string): Promise<SvidFilesSeen> {
  const dir = await realpath(svidDir);
  const [certPem, keyPem, bundlePem] = await Promise.all([
    readFile(join(dir, "svid.pem"), "utf8"),
    readFile(join(dir, "svid.key"), "utf8"),
    readFile(join(dir, "bundle.pem"), "utf8"),
  ]);
  const mode = async (p: string): Promise<string> => ((await stat(p)).mode & 0o777).toString(8);
  const chain = certificatesOf(certPem);
  const roots = certificatesOf(bundlePem);
  const leaf = chain[0];
  if (leaf === undefined) throw new Error("svid.pem holds no certificate");
  let chainVerifies = true;
  for (let i = 0; i < chain.length; i += 1) {
    const cert = chain[i]!;
    const issuer = chain[i + 1];
    const ok =
      issuer !== undefined
        ? cert.checkIssued(issuer) && cert.verify(issuer.publicKey)
        : roots.some((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    chainVerifies &&= ok;
  }
  return {
    dir,
    serialNumber: leaf.serialNumber.toUpperCase(),
    uri: /URI:([^,\s]+)/.exec(leaf.subjectAltName ?? "")?.[1] ?? "",
    keyMatches: leaf.checkPrivateKey(createPrivateKey(keyPem)),
    chainVerifies,
    modes: {
      dir: await mode(dir),
      key: await mode(join(dir, "svid.key")),
      cert: await mode(join(dir, "svid.pem")),
      bundle: await mode(join(dir, "bundle.pem")),
    },
  };
}
