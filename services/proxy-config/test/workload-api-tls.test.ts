// proxy-config's own SVID from the real meshid agent's Workload API (tls.workloadSocketPath):
// the CA and agent processes, an entry for proxy-config's uid, and admin / workload clients
// holding SVIDs minted by the same CA.
import { certificatesToPem, createCsr, exportPkcs8Pem, generateKeyPair } from "@meshid/pki";
import { createGrpcChannel, createGrpcClient, createStaticSvidSource } from "@meshid/grpc-kit";
import { meshidProxyconfigV1 as pb } from "@meshid/proto";
import { parseSpiffeId } from "@meshid/spiffe";
import { createNoopLogger } from "@meshid/telemetry";
import {
  createTempDir,
  startMeshidAgent,
  startMeshidCa,
  startNatsServer,
  type MeshidAgentProcess,
  type MeshidCaProcess,
  type NatsServer,
  type TempDir,
} from "@meshid/testkit";
import type { Channel } from "@grpc/grpc-js";
import { join } from "node:path";
import { Status } from "nice-grpc";
import { buildProxyConfigConfig } from "../src/config";
import { startProxyConfig, type RunningProxyConfig } from "../src/proxy-config";
import { grpcFailure } from "./fixtures/wait";

jest.setTimeout(180_000);

const SERVER_PATH = "/meshid/proxy-config";
const ADMIN_PATH = "/ns/ops/sa/admin";

describe("workload api tls", () => {
  let nats: NatsServer;
  let ca: MeshidCaProcess;
  let agent: MeshidAgentProcess;
  let dir: TempDir;
  let service: RunningProxyConfig | undefined;
  const channels: Channel[] = [];

  /** An SVID for `path` minted by the CA (admin MintX509SVID). */
  async function mint(path: string): Promise<{ certChainPem: string; keyPem: string }> {
    const keys = await generateKeyPair("ec-p256");
    const spiffeId = `spiffe://${ca.trustDomain}${path}`;
    const csr = await createCsr({ ...keys, spiffeId });
    const res = await ca.admin().svids.mintX509SVID({
      csr: Buffer.from(csr),
      spiffeId: { trustDomain: ca.trustDomain, path },
      dnsNames: [],
      ttlSeconds: 3600,
    });
    return {
      certChainPem: certificatesToPem(res.svid?.certChain ?? []),
      keyPem: exportPkcs8Pem(keys.privateKey),
    };
  }

  async function clientFor(path: string) {
    const svid = await mint(path);
    const channel = createGrpcChannel({
      target: service?.tcpAddress ?? "",
      tls: {
        source: createStaticSvidSource({ ...svid, bundlePem: await ca.bundlePem() }),
        serverId: parseSpiffeId(`spiffe://${ca.trustDomain}${SERVER_PATH}`),
      },
    });
    channels.push(channel);
    return createGrpcClient(pb.MeshConfigServiceDefinition, channel, { deadlineMs: 30_000 });
  }

  beforeAll(async () => {
    nats = await startNatsServer();
    ca = await startMeshidCa({ natsUrl: nats.url });
    agent = await startMeshidAgent({ ca, natsUrl: nats.url });
    dir = await createTempDir("proxy-config-wl");
    const res = await ca.admin().entries.batchCreateEntry({
      entries: [
        {
          spiffeId: { trustDomain: ca.trustDomain, path: SERVER_PATH },
          parentId: { trustDomain: ca.trustDomain, path: new URL(agent.agentId).pathname },
          selectors: [{ type: "unix", value: `uid:${process.getuid?.() ?? 0}` }],
          x509SvidTtlSeconds: 3_600,
          dnsNames: ["localhost"],
        },
      ],
    });
    expect(res.results[0]?.entry?.id).toBeTruthy();
    service = await startProxyConfig({
      config: buildProxyConfigConfig({
        trustDomain: ca.trustDomain,
        listen: "127.0.0.1:0",
        adminSocketPath: join(dir.path, "admin", "admin.sock"),
        adminIds: [`spiffe://${ca.trustDomain}${ADMIN_PATH}`],
        tls: { workloadSocketPath: agent.workloadSocketPath },
        meshConfig: { source: "file", path: join(dir.path, "meshconfig.yaml") },
        natsUrl: nats.url,
      }),
      logger: createNoopLogger(),
    });
  });

  afterAll(async () => {
    for (const channel of channels) channel.close();
    await service?.stop();
    await agent?.stop();
    await ca?.stop();
    await nats?.stop();
    await dir?.cleanup();
  });

  it("workload api tls – serves with the agent's SVID; an admin of the CA's trust domain updates, a workload may only read", async () => {
    const admin = await clientFor(ADMIN_PATH);
    const res = await admin.updateMeshConfig({
      mtlsMode: pb.MtlsMode.MTLS_MODE_STRICT,
      rotateNow: false,
    });
    expect(res.config?.mtlsMode).toBe(pb.MtlsMode.MTLS_MODE_STRICT);
    const workload = await clientFor("/ns/apps/sa/web");
    expect((await workload.getMeshConfig({})).config?.mtlsMode).toBe(pb.MtlsMode.MTLS_MODE_STRICT);
    const denied = await grpcFailure(
      workload.updateMeshConfig({ svidTtl: "2h", rotateNow: false }),
    );
    expect(denied.code).toBe(Status.PERMISSION_DENIED);
  });
});
