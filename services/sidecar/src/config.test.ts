import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "@meshid/config";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { DEFAULT_WORKLOAD_SOCKET, loadSidecarConfig } from "./config";

describe("sidecar config", () => {
  let dir: TempDir;

  beforeAll(async () => {
    dir = await createTempDir("sidecar-config");
  });

  afterAll(async () => {
    await dir.cleanup();
  });

  it("config – file + env + pod variables, with derived defaults", async () => {
    const file = join(dir.path, "sidecar.yaml");
    await writeFile(
      file,
      [
        "proxyConfig:",
        "  address: proxy-config.meshid.svc:8443",
        "spiffeId: spiffe://example.org/ns/shop/sa/web",
        "inbound:",
        "  - { name: web, listenPort: 8443, appPort: 8080 }",
        "outbound:",
        "  - { listenPort: 15001, destinationHost: api.shop.svc, destinationPort: 443, protocol: tcp, serverSpiffeId: spiffe://example.org/ns/shop/sa/api }",
        "nginx:",
        "  prefix: /var/lib/sidecar/nginx/",
      ].join("\n"),
    );
    const config = loadSidecarConfig({
      file,
      env: {
        SPIFFE_ENDPOINT_SOCKET: "unix:///run/spire/agent.sock",
        POD_NAMESPACE: "shop",
        POD_NAME: "web-0",
        MESHID_SIDECAR_NGINX__MANAGE: "signal",
      },
    });
    expect(config.workloadSocket).toBe("/run/spire/agent.sock");
    expect(config.proxyConfig).toEqual({
      kind: "service",
      address: "proxy-config.meshid.svc:8443",
    });
    expect(config.pod).toEqual({ namespace: "shop", name: "web-0" });
    expect(config.inbound).toEqual([
      { name: "web", listenPort: 8443, appPort: 8080, protocol: "http" },
    ]);
    expect(config.outbound[0]).toMatchObject({ protocol: "tcp", destinationPort: 443 });
    expect(config.nginx).toMatchObject({
      binary: "nginx",
      prefix: "/var/lib/sidecar/nginx",
      configFile: "/var/lib/sidecar/nginx/nginx.conf",
      pidFile: "/var/lib/sidecar/nginx/nginx.pid",
      manage: "signal",
      reloadTimeoutSeconds: 15,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("config – the workload socket defaults without SPIFFE_ENDPOINT_SOCKET; file mode", () => {
    const config = loadSidecarConfig({
      env: { MESHID_SIDECAR_PROXY_CONFIG__FILE: "/etc/sidecar/nginx.conf.tmpl" },
    });
    expect(config.workloadSocket).toBe(DEFAULT_WORKLOAD_SOCKET);
    expect(config.proxyConfig).toEqual({
      kind: "file",
      file: "/etc/sidecar/nginx.conf.tmpl",
      pollIntervalSeconds: 2,
    });
  });

  it("config – every problem at once, the bad SPIFFE_ENDPOINT_SOCKET included", () => {
    let caught: unknown;
    try {
      loadSidecarConfig({
        env: {
          SPIFFE_ENDPOINT_SOCKET: "tcp://127.0.0.1:8081",
          MESHID_SIDECAR_SPIFFE_ID: "not-an-id",
          MESHID_SIDECAR_NGINX__MANAGE: "fork",
          MESHID_SIDECAR_SVID_DIR: "/run/with space",
        },
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as Error).message;
    for (const part of [
      "proxyConfig",
      "spiffeId",
      "nginx.manage",
      "svidDir",
      "SPIFFE_ENDPOINT_SOCKET",
    ]) {
      expect(message).toContain(part);
    }
  });

  it("config – address and file together, duplicate listen ports and a bad route ID are refused", () => {
    expect(() =>
      loadSidecarConfig({
        env: {
          MESHID_SIDECAR_PROXY_CONFIG__FILE: "/a",
          MESHID_SIDECAR_PROXY_CONFIG__ADDRESS: "pc:1",
          MESHID_SIDECAR_INBOUND: JSON.stringify([{ listenPort: 80, appPort: 8080 }]),
          MESHID_SIDECAR_OUTBOUND: JSON.stringify([
            { listenPort: 80, destinationHost: "x", destinationPort: 1, serverSpiffeId: "x" },
          ]),
        },
      }),
    ).toThrow(/exactly one of[\s\S]*already used by inbound[\s\S]*serverSpiffeId/);
  });
});
