// Every rendering (mode × protocol, inbound and outbound) passes a real `nginx -t` (Debian
// nginx 1.22, unprivileged prefix, dynamic stream module loaded as the sidecar would).
import { existsSync } from "node:fs";
import { createTestCa, startNginx, type NginxServer } from "@meshid/testkit";
import { MTLS_MODES } from "../src/domain/mesh-config";
import { renderNginxConfig } from "../src/domain/nginx-config";
import type { AppProtocol, SidecarLayoutSpec } from "../src/domain/sidecar-spec";
import { validateSidecarSpec } from "../src/domain/sidecar-spec";
import { nginxUserForTests, writeSvidDir, type SvidDir } from "./fixtures/sidecar-files";

jest.setTimeout(120_000);

/** Debian's dynamic stream module (package libnginx-mod-stream). */
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

describe("nginx config check", () => {
  let nginx: NginxServer;
  let svid: SvidDir;
  let layout: SidecarLayoutSpec;

  beforeAll(async () => {
    const ca = await createTestCa();
    svid = await writeSvidDir(ca, "spiffe://example.org/ns/apps/sa/web");
    nginx = await startNginx({
      config: ({ main, http }) => `${main}\nevents {}\nhttp {\n${http}\n}\n`,
    });
    const user = nginxUserForTests();
    layout = {
      svidDir: svid.path,
      nginxPrefix: nginx.prefix,
      ...(existsSync(STREAM_MODULE) ? { streamModulePath: STREAM_MODULE } : {}),
      ...(user === undefined ? {} : { nginxUser: user }),
    };
  });

  afterAll(async () => {
    await nginx?.stop();
    await svid?.cleanup();
  });

  const protocols: AppProtocol[] = ["http", "tcp"];
  for (const mode of MTLS_MODES) {
    for (const protocol of protocols) {
      it(`nginx config check – inbound ${protocol} in mode ${mode} passes nginx -t`, async () => {
        const spec = {
          inbound: [{ name: "web", listenPort: 18443, appPort: 8080, protocol }],
          outbound: [],
          layout,
        };
        validateSidecarSpec(spec);
        const result = await nginx.testConfig(renderNginxConfig({ mode, ...spec }));
        expect(result.ok).toBe(true);
        expect(result.output).toMatch(/test is successful/);
      });
    }
  }

  for (const protocol of protocols) {
    it(`nginx config check – outbound ${protocol} routes (mesh mTLS and plaintext) pass nginx -t`, async () => {
      const spec = {
        inbound: [],
        outbound: [
          {
            name: "backend",
            listenPort: 15001,
            destinationHost: "localhost",
            destinationPort: 9443,
            protocol,
            serverSpiffeId: "spiffe://example.org/ns/apps/sa/backend",
            serverName: "backend.apps.svc",
          },
          {
            name: "external",
            listenPort: 15002,
            destinationHost: "127.0.0.1",
            destinationPort: 80,
            protocol,
          },
        ],
        layout,
      };
      validateSidecarSpec(spec);
      const result = await nginx.testConfig(renderNginxConfig({ mode: "strict", ...spec }));
      expect(result.ok).toBe(true);
      expect(result.output).toMatch(/test is successful/);
    });
  }

  it("nginx config check – a pod with every kind of port at once passes nginx -t in every mode", async () => {
    for (const mode of MTLS_MODES) {
      const rendered = renderNginxConfig({
        mode,
        inbound: [
          { name: "http", listenPort: 18443, appPort: 8080, protocol: "http" },
          { name: "db", listenPort: 15432, appPort: 5432, protocol: "tcp" },
        ],
        outbound: [
          {
            name: "api",
            listenPort: 15001,
            destinationHost: "localhost",
            destinationPort: 9443,
            protocol: "http",
            serverSpiffeId: "spiffe://example.org/api",
          },
          {
            name: "cache",
            listenPort: 15002,
            destinationHost: "localhost",
            destinationPort: 6379,
            protocol: "tcp",
            serverSpiffeId: "spiffe://example.org/cache",
          },
        ],
        layout,
      });
      const result = await nginx.testConfig(rendered);
      expect({ mode, ok: result.ok, output: result.ok ? "" : result.output }).toEqual({
        mode,
        ok: true,
        output: "",
      });
    }
  });

  it("nginx config check – the check is real: a stream rendering without its module is refused", async () => {
    const { streamModulePath: _dropped, ...withoutModule } = layout;
    const rendered = renderNginxConfig({
      mode: "permissive",
      inbound: [{ name: "web", listenPort: 18443, appPort: 8080, protocol: "http" }],
      outbound: [],
      layout: withoutModule,
    });
    const result = await nginx.testConfig(rendered);
    expect(result.ok).toBe(existsSync(STREAM_MODULE) ? false : true);
  });
});
