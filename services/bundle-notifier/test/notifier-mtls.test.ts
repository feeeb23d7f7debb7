// The notifier's mTLS mode: its own SVID from the real meshid agent's Workload API (an admin
// entry for its uid), the CA reached over TCP and verified by SPIFFE ID.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createMemoryLogger } from "@meshid/telemetry";
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
import { buildBundleNotifierConfig } from "../src/config";
import { startBundleNotifier, type RunningBundleNotifier } from "../src/notifier";
import { pemCertificates, waitFor } from "./notifier-harness";

jest.setTimeout(120_000);

const NOTIFIER_PATH = "/meshid/bundle-notifier";

describe("bundle-notifier over mTLS", () => {
  let nats: NatsServer;
  let ca: MeshidCaProcess;
  let agent: MeshidAgentProcess;
  let dir: TempDir;
  const running: RunningBundleNotifier[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    ca = await startMeshidCa({ natsUrl: nats.url });
    agent = await startMeshidAgent({ ca, natsUrl: nats.url });
    dir = await createTempDir("bn-mtls");
  });
  afterAll(async () => {
    for (const n of running) await n.stop();
    await agent?.stop();
    await ca?.stop();
    await nats?.stop();
    await dir?.cleanup();
  });

  async function createEntry(path: string, admin: boolean): Promise<void> {
    const clients = ca.admin();
    const res = await clients.entries.batchCreateEntry({
      entries: [
        {
          spiffeId: { trustDomain: ca.trustDomain, path },
          parentId: { trustDomain: ca.trustDomain, path: new URL(agent.agentId).pathname },
          selectors: [{ type: "unix", value: `uid:${process.getuid?.() ?? 0}` }],
          x509SvidTtlSeconds: 3_600,
          admin,
        },
      ],
    });
    const id = res.results[0]?.entry?.id;
    if (id === undefined || id === "") throw new Error(`entry: ${JSON.stringify(res.results)}`);
  }

  it("bundle-notifier over mTLS – an admin SVID from the agent reaches the CA by SPIFFE ID and the rotation arrives", async () => {
    await createEntry(NOTIFIER_PATH, true);
    const bundleFile = join(dir.path, "bundle.pem");
    const notifier = await startBundleNotifier({
      config: buildBundleNotifierConfig({
        trustDomain: ca.trustDomain,
        ca: { address: ca.address, workloadSocketPath: agent.workloadSocketPath },
        natsUrl: nats.url,
        targets: { file: { path: bundleFile } },
      }),
      logger: createMemoryLogger().logger,
    });
    running.push(notifier);
    await waitFor("ready over mTLS", () => notifier.ready());
    expect(await readFile(bundleFile, "utf8")).toBe(await ca.bundlePem());

    await ca.admin().authorities.prepareX509Authority({});
    const rotated = await ca.bundlePem();
    expect(pemCertificates(rotated)).toHaveLength(2);
    await waitFor(
      "the rotated bundle in the file",
      async () => (await readFile(bundleFile, "utf8")) === rotated,
    );
  });

  it("bundle-notifier over mTLS – a CA that presents another SPIFFE ID is refused: never ready, nothing written", async () => {
    const bundleFile = join(dir.path, "wrong-server.pem");
    const notifier = await startBundleNotifier({
      config: buildBundleNotifierConfig({
        trustDomain: ca.trustDomain,
        ca: {
          address: ca.address,
          serverId: `spiffe://${ca.trustDomain}/not/the/ca`,
          workloadSocketPath: agent.workloadSocketPath,
          retryInitialDelay: "50ms",
          retryMaxDelay: "200ms",
        },
        targets: { file: { path: bundleFile } },
      }),
      logger: createMemoryLogger().logger,
    });
    running.push(notifier);
    await waitFor("three refused attempts", () => notifier.status().caStreamFailures >= 3);
    expect(notifier.ready()).toBe(false);
    await expect(readFile(bundleFile, "utf8")).rejects.toMatchObject({ code: "ENOENT" });
  });
});
