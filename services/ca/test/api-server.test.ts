// startCaServer as an assembly: listeners, socket permissions, health, the CA's own serving
// SVID across rotation, config.updated from NATS, and stop.
import { X509Certificate } from "node:crypto";
import { chmod, mkdir, stat } from "node:fs/promises";
import { connect as tlsConnect } from "node:net";
import { join } from "node:path";
import { connect as tlsSocket, type PeerCertificate } from "node:tls";
import { createEventPublisher } from "@meshid/events";
import {
  createGrpcChannel,
  createGrpcClient,
  createMutableSvidSource,
  createStaticBundleSource,
} from "@meshid/grpc-kit";
import { certificatesToPem } from "@meshid/pki";
import { createNoopLogger } from "@meshid/telemetry";
import {
  createFakeClock,
  createTempDir,
  getFreePort,
  startNatsServer,
  type NatsServer,
} from "@meshid/testkit";
import type { NatsConnection } from "nats";
import { ClientError, Status } from "nice-grpc-common";
import { HealthDefinition } from "nice-grpc-server-health";
import { startCaServer } from "../src/ca-server";
import { buildCaConfig } from "../src/config";
import { startCaHarness, type CaHarness } from "../src/testing/ca-api-harness";

jest.setTimeout(60_000);

const SERVICES = [
  "",
  "meshid.ca.v1.EntryService",
  "meshid.ca.v1.AgentService",
  "meshid.ca.v1.SvidService",
  "meshid.ca.v1.BundleService",
  "meshid.ca.v1.AuthorityService",
];

function servingCertificate(
  port: number,
  bundlePem: string,
  verify = true,
): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsSocket({
      host: "127.0.0.1",
      port,
      ca: bundlePem,
      rejectUnauthorized: verify,
      servername: "localhost",
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate(true);
      const authorized = socket.authorized;
      socket.destroy();
      if (verify && !authorized)
        reject(new Error(`not authorized: ${String(socket.authorizationError)}`));
      else resolve(cert);
    });
    socket.once("error", reject);
  });
}

async function until(pred: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i += 1) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("ca server – assembly", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let h: CaHarness;

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    nc = await nats.connect();
    h = await startCaHarness({ natsUrl: nats.url, adminIds: ["spiffe://example.org/meshctl"] });
  });

  afterAll(async () => {
    await h?.close();
    await nats?.stop();
  });

  it("server – admin socket is 0600 in a 0700 directory", async () => {
    const sock = await stat(h.ca.adminSocketPath);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o600);
    const dir = await stat(join(h.config.dataDir, "admin"));
    expect(dir.mode & 0o777).toBe(0o700);
    expect(h.ca.ready()).toBe(true);
    expect(h.ca.tcpAddress).toBe(`localhost:${h.ca.tcpPort}`);
  });

  it("server – grpc.health.v1 reports SERVING on TCP (server-TLS, no client cert) and the admin socket", async () => {
    const tcp = createGrpcChannel({
      target: h.ca.tcpAddress,
      tls: {
        bundleSource: createStaticBundleSource({ bundlePem: h.ca.bundlePem() }),
        serverId: h.serverId,
      },
    });
    const unix = createGrpcChannel({ target: `unix://${h.ca.adminSocketPath}` });
    try {
      for (const channel of [tcp, unix]) {
        const health = createGrpcClient(HealthDefinition, channel, { deadlineMs: 10_000 });
        for (const service of SERVICES) {
          const res = await health.check({ service });
          expect(res.status).toBe(1); // SERVING
        }
      }
    } finally {
      tcp.close();
      unix.close();
    }
  });

  it("server – serves its own SVID (spiffe://<td>/meshid/ca, DNS localhost) and re-mints it on rotation", async () => {
    const before = await servingCertificate(h.ca.tcpPort, h.ca.bundlePem());
    expect(before.subjectaltname).toContain("URI:spiffe://example.org/meshid/ca");
    expect(before.subjectaltname).toContain("DNS:localhost");
    const prepared = await h.admin.authority.prepareX509Authority({});
    await h.admin.authority.activateX509Authority({ authorityId: prepared.authorityId });
    let after: PeerCertificate | undefined;
    await until(async () => {
      after = await servingCertificate(h.ca.tcpPort, h.ca.bundlePem());
      return after.serialNumber !== before.serialNumber;
    }, "a re-minted serving SVID");
    // The new serving SVID is signed by the newly active authority.
    const leaf = new X509Certificate((after as PeerCertificate).raw);
    const newAuthority = (await h.admin.bundle.getBundle({})).bundle?.x509Authorities.map(
      (a) => new X509Certificate(a.asn1),
    );
    const issuers = (newAuthority ?? []).filter(
      (ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey),
    );
    expect(issuers).toHaveLength(1);
    // Clients that trust the new bundle (which still holds the old authority) keep working.
    const state = await h.admin.authority.getX509AuthorityState({});
    expect(state.active?.authorityId).toBe(prepared.authorityId);
    const agent = await h.attestAgent();
    expect(agent.spiffeId.path).toMatch(/^\/meshid\/agent\//);
  });

  it("server – admins over TCP mTLS: by adminIds or by an admin entry; other SVIDs are refused", async () => {
    const mint = async (path: string) => {
      const { csr, keyPem } = await h.newCsr();
      const res = await h.admin.svid.mintX509SVID({
        csr: Buffer.from(csr),
        spiffeId: { trustDomain: "example.org", path },
      });
      return createMutableSvidSource({
        certChainPem: certificatesToPem(res.svid?.certChain ?? []),
        keyPem,
        bundlePem: h.ca.bundlePem(),
      });
    };
    const meshctl = h.mtlsClients(await mint("/meshctl"));
    expect((await meshctl.agent.listAgents({})).agents.length).toBeGreaterThan(0);

    const registrar = h.mtlsClients(await mint("/registrar"));
    const denied = await registrar.entry.listEntries({}).then(
      () => "ok",
      (err: unknown) => (err instanceof ClientError ? err.code : "other"),
    );
    expect(denied).toBe(Status.PERMISSION_DENIED);
    const agent = await h.attestAgent();
    await h.admin.entry.batchCreateEntry({
      entries: [
        {
          spiffeId: { trustDomain: "example.org", path: "/registrar" },
          parentId: { trustDomain: "example.org", path: agent.spiffeId.path },
          selectors: [{ type: "k8s", value: "sa:registrar" }],
          admin: true,
        },
      ],
    });
    // Entry changes drop the admin cache at once.
    expect((await registrar.entry.listEntries({})).entries.length).toBeGreaterThan(0);
    // Agents may read the bundle (agent-or-admin method).
    expect((await agent.clients.bundle.getBundle({})).pem).toContain("BEGIN CERTIFICATE");
  });

  it("server – config.updated from NATS changes svidTtl at once and rotates on request", async () => {
    const publisher = createEventPublisher({ nc, source: "meshid/test" });
    const activeBefore = h.ca.authority.state().active.authorityId;
    await publisher.publish("config.updated", {
      mtlsMode: "strict",
      caTtlSeconds: 0,
      svidTtlSeconds: 1800,
      caKeyType: "",
      rotateNow: false,
    });
    await until(() => h.ca.authority.settings().svidTtlSeconds === 1800, "svidTtl applied");
    expect(h.ca.authority.state().active.authorityId).toBe(activeBefore);
    await publisher.publish("config.updated", {
      mtlsMode: "strict",
      caTtlSeconds: 0,
      svidTtlSeconds: 0,
      caKeyType: "ec-p384",
      rotateNow: true,
    });
    await until(
      () => h.ca.authority.state().active.authorityId !== activeBefore,
      "rotation on request",
    );
    expect(h.ca.authority.state().active.keyType).toBe("ec-p384");
  });
});

describe("ca server – serving SVID half-life (fake clock)", () => {
  it("server – re-mints its serving SVID at half of its lifetime", async () => {
    const clock = createFakeClock(new Date());
    const h = await startCaHarness({ clock });
    try {
      const ttlMs = h.ca.authority.settings().svidTtlSeconds * 1000;
      const first = await servingCertificate(h.ca.tcpPort, h.ca.bundlePem(), false);
      await clock.whenSleeping(2); // rotation loop + re-mint loop
      await clock.advance(ttlMs / 2 - 60_000);
      expect((await servingCertificate(h.ca.tcpPort, h.ca.bundlePem(), false)).serialNumber).toBe(
        first.serialNumber,
      );
      await clock.advance(120_000);
      let next: PeerCertificate | undefined;
      await until(async () => {
        next = await servingCertificate(h.ca.tcpPort, h.ca.bundlePem(), false);
        return next.serialNumber !== first.serialNumber;
      }, "the half-life re-mint");
      // Valid from the fake "now" (backdated 10 s), i.e. minted at half-life.
      const notBefore = new Date((next as PeerCertificate).valid_from).getTime();
      expect(notBefore).toBeGreaterThan(new Date(first.valid_from).getTime() + ttlMs / 2 - 120_000);
    } finally {
      await h.close();
    }
  });
});

describe("ca server – start and stop", () => {
  it("server – refuses an admin socket directory open to others", async () => {
    const dir = await createTempDir("meshid-ca-perm-");
    try {
      const adminDir = join(dir.path, "admin");
      await mkdir(adminDir, { mode: 0o755 });
      await chmod(adminDir, 0o755);
      const { config } = buildCaConfig({
        dataDir: dir.path,
        listen: "127.0.0.1:0",
        keyManager: "memory",
      });
      await expect(startCaServer({ config, logger: createNoopLogger() })).rejects.toMatchObject({
        code: "ca.admin_socket.directory_mode",
      });
    } finally {
      await dir.cleanup();
    }
  });

  it("server – stop closes both listeners, is idempotent, and a restart on the same data dir keeps the store", async () => {
    const dir = await createTempDir("meshid-ca-stop-");
    try {
      const { config } = buildCaConfig({
        dataDir: dir.path,
        listen: "127.0.0.1:0",
        keyManager: "disk",
      });
      const ca = await startCaServer({ config, logger: createNoopLogger() });
      const port = ca.tcpPort;
      const bundle = ca.bundlePem();
      await Promise.all([ca.stop(), ca.stop()]);
      expect(ca.ready()).toBe(false);
      const refused = await new Promise<boolean>((resolve) => {
        const s = tlsConnect({ host: "127.0.0.1", port });
        s.once("connect", () => {
          s.destroy();
          resolve(false);
        });
        s.once("error", () => resolve(true));
      });
      expect(refused).toBe(true);
      const again = await startCaServer({ config, logger: createNoopLogger() });
      try {
        expect(again.bundlePem()).toBe(bundle);
      } finally {
        await again.stop();
      }
    } finally {
      await dir.cleanup();
    }
  });
});

describe("ca server – k8s_psat clusters", () => {
  it("server – a psat cluster without a usable kubeconfig fails start-up with a clear error", async () => {
    const dir = await createTempDir("meshid-ca-psat-");
    try {
      const { config } = buildCaConfig({
        dataDir: dir.path,
        listen: "127.0.0.1:0",
        keyManager: "memory",
        psatClusters: [
          {
            name: "prod",
            allowedServiceAccounts: ["meshid:meshid-agent"],
            kubeconfigFile: join(dir.path, "missing-kubeconfig.yaml"),
          },
        ],
      });
      const err: unknown = await startCaServer({ config, logger: createNoopLogger() }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: "ca.config.psat_cluster", kind: "failed_precondition" });
      expect((err as Error).message).toContain('"prod"');
      expect((err as Error).message).toContain("missing-kubeconfig.yaml");
    } finally {
      await dir.cleanup();
    }
  });
});

describe("ca server – NATS", () => {
  it("server – an unreachable NATS fails start-up with a clear error that hides credentials", async () => {
    const dir = await createTempDir("meshid-ca-nats-");
    try {
      const port = await getFreePort();
      const { config } = buildCaConfig({
        dataDir: dir.path,
        listen: "127.0.0.1:0",
        keyManager: "memory",
        natsUrl: `nats://user:s3cret@127.0.0.1:${port}`,
      });
      const err: unknown = await startCaServer({ config, logger: createNoopLogger() }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: "ca.nats.unavailable" });
      expect((err as Error).message).not.toContain("s3cret");
      // Everything started before the failure was stopped: the admin socket is gone.
      await expect(stat(config.adminSocketPath)).rejects.toThrow();
    } finally {
      await dir.cleanup();
    }
  });
});
