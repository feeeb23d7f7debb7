// Real traffic through a real nginx running the rendered configuration, with certificates from
// testkit CAs: inbound per mode (strict, permissive, off; HTTP and TCP) and outbound mTLS
// origination to mesh destinations.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createTestCa,
  startNginx,
  type NginxServer,
  type TestCa,
  type TestSvid,
} from "@meshid/testkit";
import type { MtlsMode } from "../src/domain/mesh-config";
import { renderNginxConfig } from "../src/domain/nginx-config";
import type { OutboundRouteSpec, SidecarLayoutSpec } from "../src/domain/sidecar-spec";
import { nginxUserForTests, writeSvidDir, type SvidDir } from "./fixtures/sidecar-files";
import {
  httpGet,
  startHttpApp,
  startMtlsEchoServer,
  startMtlsHttpsServer,
  startTcpEchoApp,
  tcpExchange,
  type AppSeen,
  type TestServer,
  type TlsParty,
} from "./fixtures/traffic";

jest.setTimeout(180_000);

const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
const POD_ID = "spiffe://example.org/ns/apps/sa/web";
const CLIENT_ID = "spiffe://example.org/ns/apps/sa/client";
const BACKEND_ID = "spiffe://example.org/ns/apps/sa/backend";

function party(svid: TestSvid, bundlePem: string): TlsParty {
  return { certChainPem: svid.certChainPem, keyPem: svid.keyPem, bundlePem };
}

/** Resolves with the exchange's reply, or "" when the connection failed or closed silently. */
async function tcpReplyOrNothing(port: number, message: string, tls?: TlsParty): Promise<string> {
  try {
    return await tcpExchange(port, message, tls);
  } catch {
    return "";
  }
}

describe("nginx traffic", () => {
  let ca: TestCa;
  let foreignCa: TestCa;
  let podFiles: SvidDir;
  let client: TlsParty;
  let foreignClient: TlsParty;
  let httpApp: TestServer<AppSeen>;
  let tcpApp: TestServer<string>;
  let nginx: NginxServer;
  const extra: { close(): Promise<void> }[] = [];

  // Ports reserved by startNginx: inbound HTTP, inbound TCP, then outbound routes.
  const IN_HTTP = 0;
  const IN_TCP = 1;

  let layoutOf: (prefix: string) => SidecarLayoutSpec;
  let outbound: OutboundRouteSpec[] = [];

  const render = (mode: MtlsMode) => (ctx: { prefix: string; ports: readonly number[] }) =>
    renderNginxConfig({
      mode,
      inbound: [
        {
          name: "web",
          listenPort: ctx.ports[IN_HTTP] ?? 0,
          appPort: httpApp.port,
          protocol: "http",
        },
        { name: "db", listenPort: ctx.ports[IN_TCP] ?? 0, appPort: tcpApp.port, protocol: "tcp" },
      ],
      outbound,
      layout: layoutOf(ctx.prefix),
    });

  const port = (i: number): number => nginx.ports[i] ?? 0;

  beforeAll(async () => {
    ca = await createTestCa({ trustDomain: "example.org" });
    foreignCa = await createTestCa({ trustDomain: "other.org" });
    podFiles = await writeSvidDir(ca, POD_ID);
    client = party(await ca.issueSvid({ spiffeId: CLIENT_ID }), ca.bundlePem);
    // A client of another trust domain that trusts our server (so only its own cert is wrong).
    foreignClient = party(
      await foreignCa.issueSvid({ spiffeId: "spiffe://other.org/ns/apps/sa/client" }),
      ca.bundlePem,
    );
    httpApp = await startHttpApp();
    tcpApp = await startTcpEchoApp();
    const user = nginxUserForTests();
    layoutOf = (prefix) => ({
      svidDir: podFiles.path,
      nginxPrefix: prefix,
      ...(existsSync(STREAM_MODULE) ? { streamModulePath: STREAM_MODULE } : {}),
      ...(user === undefined ? {} : { nginxUser: user }),
    });
    nginx = await startNginx({ config: render("strict"), ports: 6 });
  });

  afterAll(async () => {
    await nginx?.stop();
    for (const server of extra) await server.close();
    await httpApp?.close();
    await tcpApp?.close();
    await podFiles?.cleanup();
  });

  describe("strict", () => {
    beforeAll(async () => {
      await nginx.reload(render("strict"));
    });

    it("nginx traffic – strict HTTP: an mTLS request reaches the app with the client certificate", async () => {
      const res = await httpGet(port(IN_HTTP), "/strict", client);
      expect(res.status).toBe(200);
      const seen = JSON.parse(res.body) as AppSeen;
      expect(seen.forwardedProto).toBe("https");
      const pem = decodeURIComponent(seen.clientCert ?? "");
      expect(pem).toContain("BEGIN CERTIFICATE");
      expect(client.certChainPem).toContain(pem.trim().split("\n")[1] ?? "missing");
    });

    it("nginx traffic – strict HTTP: plaintext, no client certificate and a foreign trust domain never reach the app", async () => {
      const before = httpApp.seen.length;
      const plain = await httpGet(port(IN_HTTP), "/plain");
      expect(plain.status).toBe(400);
      const noCert = await httpGet(port(IN_HTTP), "/no-cert", { bundlePem: ca.bundlePem });
      expect(noCert.status).toBe(400);
      const foreign = await httpGet(port(IN_HTTP), "/foreign", foreignClient);
      expect(foreign.status).toBe(400);
      expect(httpApp.seen.length).toBe(before);
    });

    it("nginx traffic – strict TCP: mTLS is echoed; plaintext and a foreign certificate are refused", async () => {
      expect(await tcpExchange(port(IN_TCP), "hello", client)).toBe("echo:hello");
      const before = tcpApp.seen.length;
      expect(await tcpReplyOrNothing(port(IN_TCP), "plain")).not.toContain("echo:");
      expect(await tcpReplyOrNothing(port(IN_TCP), "foreign", foreignClient)).toBe("");
      expect(tcpApp.seen.length).toBe(before);
    });
  });

  describe("permissive", () => {
    beforeAll(async () => {
      await nginx.reload(render("permissive"));
    });

    it("nginx traffic – permissive HTTP: mTLS and plaintext both reach the app with the client address kept", async () => {
      const tls = await httpGet(port(IN_HTTP), "/mtls", client);
      expect(tls.status).toBe(200);
      const tlsSeen = JSON.parse(tls.body) as AppSeen;
      // Without PROXY protocol across the internal Unix socket nginx would report "unix:".
      expect(tlsSeen).toMatchObject({ realIp: "127.0.0.1", forwardedProto: "https" });
      expect(decodeURIComponent(tlsSeen.clientCert ?? "")).toContain("BEGIN CERTIFICATE");

      const plain = await httpGet(port(IN_HTTP), "/plain");
      expect(plain.status).toBe(200);
      const plainSeen = JSON.parse(plain.body) as AppSeen;
      expect(plainSeen).toMatchObject({ realIp: "127.0.0.1", forwardedProto: "http" });
      expect(plainSeen.clientCert).toBeUndefined();
    });

    it("nginx traffic – permissive HTTP: TLS with a foreign certificate is still refused", async () => {
      const before = httpApp.seen.length;
      const res = await httpGet(port(IN_HTTP), "/foreign", foreignClient);
      expect(res.status).toBe(400);
      expect(httpApp.seen.length).toBe(before);
    });

    it("nginx traffic – permissive TCP: mTLS and plaintext are both echoed, the client address logged", async () => {
      expect(await tcpExchange(port(IN_TCP), "secure", client)).toBe("echo:secure");
      expect(await tcpExchange(port(IN_TCP), "plain")).toBe("echo:plain");
      expect(await tcpReplyOrNothing(port(IN_TCP), "foreign", foreignClient)).toBe("");
      const log = await readFile(join(nginx.prefix, "logs", "stream-access.log"), "utf8");
      // Lines of the internal listeners carry the front's client address, not "unix:".
      const internal = log.split("\n").filter((l) => l.includes("-> unix:"));
      expect(internal.length).toBeGreaterThan(0);
      for (const line of internal) expect(line).toMatch(/^127\.0\.0\.1:\d+ /);
    });
  });

  describe("off", () => {
    beforeAll(async () => {
      await nginx.reload(render("off"));
    });

    it("nginx traffic – off: plaintext HTTP and TCP reach the app; TLS is not offered", async () => {
      const res = await httpGet(port(IN_HTTP), "/off");
      expect(res.status).toBe(200);
      expect((JSON.parse(res.body) as AppSeen).forwardedProto).toBe("http");
      expect(await tcpExchange(port(IN_TCP), "off")).toBe("echo:off");
      await expect(httpGet(port(IN_HTTP), "/tls", client)).rejects.toThrow();
    });
  });

  describe("outbound", () => {
    let backend: TestServer<string>;
    let foreignBackend: TestServer<string>;
    let tcpBackend: TestServer<string>;

    beforeAll(async () => {
      const backendSvid = await ca.issueSvid({
        spiffeId: BACKEND_ID,
        dnsNames: ["backend.apps.svc"],
      });
      backend = await startMtlsHttpsServer(party(backendSvid, ca.bundlePem));
      tcpBackend = await startMtlsEchoServer(party(backendSvid, ca.bundlePem));
      // Same name, but its certificate chains to another trust domain (which trusts us).
      const foreignSvid = await foreignCa.issueSvid({
        spiffeId: "spiffe://other.org/ns/apps/sa/backend",
        dnsNames: ["backend.apps.svc"],
      });
      foreignBackend = await startMtlsHttpsServer(party(foreignSvid, ca.bundlePem));
      extra.push(backend, tcpBackend, foreignBackend);
      const route = (
        i: number,
        dest: number,
        protocol: "http" | "tcp",
        serverName: string,
      ): OutboundRouteSpec => ({
        name: `route-${i}`,
        listenPort: port(i),
        destinationHost: "localhost",
        destinationPort: dest,
        protocol,
        serverSpiffeId: BACKEND_ID,
        serverName,
      });
      outbound = [
        route(2, backend.port, "http", "backend.apps.svc"),
        route(3, backend.port, "http", "wrong.apps.svc"),
        route(4, foreignBackend.port, "http", "backend.apps.svc"),
        route(5, tcpBackend.port, "tcp", "backend.apps.svc"),
      ];
      await nginx.reload(render("strict"));
    });

    it("nginx traffic – outbound HTTP: the sidecar originates mTLS with the pod's SVID", async () => {
      const res = await httpGet(port(2), "/out");
      expect(res).toEqual({ status: 200, body: `client=${POD_ID}` });
    });

    it("nginx traffic – outbound HTTP: a server name mismatch or a foreign trust domain fails (502)", async () => {
      const backendBefore = backend.seen.length;
      expect((await httpGet(port(3), "/wrong-name")).status).toBe(502);
      expect((await httpGet(port(4), "/foreign")).status).toBe(502);
      // nginx gave up after the handshake: no request reached either server.
      expect(backend.seen.length).toBe(backendBefore);
      expect(foreignBackend.seen).toEqual([]);
      const log = await nginx.errorLog();
      expect(log).toMatch(/upstream SSL certificate does not match "wrong\.apps\.svc"/);
      expect(log).toMatch(/upstream SSL certificate verify error/);
    });

    it("nginx traffic – outbound TCP: the sidecar originates mTLS with the pod's SVID", async () => {
      expect(await tcpExchange(port(5), "ping")).toBe(`echo:ping client=${POD_ID}`);
    });
  });
});
