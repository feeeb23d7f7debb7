// proxy-config fan-out: the built meshid-proxy-config process (file store, static SVID from a
// testkit CA), N sidecar-like WatchProxyConfig streams over mTLS (spread over a few channels),
// then mesh mode changes through UpdateMeshConfig on the admin socket. Measures the first
// message of N streams opened at once, the time from an accepted update until every stream
// holds the re-rendered config, GetProxyConfig latency, and the service's memory per stream.
import { readFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { Channel } from "@grpc/grpc-js";
import { createGrpcChannel, createGrpcClient, createStaticSvidSource } from "@meshid/grpc-kit";
import { meshidProxyconfigV1 as pb } from "@meshid/proto";
import { parseSpiffeId } from "@meshid/spiffe";
import {
  createTempDir,
  createTestCa,
  meshidServiceMain,
  startMeshidService,
  type MeshidServiceProcess,
  type TempDir,
  writeSvidFiles,
} from "@meshid/testkit";
import type { Benchmark, BenchmarkContext } from "../benchmark";
import { percentile } from "./ca";

/** The built service (build with `npx turbo run build --filter=@meshid/proxy-config...`). */
export const PROXY_CONFIG_MAIN = meshidServiceMain("proxy-config");
/** Watch streams held open (quick mode: 20). */
export const STREAMS = 2_000;
/** Mode changes measured (quick mode: 2). */
export const MODE_CHANGES = 10;
/** GetProxyConfig calls measured (quick mode: 20). */
export const GETS = 500;
/** Streams per gRPC channel (HTTP/2 connection). */
const STREAMS_PER_CHANNEL = 100;
/** Generous bound on anything that must happen (never a timing assertion). */
const EVENT_TIMEOUT_MS = 120_000;

const SERVER_ID = "spiffe://example.org/meshid/proxy-config";
const MODES = [pb.MtlsMode.MTLS_MODE_STRICT, pb.MtlsMode.MTLS_MODE_PERMISSIVE] as const;

function request(i: number): pb.ProxyConfigRequest {
  return {
    namespace: "bench",
    podName: `pod-${i}`,
    inbound: [
      { name: "http", listenPort: 8443, appPort: 8080, protocol: pb.AppProtocol.APP_PROTOCOL_HTTP },
      { name: "db", listenPort: 15432, appPort: 5432, protocol: pb.AppProtocol.APP_PROTOCOL_TCP },
    ],
    outbound: [
      {
        name: "api",
        listenPort: 15001,
        destinationHost: "api.bench.svc",
        destinationPort: 8443,
        protocol: pb.AppProtocol.APP_PROTOCOL_HTTP,
        serverSpiffeId: "spiffe://example.org/ns/bench/sa/api",
        serverName: "",
      },
    ],
    layout: {
      svidDir: "/run/meshid/sidecar/svid",
      nginxPrefix: "/var/lib/meshid/sidecar/nginx",
      streamModulePath: "/usr/lib/nginx/modules/ngx_stream_module.so",
      nginxUser: "",
    },
  };
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function run(ctx: BenchmarkContext): Promise<Record<string, number | string | boolean>> {
  const streams = ctx.quick ? 20 : STREAMS;
  const changes = ctx.quick ? 2 : MODE_CHANGES;
  const gets = ctx.quick ? 20 : GETS;
  const dir: TempDir = await createTempDir("bench-proxy-config");
  const channels: Channel[] = [];
  const controller = new AbortController();
  let service: MeshidServiceProcess | undefined;
  try {
    const ca = await createTestCa();
    const serving = await ca.issueSvid({ spiffeId: SERVER_ID, dnsNames: ["localhost"] });
    const client = await ca.issueSvid({ spiffeId: "spiffe://example.org/ns/bench/sa/sidecar" });
    const tls = await writeSvidFiles(dir.path, serving, ca.bundlePem);
    const adminSocketPath = join(dir.path, "admin", "admin.sock");
    service = await startMeshidService({
      service: "proxy-config",
      main: PROXY_CONFIG_MAIN,
      workDir: join(dir.path, "svc"),
      config: {
        listen: "127.0.0.1:0",
        adminSocketPath,
        tls,
        meshConfig: { source: "file", path: join(dir.path, "meshconfig.yaml") },
        logLevel: "info",
      },
    });
    const listening = await service.waitForOutput(/"port":(\d+)[^\n]*proxy-config listening/, {
      timeoutMs: EVENT_TIMEOUT_MS,
    });
    const target = `localhost:${listening[1] ?? "0"}`;
    const rssBeforeKb = await rssKb(service.pid());

    const source = createStaticSvidSource({
      certChainPem: client.certChainPem,
      keyPem: client.keyPem,
      bundlePem: ca.bundlePem,
    });
    const clients = Array.from({ length: Math.ceil(streams / STREAMS_PER_CHANNEL) }, () => {
      const channel = createGrpcChannel({
        target,
        tls: { source, serverId: parseSpiffeId(SERVER_ID) },
      });
      channels.push(channel);
      return createGrpcClient(pb.ProxyConfigServiceDefinition, channel);
    });
    const adminChannel = createGrpcChannel({ target: `unix://${adminSocketPath}` });
    channels.push(adminChannel);
    const admin = createGrpcClient(pb.MeshConfigServiceDefinition, adminChannel, {
      deadlineMs: EVENT_TIMEOUT_MS,
    });

    // Every stream records the mode of each message and when it arrived.
    const latest: pb.MtlsMode[] = new Array<pb.MtlsMode>(streams).fill(
      pb.MtlsMode.MTLS_MODE_UNSPECIFIED,
    );
    let waiter: { mode: pb.MtlsMode; resolve: () => void } | undefined;
    let holding = 0;
    const firstMs: number[] = [];
    const openedAt = performance.now();
    const all = Array.from({ length: streams }, (_, i) =>
      (async () => {
        const stream = clients[Math.floor(i / STREAMS_PER_CHANNEL)]!.watchProxyConfig(request(i), {
          signal: controller.signal,
        });
        let first = true;
        for await (const message of stream) {
          if (first) {
            firstMs.push(performance.now() - openedAt);
            first = false;
          }
          if (latest[i] !== message.effectiveMode) {
            latest[i] = message.effectiveMode;
            if (waiter !== undefined && message.effectiveMode === waiter.mode) {
              holding++;
              if (holding === streams) waiter.resolve();
            }
          }
        }
      })().catch(() => undefined),
    );
    const deadline = Date.now() + EVENT_TIMEOUT_MS;
    while (firstMs.length < streams) {
      if (Date.now() > deadline)
        throw new Error(`only ${firstMs.length}/${streams} streams opened`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const rssStreamsKb = await rssKb(service.pid());
    ctx.progress(`${streams} streams open`);

    const fanOutMs: number[] = [];
    for (let c = 0; c < changes; c++) {
      const mode = MODES[c % MODES.length]!;
      holding = latest.filter((m) => m === mode).length;
      const done = new Promise<void>((resolve) => {
        waiter = { mode, resolve };
      });
      const start = performance.now();
      await admin.updateMeshConfig({ mtlsMode: mode, rotateNow: false });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        done,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("fan-out timed out")), EVENT_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      fanOutMs.push(performance.now() - start);
      ctx.progress(`change ${c + 1}/${changes}: ${Math.round(fanOutMs.at(-1)!)} ms`);
    }

    const getMs: number[] = [];
    for (let g = 0; g < gets; g++) {
      const start = performance.now();
      await clients[0]!.getProxyConfig(request(streams + g));
      getMs.push(performance.now() - start);
    }

    controller.abort();
    await Promise.all(all);
    return {
      streams,
      modeChanges: changes,
      firstMessageP50Ms: Math.round(percentile(firstMs, 50)),
      firstMessageP99Ms: Math.round(percentile(firstMs, 99)),
      fanOutP50Ms: Math.round(percentile(fanOutMs, 50)),
      fanOutMaxMs: Math.round(Math.max(...fanOutMs)),
      getP50Ms: Number(percentile(getMs, 50).toFixed(2)),
      getP99Ms: Number(percentile(getMs, 99).toFixed(2)),
      rssIdleMb: Math.round(rssBeforeKb / 1024),
      rssWithStreamsMb: Math.round(rssStreamsKb / 1024),
      rssPerStreamKb: Math.round((rssStreamsKb - rssBeforeKb) / streams),
      loadAvg1m: Number(loadavg()[0]?.toFixed(2) ?? 0),
    };
  } finally {
    controller.abort();
    for (const channel of channels) channel.close();
    await service?.stop();
    await dir.cleanup();
  }
}

/** The proxy-config benchmark. */
export const benchmark: Benchmark = { name: "proxy-config", run };
