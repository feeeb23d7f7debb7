// The client against the real meshid agent process (built dist/main.js via startMeshidAgent),
// the real CA process and a real nats-server: fetch, watch across a rotation and an agent
// restart, and mTLS between two grpc-kit peers that take their SVIDs from the agent.
import { createGrpcChannel, createGrpcClient, createGrpcServer } from "@meshid/grpc-kit";
import { spiffeWorkload } from "@meshid/proto";
import { createNoopLogger, createMemoryLogger } from "@meshid/telemetry";
import {
  startMeshidAgent,
  startMeshidCa,
  startNatsServer,
  type MeshidAgentProcess,
  type MeshidCaProcess,
  type NatsServer,
} from "@meshid/testkit";
import {
  createWorkloadX509Source,
  fetchX509Context,
  pickSvidById,
  watchX509Context,
  type WorkloadX509Source,
  type X509Context,
} from "../src";

jest.setTimeout(180_000);

const WAIT_MS = 60_000;
const FAST_BACKOFF = { initialMs: 100, maxMs: 1_000 };

async function nextOf<T>(it: AsyncIterator<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${WAIT_MS} ms`)), WAIT_MS);
  });
  try {
    const result = await Promise.race([it.next(), timeout]);
    if (result.done === true) throw new Error(`${what}: iterator finished`);
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

describe("Workload API client against the real meshid agent", () => {
  let nats: NatsServer;
  let ca: MeshidCaProcess;
  let agent: MeshidAgentProcess;
  const uid = process.getuid?.() ?? 0;
  const ids = {
    server: "spiffe://example.org/wl/server",
    client: "spiffe://example.org/wl/client",
  };
  const entryIds: Record<string, string> = {};

  beforeAll(async () => {
    nats = await startNatsServer();
    ca = await startMeshidCa({ natsUrl: nats.url });
    agent = await startMeshidAgent({ ca, natsUrl: nats.url });
    const admin = ca.admin();
    const parentPath = new URL(agent.agentId).pathname;
    const res = await admin.entries.batchCreateEntry({
      entries: Object.entries(ids).map(([name, id]) => ({
        spiffeId: { trustDomain: "example.org", path: new URL(id).pathname },
        parentId: { trustDomain: "example.org", path: parentPath },
        selectors: [{ type: "unix", value: `uid:${uid}` }],
        x509SvidTtlSeconds: 3_600,
        hint: name,
      })),
    });
    res.results.forEach((r, i) => {
      const name = Object.keys(ids)[i]!;
      const id = r.entry?.id;
      if (id === undefined || id === "") throw new Error(`entry: ${JSON.stringify(r.status)}`);
      entryIds[name] = id;
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await ca?.stop();
    await nats?.stop();
  });

  /** Changes an entry's TTL, which makes the agent re-mint its SVID. */
  async function forceRotation(name: string, ttlSeconds: number): Promise<void> {
    const admin = ca.admin();
    const entry = await admin.entries.getEntry({ id: entryIds[name]! });
    const res = await admin.entries.batchUpdateEntry({
      entries: [{ ...entry, x509SvidTtlSeconds: ttlSeconds }],
    });
    const status = res.results[0]?.status;
    if (status !== undefined && status.code !== 0) {
      throw new Error(`entry not updated: ${JSON.stringify(status)}`);
    }
  }

  /** Waits (watching) for a context in which both SVIDs are present. */
  async function bothServed(it: AsyncIterator<X509Context>): Promise<X509Context> {
    for (;;) {
      const context = await nextOf(it, "both SVIDs");
      if (context.svids.length === 2) return context;
    }
  }

  it("agent – fetch and watch deliver both SVIDs, with bundle keyed by trust-domain ID", async () => {
    const controller = new AbortController();
    const it = watchX509Context({
      socketPath: agent.workloadSocketPath,
      signal: controller.signal,
      backoff: FAST_BACKOFF,
    })[Symbol.asyncIterator]();
    const context = await bothServed(it);
    controller.abort();
    await it.return?.();
    expect(context.svids.map((s) => s.spiffeId).sort()).toEqual(Object.values(ids).sort());
    expect(context.bundles.has("spiffe://example.org")).toBe(true);
    expect(context.svids.every((s) => s.expiresAt.getTime() > Date.now())).toBe(true);

    const fetched = await fetchX509Context({ socketPath: agent.workloadSocketPath });
    expect(fetched.svids.map((s) => s.spiffeId).sort()).toEqual(Object.values(ids).sort());
  });

  it("agent – mTLS between two grpc-kit peers with agent SVIDs, surviving a rotation and an agent restart", async () => {
    const memory = createMemoryLogger();
    const logger = memory.logger;
    let serverSource: WorkloadX509Source | undefined;
    let clientSource: WorkloadX509Source | undefined;
    try {
      serverSource = await createWorkloadX509Source({
        socketPath: agent.workloadSocketPath,
        pick: pickSvidById(ids.server),
        logger,
        backoff: FAST_BACKOFF,
      });
      clientSource = await createWorkloadX509Source({
        socketPath: agent.workloadSocketPath,
        pick: pickSvidById(ids.client),
        logger,
        backoff: FAST_BACKOFF,
      });
      expect(serverSource.svid().spiffeId).toBe(ids.server);
      expect(clientSource.svid().spiffeId).toBe(ids.client);

      const tlsServer = createGrpcServer({
        logger: createNoopLogger(),
        tls: { source: serverSource, clientCertificate: "require" },
      });
      // Echo the caller's verified SPIFFE ID through a Workload API method (any unary will do).
      tlsServer.add(spiffeWorkload.SpiffeWorkloadAPIDefinition, {
        fetchJWTSVID: (_req, ctx) =>
          Promise.resolve({
            svids: [{ spiffeId: ctx.callerSpiffeId?.toString() ?? "", svid: "", hint: "" }],
          }),
        async *fetchX509SVID() {},
        async *fetchX509Bundles() {},
        async *fetchJWTBundles() {},
        validateJWTSVID: () => Promise.resolve({ spiffeId: "" }),
      });
      const port = await tlsServer.listen("127.0.0.1:0");
      const callerId = async (): Promise<string> => {
        const channel = createGrpcChannel({
          target: `localhost:${port}`,
          tls: { source: clientSource!, serverId: (id) => id.toString() === ids.server },
        });
        try {
          const client = createGrpcClient(spiffeWorkload.SpiffeWorkloadAPIDefinition, channel);
          const res = await client.fetchJWTSVID({ audience: ["x"] }, { deadline: 20_000 });
          return res.svids[0]?.spiffeId ?? "";
        } finally {
          channel.close();
        }
      };
      try {
        expect(await callerId()).toBe(ids.client);

        // Rotation: the client source follows it and new connections use the new SVID.
        const before = clientSource.svid().serialNumber;
        const rotated = new Promise<void>((resolve) => {
          const off = clientSource!.subscribe(() => {
            off();
            resolve();
          });
        });
        await forceRotation("client", 3_000);
        await rotated;
        expect(clientSource.svid().serialNumber).not.toBe(before);
        expect(await callerId()).toBe(ids.client);

        // Agent restart: the watch reconnects and a rotation afterwards still arrives.
        await agent.restart();
        const afterRestart = clientSource.svid().serialNumber;
        const rotatedAgain = new Promise<void>((resolve) => {
          const off = clientSource!.subscribe(() => {
            off();
            resolve();
          });
        });
        await forceRotation("client", 2_400);
        await rotatedAgain;
        expect(clientSource.svid().serialNumber).not.toBe(afterRestart);
        expect(await callerId()).toBe(ids.client);
      } finally {
        await tlsServer.shutdown({ graceMs: 0 });
      }
      expect(memory.text()).toMatch(/Workload API SVID rotated/);
      expect(memory.text()).not.toMatch(/PRIVATE KEY|REDACTED/);
    } finally {
      serverSource?.close();
      clientSource?.close();
    }
  });
});
