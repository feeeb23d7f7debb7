import { X509Certificate } from "node:crypto";
import { connect, type PeerCertificate } from "node:tls";
import type { Channel } from "@grpc/grpc-js";
import { isMeshidError } from "@meshid/errors";
import { spiffeWorkload } from "@meshid/proto";
import { parseSpiffeId } from "@meshid/spiffe";
import { ClientError, Status } from "nice-grpc-common";
import { HealthDefinition } from "nice-grpc-server-health";
import { createTestCa, type TestCa } from "@meshid/testkit";
import {
  addHealth,
  createGrpcChannel,
  createGrpcClient,
  createGrpcServer,
  createMutableSvidSource,
  createStaticBundleSource,
  createStaticSvidSource,
  requirePeerSpiffeId,
  type ChannelTlsOptions,
  type ClientCertificateMode,
  type GrpcServer,
  type SvidSource,
  type TlsMaterial,
} from "../src";
import { createMemoryLogger } from "./support/memory-logger";
import { createTestWorkloadService, echoCaller } from "./support/workload-service";

const WorkloadApi = spiffeWorkload.SpiffeWorkloadAPIDefinition;
const SERVER_ID = "spiffe://example.org/meshid/ca";
const AGENT_ID = "spiffe://example.org/meshid/agent/node-1";

let ca: TestCa;
let otherCa: TestCa;

beforeAll(async () => {
  ca = await createTestCa({ trustDomain: "example.org" });
  otherCa = await createTestCa({ trustDomain: "example.org" });
});

const servers: GrpcServer[] = [];
const channels: Channel[] = [];

afterEach(async () => {
  for (const channel of channels.splice(0)) channel.close();
  await Promise.all(servers.splice(0).map((s) => s.shutdown({ graceMs: 0 })));
});

async function material(issuer: TestCa, spiffeId: string, bundlePem: string): Promise<TlsMaterial> {
  const svid = await issuer.issueSvid({ spiffeId });
  return { certChainPem: svid.certChainPem, keyPem: svid.keyPem, bundlePem };
}

/** Starts a TLS server: the workload API requires a caller ID, health does not. */
async function startTlsServer(
  source: SvidSource,
  clientCertificate: ClientCertificateMode,
  authorize: (id: string, method: string) => boolean = () => true,
) {
  const server = createGrpcServer({
    logger: createMemoryLogger(),
    tls: { source, clientCertificate },
  });
  servers.push(server);
  server
    .with(requirePeerSpiffeId((id, method) => authorize(id.toString(), method)))
    .add(WorkloadApi, createTestWorkloadService());
  addHealth(server);
  const port = await server.listen("127.0.0.1:0");
  return { server, port };
}

function channelTo(port: number, tls: ChannelTlsOptions): Channel {
  const channel = createGrpcChannel({ target: `localhost:${port}`, tls });
  channels.push(channel);
  return channel;
}

async function expectClientError(promise: Promise<unknown>): Promise<ClientError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    return err as ClientError;
  }
  throw new Error("expected the call to fail");
}

/** Opens a raw TLS connection with `clientMaterial` and returns the certificate the server shows. */
function serverCertificate(port: number, clientMaterial: TlsMaterial): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "localhost",
      port,
      servername: "localhost",
      ca: clientMaterial.bundlePem,
      cert: clientMaterial.certChainPem,
      key: clientMaterial.keyPem,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert);
    });
    socket.once("error", reject);
  });
}

function leafFingerprint(m: TlsMaterial): string {
  return new X509Certificate(m.certChainPem).fingerprint256;
}

describe("mTLS with X509-SVIDs", () => {
  it("tls – mTLS call: the handler sees the caller's SPIFFE ID", async () => {
    const serverSource = createStaticSvidSource(await material(ca, SERVER_ID, ca.bundlePem));
    const { port } = await startTlsServer(serverSource, "require");
    const clientSource = createStaticSvidSource(await material(ca, AGENT_ID, ca.bundlePem));

    const client = createGrpcClient(
      WorkloadApi,
      channelTo(port, { source: clientSource, serverId: parseSpiffeId(SERVER_ID) }),
    );
    const response = await client.fetchJWTSVID({ audience: ["ca"] });
    expect(response.svids[0]?.spiffeId).toBe(AGENT_ID);
  });

  it("tls – requirePeerSpiffeId answers PERMISSION_DENIED when the predicate refuses", async () => {
    const serverSource = createStaticSvidSource(await material(ca, SERVER_ID, ca.bundlePem));
    const { port } = await startTlsServer(
      serverSource,
      "require",
      (id, method) => id === "spiffe://example.org/admin" && method.endsWith("/FetchJWTSVID"),
    );
    const clientSource = createStaticSvidSource(await material(ca, AGENT_ID, ca.bundlePem));
    const client = createGrpcClient(WorkloadApi, channelTo(port, { source: clientSource }));
    const err = await expectClientError(client.fetchJWTSVID({ audience: [] }));
    expect(err.code).toBe(Status.PERMISSION_DENIED);
    expect(err.details).not.toContain("admin");
  });

  it("tls – request mode: no client cert is UNAUTHENTICATED on a require-method, attestation-style calls pass", async () => {
    const serverSource = createStaticSvidSource(await material(ca, SERVER_ID, ca.bundlePem));
    const { port } = await startTlsServer(serverSource, "request");
    const channel = channelTo(port, {
      bundleSource: createStaticBundleSource({ bundlePem: ca.bundlePem }),
      serverId: parseSpiffeId(SERVER_ID),
    });

    const health = createGrpcClient(HealthDefinition, channel);
    expect((await health.check({ service: "" })).status).toBe(1);
    const workload = createGrpcClient(WorkloadApi, channel);
    const err = await expectClientError(workload.fetchJWTSVID({ audience: [] }));
    expect(err.code).toBe(Status.UNAUTHENTICATED);
  });

  it("tls – request mode: a client cert from an untrusted CA is never trusted", async () => {
    const serverSource = createStaticSvidSource(await material(ca, SERVER_ID, ca.bundlePem));
    const { port } = await startTlsServer(serverSource, "request");
    // Trusts the real CA for the server, but presents an SVID from another CA.
    const forged = await material(otherCa, AGENT_ID, ca.bundlePem);
    const channel = channelTo(port, { source: createStaticSvidSource(forged) });
    const err = await expectClientError(
      createGrpcClient(WorkloadApi, channel).fetchJWTSVID({ audience: [] }),
    );
    expect(err.code).toBe(Status.UNAUTHENTICATED);
  });

  it("tls – require mode: a client without a certificate cannot connect", async () => {
    const serverSource = createStaticSvidSource(await material(ca, SERVER_ID, ca.bundlePem));
    const { port } = await startTlsServer(serverSource, "require");
    const channel = channelTo(port, {
      bundleSource: createStaticBundleSource({ bundlePem: ca.bundlePem }),
    });
    const err = await expectClientError(
      createGrpcClient(HealthDefinition, channel).check({ service: "" }, { deadline: 10_000 }),
    );
    expect(err.code).toBe(Status.UNAVAILABLE);
  });

  it("tls – the client refuses a server with the wrong SPIFFE ID", async () => {
    const serverSource = createStaticSvidSource(
      await material(ca, "spiffe://example.org/imposter", ca.bundlePem),
    );
    const { port } = await startTlsServer(serverSource, "require");
    const clientSource = createStaticSvidSource(await material(ca, AGENT_ID, ca.bundlePem));

    const exact = createGrpcClient(
      HealthDefinition,
      channelTo(port, { source: clientSource, serverId: parseSpiffeId(SERVER_ID) }),
    );
    const err = await expectClientError(exact.check({ service: "" }, { deadline: 10_000 }));
    expect(err.code).toBe(Status.UNAVAILABLE);
    expect(err.details).toContain("unexpected server SPIFFE ID spiffe://example.org/imposter");

    const byPredicate = createGrpcClient(
      HealthDefinition,
      channelTo(port, { source: clientSource, serverId: (id) => id.path.startsWith("/meshid/") }),
    );
    const err2 = await expectClientError(byPredicate.check({ service: "" }, { deadline: 10_000 }));
    expect(err2.code).toBe(Status.UNAVAILABLE);
  });

  it("tls – the client refuses a server whose chain is not in its bundle", async () => {
    const serverSource = createStaticSvidSource(await material(otherCa, SERVER_ID, ca.bundlePem));
    const { port } = await startTlsServer(serverSource, "request");
    const channel = channelTo(port, {
      bundleSource: createStaticBundleSource({ bundlePem: ca.bundlePem }),
    });
    const err = await expectClientError(
      createGrpcClient(HealthDefinition, channel).check({ service: "" }, { deadline: 10_000 }),
    );
    expect(err.code).toBe(Status.UNAVAILABLE);
  });
});

describe("SVID rotation", () => {
  it("tls – rotating both SVIDs and the CA keeps the open channel working; new handshakes use the new certificates", async () => {
    const serverBefore = await material(ca, SERVER_ID, ca.bundlePem);
    const clientBefore = await material(ca, AGENT_ID, ca.bundlePem);
    const serverSource = createMutableSvidSource(serverBefore);
    const clientSource = createMutableSvidSource(clientBefore);

    const peers: string[] = [];
    const server = createGrpcServer({
      logger: createMemoryLogger(),
      tls: { source: serverSource, clientCertificate: "require" },
    });
    servers.push(server);
    server.add(
      WorkloadApi,
      createTestWorkloadService((request, context) => {
        peers.push(context.peer);
        return echoCaller(request, context);
      }),
    );
    const port = await server.listen("127.0.0.1:0");
    expect((await serverCertificate(port, clientBefore)).fingerprint256).toBe(
      leafFingerprint(serverBefore),
    );

    const open = createGrpcClient(
      WorkloadApi,
      channelTo(port, { source: clientSource, serverId: parseSpiffeId(SERVER_ID) }),
    );
    expect((await open.fetchJWTSVID({ audience: [] })).svids[0]?.spiffeId).toBe(AGENT_ID);

    // Rotate to SVIDs from a new CA; both sides now trust only the new CA.
    const serverAfter = await material(otherCa, SERVER_ID, otherCa.bundlePem);
    const clientAfter = await material(otherCa, AGENT_ID, otherCa.bundlePem);
    serverSource.set(serverAfter);
    clientSource.set(clientAfter);

    // The open channel keeps its connection (same peer address) and keeps working.
    for (let i = 0; i < 3; i++) {
      expect((await open.fetchJWTSVID({ audience: [] })).svids[0]?.spiffeId).toBe(AGENT_ID);
    }
    expect(new Set(peers).size).toBe(1);

    // A new handshake shows the new server certificate ...
    expect((await serverCertificate(port, clientAfter)).fingerprint256).toBe(
      leafFingerprint(serverAfter),
    );
    // ... and a new channel succeeds although the server now trusts only the new CA, so the
    // client presented its new certificate.
    const fresh = createGrpcClient(
      WorkloadApi,
      channelTo(port, { source: clientSource, serverId: parseSpiffeId(SERVER_ID) }),
    );
    expect((await fresh.fetchJWTSVID({ audience: [] })).svids[0]?.spiffeId).toBe(AGENT_ID);
    expect(new Set(peers).size).toBe(2);
    // A client still trusting only the old CA can no longer connect.
    await expect(serverCertificate(port, clientBefore)).rejects.toThrow();
  });

  it("tls – a mutable source rejects unusable material and keeps the previous one", async () => {
    const good = await material(ca, AGENT_ID, ca.bundlePem);
    const source = createMutableSvidSource(good);
    const other = await material(ca, AGENT_ID, ca.bundlePem);
    let thrown: unknown;
    try {
      source.set({ ...good, keyPem: other.keyPem });
    } catch (err) {
      thrown = err;
    }
    expect(isMeshidError(thrown, "grpc.tls.material_invalid")).toBe(true);
    expect(String((thrown as Error).message)).not.toContain("PRIVATE KEY");
    expect(source.current().certChainPem).toBe(good.certChainPem);
  });
});

describe("bundle sources", () => {
  it("tls – a static bundle source rejects a bundle that does not parse", () => {
    let thrown: unknown;
    try {
      createStaticBundleSource({
        bundlePem: "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
      });
    } catch (err) {
      thrown = err;
    }
    expect(isMeshidError(thrown, "grpc.tls.bundle_invalid")).toBe(true);
  });
});
