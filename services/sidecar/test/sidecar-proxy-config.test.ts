// The sidecar following a ProxyConfigService stream over mTLS with its agent SVID. The server is
// a small in-test implementation of the proxy-config port (the real proxy-config process is
// covered by the e2e suites).
import { readFile } from "node:fs/promises";
import { createGrpcServer, type GrpcServer } from "@meshid/grpc-kit";
import { meshidProxyconfigV1 } from "@meshid/proto";
import { createNoopLogger } from "@meshid/telemetry";
import { getFreePort } from "@meshid/testkit";
import {
  createWorkloadX509Source,
  pickSvidById,
  type WorkloadX509Source,
  type WorkloadX509Svid,
} from "@meshid/workload-api";
import {
  TEST_BACKOFF,
  eventually,
  startSidecarStack,
  startTestSidecar,
  tlsPeer,
  type SidecarStack,
  type TestSidecar,
} from "./sidecar-harness";

jest.setTimeout(300_000);

const PROXY_CONFIG_ID = "spiffe://example.org/meshid/proxy-config";
const SIDECAR_ID = "spiffe://example.org/pc/sidecar";
const CLIENT_ID = "spiffe://example.org/pc/client";

type Request = meshidProxyconfigV1.ProxyConfigRequest;

/** An nginx.conf as proxy-config would render it for `layout`: strict HTTP inbound + a stream block. */
function render(layout: meshidProxyconfigV1.SidecarLayout, port: number, extra = ""): string {
  const p = layout.nginxPrefix;
  return `${layout.streamModulePath === "" ? "" : `load_module ${layout.streamModulePath};`}
${layout.nginxUser === "" ? "" : `user ${layout.nginxUser};`}
worker_processes 1;
pid ${p}/nginx.pid;
error_log ${p}/logs/error.log notice;
events { worker_connections 64; }
http {
  access_log ${p}/logs/access.log;
  client_body_temp_path ${p}/tmp/client_body;
  proxy_temp_path ${p}/tmp/proxy;
  fastcgi_temp_path ${p}/tmp/fastcgi;
  uwsgi_temp_path ${p}/tmp/uwsgi;
  scgi_temp_path ${p}/tmp/scgi;
  ${extra}
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${layout.svidDir}/svid.pem;
    ssl_certificate_key ${layout.svidDir}/svid.key;
    ssl_client_certificate ${layout.svidDir}/bundle.pem;
    ssl_verify_client on;
    ssl_verify_depth 4;
    location / { return 200 "ok\\n"; }
  }
}
stream {
  log_format meshid '$remote_addr $status';
  access_log ${p}/logs/stream-access.log meshid;
}
`;
}

describe("sidecar – proxy-config stream", () => {
  let stack: SidecarStack;
  let serverSource: WorkloadX509Source | undefined;
  let server: GrpcServer | undefined;
  let sidecar: TestSidecar | undefined;
  let client: WorkloadX509Svid;
  const requests: { request: Request; caller: string }[] = [];
  const outbox: meshidProxyconfigV1.ProxyConfig[] = [];
  let wake: (() => void) | undefined;
  const push = (message: meshidProxyconfigV1.ProxyConfig): void => {
    outbox.push(message);
    wake?.();
  };

  /**
   * A ProxyConfigService like proxy-config's: each watch gets the current rendering at once,
   * then every newer one.
   */
  const createProxyConfigServer = (): GrpcServer => {
    const created = createGrpcServer({
      logger: createNoopLogger(),
      tls: { source: serverSource!, clientCertificate: "require" },
    });
    created.add(meshidProxyconfigV1.ProxyConfigServiceDefinition, {
      getProxyConfig: () => Promise.reject(new Error("not used")),
      async *watchProxyConfig(request, context) {
        requests.push({ request, caller: context.callerSpiffeId?.toString() ?? "" });
        let sent = Math.max(0, outbox.length - 1);
        while (!context.signal.aborted) {
          const next = outbox[sent];
          if (next !== undefined) {
            sent += 1;
            yield next;
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            context.signal.addEventListener("abort", () => resolve(), { once: true });
          });
        }
      },
    });
    return created;
  };

  beforeAll(async () => {
    stack = await startSidecarStack();
    await stack.createEntry("/meshid/proxy-config");
    await stack.createEntry("/pc/sidecar");
    await stack.createEntry("/pc/client");
    client = await stack.fetchSvid(CLIENT_ID);
    serverSource = await createWorkloadX509Source({
      socketPath: stack.agent.workloadSocketPath,
      pick: pickSvidById(PROXY_CONFIG_ID),
      backoff: TEST_BACKOFF,
    });
    server = createProxyConfigServer();
  });

  afterAll(async () => {
    await sidecar?.stop();
    await server?.shutdown({ graceMs: 0 });
    serverSource?.close();
    await stack?.stop();
  });

  it("sidecar proxy-config – sends the pod, ports and layout over mTLS, applies each rendering and keeps the last good one", async () => {
    const grpcPort = await server!.listen("127.0.0.1:0");
    const nginxPort = await getFreePort();
    sidecar = await startTestSidecar({
      stack,
      name: "proxy-config",
      config: {
        spiffeId: SIDECAR_ID,
        proxyConfig: { address: `localhost:${grpcPort}` },
        inbound: [{ name: "web", listenPort: nginxPort, appPort: 8080, protocol: "http" }],
        outbound: [
          {
            listenPort: 15001,
            destinationHost: "backend.default.svc",
            destinationPort: 443,
            serverSpiffeId: "spiffe://example.org/ns/default/sa/backend",
          },
        ],
      },
      env: { POD_NAMESPACE: "shop", POD_NAME: "web-0" },
    });
    const s = sidecar;
    const first = await eventually("WatchProxyConfig called", () => requests[0]);
    expect(first.caller).toBe(SIDECAR_ID);
    const { request } = first;
    expect(request.namespace).toBe("shop");
    expect(request.podName).toBe("web-0");
    expect(request.inbound).toEqual([
      {
        name: "web",
        listenPort: nginxPort,
        appPort: 8080,
        protocol: meshidProxyconfigV1.AppProtocol.APP_PROTOCOL_HTTP,
      },
    ]);
    expect(request.outbound[0]).toMatchObject({
      listenPort: 15001,
      destinationHost: "backend.default.svc",
      serverSpiffeId: "spiffe://example.org/ns/default/sa/backend",
    });
    const layout = request.layout!;
    expect(layout).toEqual({
      svidDir: s.config.svidDir,
      nginxPrefix: s.config.nginx.prefix,
      streamModulePath: "/usr/lib/nginx/modules/ngx_stream_module.so",
      nginxUser: "root",
    });

    const message = (generation: number, conf: string): meshidProxyconfigV1.ProxyConfig => ({
      effectiveMode: meshidProxyconfigV1.MtlsMode.MTLS_MODE_STRICT,
      modeSource: "global",
      nginxConf: conf,
      generation,
      meshConfigGeneration: 1,
    });
    push(message(1, render(layout, nginxPort)));
    await s.until("ready with generation 1", () => (s.sidecar.ready() ? true : undefined));
    expect(s.sidecar.status().config).toMatchObject({
      appliedGeneration: 1,
      effectiveMode: "strict",
      modeSource: "global",
    });
    expect((await tlsPeer(nginxPort, client)).uri).toBe(SIDECAR_ID);

    push(message(2, render(layout, nginxPort, "bad_directive 1;")));
    await eventually("generation 2 rejected", () =>
      s.sidecar.status().config.rejected?.generation === 2 ? true : undefined,
    );
    expect(s.sidecar.status()).toMatchObject({ degraded: true, config: { appliedGeneration: 1 } });
    expect((await tlsPeer(nginxPort, client)).uri).toBe(SIDECAR_ID);

    push(message(3, render(layout, nginxPort, "server_tokens off;")));
    await eventually("generation 3 applied", () =>
      s.sidecar.status().config.appliedGeneration === 3 && !s.sidecar.status().degraded
        ? true
        : undefined,
    );
    expect(await readFile(s.config.nginx.configFile, "utf8")).toMatch(/server_tokens off;/);
    await eventually("reloaded with generation 3", () =>
      s.sidecar.status().lastReload?.generation === 3 ? true : undefined,
    );
    expect(s.sidecar.status().lastReload).toMatchObject({ result: "success" });
    expect((await tlsPeer(nginxPort, client)).uri).toBe(SIDECAR_ID);

    // proxy-config restarts: the sidecar calls again (backoff) and follows the new stream.
    await server!.shutdown({ graceMs: 0 });
    server = createProxyConfigServer();
    await server.listen(`127.0.0.1:${grpcPort}`);
    await eventually("WatchProxyConfig called again", () =>
      requests.length >= 2 ? true : undefined,
    );
    push(message(4, render(layout, nginxPort, "server_tokens on;")));
    await s.until("generation 4 applied after the reconnect", () =>
      s.sidecar.status().lastReload?.generation === 4 ? true : undefined,
    );
    expect(s.sidecar.status()).toMatchObject({ degraded: false, config: { appliedGeneration: 4 } });
    expect(s.memory.text()).toMatch(/proxy-config watch failed; retrying/);
    expect((await tlsPeer(nginxPort, client)).uri).toBe(SIDECAR_ID);
  });
});
