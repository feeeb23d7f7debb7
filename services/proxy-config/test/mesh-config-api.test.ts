// MeshConfigService and ProxyConfigService over real gRPC (mTLS and the admin socket) with the
// MeshConfig in a file and config.updated on a real nats-server.
import { readFile, stat, writeFile } from "node:fs/promises";
import { subscribeEvents, type EventPayload, type EventSubscription } from "@meshid/events";
import { meshidProxyconfigV1 as pb } from "@meshid/proto";
import { createTestCa, startNatsServer, type NatsServer, type TestCa } from "@meshid/testkit";
import type { NatsConnection } from "nats";
import { Status } from "nice-grpc";
import {
  proxyConfigRequest,
  startProxyConfigHarness,
  type ProxyConfigHarness,
} from "./fixtures/proxy-config-harness";
import { grpcFailure, readStream, waitFor } from "./fixtures/wait";

jest.setTimeout(120_000);

describe("mesh config api", () => {
  let ca: TestCa;
  let nats: NatsServer;
  let nc: NatsConnection;
  let h: ProxyConfigHarness;
  let subscription: EventSubscription<"config.updated">;
  const published: EventPayload<"config.updated">[] = [];

  beforeAll(async () => {
    ca = await createTestCa();
    nats = await startNatsServer();
    nc = await nats.connect();
    subscription = subscribeEvents({ nc, types: ["config.updated"] });
    void (async () => {
      for await (const event of subscription) published.push(event.data);
    })();
    h = await startProxyConfigHarness({ ca, natsUrl: nats.url });
  });

  afterAll(async () => {
    await h?.stop();
    await subscription?.close();
    await nats?.stop();
  });

  /** Current config, and the file's bytes, to prove a refused update changed nothing. */
  const snapshot = async (): Promise<{ config: unknown; file: string }> => ({
    config: (await h.workload.meshConfig.getMeshConfig({})).config,
    file: await readFile(h.meshConfigFile, "utf8"),
  });

  it("mesh config api – starts with the defaults and writes them to a 0600 file", async () => {
    const { config } = await h.workload.meshConfig.getMeshConfig({});
    expect(config).toMatchObject({
      mtlsMode: pb.MtlsMode.MTLS_MODE_PERMISSIVE,
      caTtl: "720h",
      svidTtl: "1h",
      caKeyType: "ec-p256",
      generation: 1,
    });
    expect((await stat(h.meshConfigFile)).mode & 0o777).toBe(0o600);
    expect(await readFile(h.meshConfigFile, "utf8")).toMatch(/kind: MeshConfig/);
  });

  const badValues: [string, pb.UpdateMeshConfigRequest, RegExp][] = [
    [
      "mtlsMode",
      { mtlsMode: pb.MtlsMode.MTLS_MODE_UNSPECIFIED, rotateNow: false },
      /mtlsMode: must be off, permissive or strict/,
    ],
    [
      "caTTL too short",
      { caTtl: "1h", rotateNow: false },
      /caTTL: must be at least 24h \(got "1h"\)/,
    ],
    ["caTTL unparsable", { caTtl: "soon", rotateNow: false }, /caTTL: must be a duration/],
    [
      "svidTTL too short",
      { svidTtl: "10s", rotateNow: false },
      /svidTTL: must be at least 1m \(got "10s"\)/,
    ],
    [
      "svidTTL above caTTL",
      { svidTtl: "800h", rotateNow: false },
      /svidTTL: must not exceed caTTL 720h/,
    ],
    [
      "caKeyType",
      { caKeyType: "dsa", rotateNow: false },
      /caKeyType: must be one of ec-p256, ec-p384, rsa-2048, rsa-4096 \(got "dsa"\)/,
    ],
  ];
  for (const [name, request, message] of badValues) {
    it(`mesh config api – invalid ${name}: INVALID_ARGUMENT naming the field, nothing changed, no event`, async () => {
      const before = await snapshot();
      const eventsBefore = published.length;
      const failure = await grpcFailure(h.admin.meshConfig.updateMeshConfig(request));
      expect(failure.code).toBe(Status.INVALID_ARGUMENT);
      expect(failure.details).toMatch(message);
      expect(await snapshot()).toEqual(before);
      expect(published.length).toBe(eventsBefore);
    });
  }

  it("mesh config api – every bad field is reported at once", async () => {
    const failure = await grpcFailure(
      h.admin.meshConfig.updateMeshConfig({
        caTtl: "1h",
        svidTtl: "1s",
        caKeyType: "dsa",
        rotateNow: false,
      }),
    );
    expect(failure.code).toBe(Status.INVALID_ARGUMENT);
    expect(failure.details).toMatch(/caTTL:.*svidTTL:|svidTTL:.*caTTL:/);
    expect(failure.details).toMatch(/caKeyType:/);
  });

  it("mesh config api – a workload that is no admin gets PERMISSION_DENIED and changes nothing", async () => {
    const before = await snapshot();
    const failure = await grpcFailure(
      h.workload.meshConfig.updateMeshConfig({
        mtlsMode: pb.MtlsMode.MTLS_MODE_STRICT,
        rotateNow: false,
      }),
    );
    expect(failure.code).toBe(Status.PERMISSION_DENIED);
    expect(await snapshot()).toEqual(before);
  });

  it("mesh config api – a caller of another trust domain is refused", async () => {
    const foreign = await createTestCa({ trustDomain: "other.org" });
    const clients = await h.clientAs("spiffe://other.org/ns/ops/sa/admin", foreign);
    await expect(clients.meshConfig.getMeshConfig({})).rejects.toThrow();
  });

  it("mesh config api – an admin update is persisted, published as config.updated and warned about", async () => {
    const before = (await h.workload.meshConfig.getMeshConfig({})).config?.generation ?? 0;
    const res = await h.admin.meshConfig.updateMeshConfig({ svidTtl: "200h", rotateNow: false });
    expect(res.config).toMatchObject({ svidTtl: "200h", generation: before + 1 });
    expect(res.warnings).toEqual([
      expect.stringMatching(/svidTTL 200h is more than a sixth of caTTL 720h/),
    ]);
    expect(await readFile(h.meshConfigFile, "utf8")).toMatch(/svidTTL: 200h/);
    const event = await waitFor("config.updated", () =>
      published.find((e) => e.svidTtlSeconds === 200 * 3600),
    );
    // NATS keeps one connection's order: nothing was published before it (the refused updates
    // above published nothing).
    expect(published.indexOf(event)).toBe(0);
    expect(event).toEqual({
      mtlsMode: "permissive",
      caTtlSeconds: 720 * 3600,
      svidTtlSeconds: 200 * 3600,
      caKeyType: "ec-p256",
      rotateNow: false,
    });
  });

  it("mesh config api – expected_generation: a stale one is ABORTED, the current one applies", async () => {
    const current = (await h.workload.meshConfig.getMeshConfig({})).config?.generation ?? 0;
    const stale = await grpcFailure(
      h.local.meshConfig.updateMeshConfig({
        svidTtl: "2h",
        expectedGeneration: current - 1,
        rotateNow: false,
      }),
    );
    expect(stale.code).toBe(Status.ABORTED);
    const ok = await h.local.meshConfig.updateMeshConfig({
      svidTtl: "1h",
      expectedGeneration: current,
      rotateNow: false,
    });
    expect(ok.config?.generation).toBe(current + 1);
  });

  it("mesh config api – a mode change re-renders open Watch streams; Get agrees", async () => {
    const request = proxyConfigRequest("apps", "web-0");
    const controller = new AbortController();
    const stream = readStream(
      h.workload.proxyConfig.watchProxyConfig(request, { signal: controller.signal }),
    );
    try {
      const first = await stream.next();
      expect(first).toMatchObject({
        effectiveMode: pb.MtlsMode.MTLS_MODE_PERMISSIVE,
        modeSource: "global",
      });
      expect(first.nginxConf).toMatch(/ssl_preread on;/);
      await h.local.meshConfig.updateMeshConfig({
        mtlsMode: pb.MtlsMode.MTLS_MODE_STRICT,
        rotateNow: false,
      });
      const second = await stream.next();
      expect(second.effectiveMode).toBe(pb.MtlsMode.MTLS_MODE_STRICT);
      expect(second.nginxConf).toMatch(/listen 8443 ssl;/);
      expect(second.nginxConf).toMatch(/ssl_verify_client on;/);
      expect(second.generation).toBe(first.generation + 1);
      const got = await h.workload.proxyConfig.getProxyConfig(request);
      expect(got).toEqual(second);
      expect(h.service.status().openWatchStreams).toBe(1);
    } finally {
      controller.abort();
      await h.local.meshConfig.updateMeshConfig({
        mtlsMode: pb.MtlsMode.MTLS_MODE_PERMISSIVE,
        rotateNow: false,
      });
    }
    await waitFor("stream closed", () =>
      h.service.status().openWatchStreams === 0 ? true : undefined,
    );
  });

  it("mesh config api – a change that leaves the rendering alone sends no new Watch message", async () => {
    const controller = new AbortController();
    const stream = readStream(
      h.workload.proxyConfig.watchProxyConfig(proxyConfigRequest("apps", "web-1"), {
        signal: controller.signal,
      }),
    );
    try {
      await stream.next();
      await h.local.meshConfig.updateMeshConfig({ svidTtl: "90m", rotateNow: false });
      // A mode change after it: the next message must be that one (no message for svidTTL).
      await h.local.meshConfig.updateMeshConfig({
        mtlsMode: pb.MtlsMode.MTLS_MODE_OFF,
        rotateNow: false,
      });
      const next = await stream.next();
      expect(next.effectiveMode).toBe(pb.MtlsMode.MTLS_MODE_OFF);
    } finally {
      controller.abort();
      await h.local.meshConfig.updateMeshConfig({
        mtlsMode: pb.MtlsMode.MTLS_MODE_PERMISSIVE,
        rotateNow: false,
      });
    }
  });

  it("mesh config api – a bad ProxyConfigRequest is INVALID_ARGUMENT naming the fields", async () => {
    const request = proxyConfigRequest("apps", "web-0", "/tmp/x;evil");
    request.outbound.push({
      name: "db",
      listenPort: 8443,
      destinationHost: "db.apps.svc; include /etc/passwd",
      destinationPort: 5432,
      protocol: pb.AppProtocol.APP_PROTOCOL_TCP,
      serverSpiffeId: "not-a-spiffe-id",
      serverName: "",
    });
    const failure = await grpcFailure(h.workload.proxyConfig.getProxyConfig(request));
    expect(failure.code).toBe(Status.INVALID_ARGUMENT);
    expect(failure.details).toMatch(/layout\.nginxPrefix/);
    expect(failure.details).toMatch(/outbound\[0\]\.listenPort: port 8443 is already used/);
    expect(failure.details).toMatch(/outbound\[0\]\.destinationHost/);
    expect(failure.details).toMatch(/outbound\[0\]\.serverSpiffeId/);
  });

  it("mesh config api – a hand edit of the file is picked up; an invalid edit keeps the last good config", async () => {
    const text = await readFile(h.meshConfigFile, "utf8");
    await writeFile(h.meshConfigFile, text.replace(/mtlsMode: \w+/, "mtlsMode: strict"));
    await waitFor("strict from the file", async () => {
      const { config } = await h.workload.meshConfig.getMeshConfig({});
      return config?.mtlsMode === pb.MtlsMode.MTLS_MODE_STRICT ? true : undefined;
    });
    // The change made outside the API reaches the CA too.
    await waitFor("config.updated for the edit", () =>
      published.find((e) => e.mtlsMode === "strict") === undefined ? undefined : true,
    );
    const edited = await readFile(h.meshConfigFile, "utf8");
    await writeFile(h.meshConfigFile, edited.replace(/caTTL: \w+/, "caTTL: 1h"));
    // Then a valid edit: once it shows, the invalid one before it has been seen and skipped.
    const marker = (await readFile(h.meshConfigFile, "utf8")).replace(
      /caKeyType: [\w-]+/,
      "caKeyType: ec-p384",
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const meanwhile = (await h.workload.meshConfig.getMeshConfig({})).config;
    expect(meanwhile).toMatchObject({ caTtl: "720h", mtlsMode: pb.MtlsMode.MTLS_MODE_STRICT });
    await writeFile(h.meshConfigFile, marker.replace(/caTTL: \w+/, "caTTL: 720h"));
    await waitFor("ec-p384 from the file", async () => {
      const { config } = await h.workload.meshConfig.getMeshConfig({});
      return config?.caKeyType === "ec-p384" ? true : undefined;
    });
  });
});
