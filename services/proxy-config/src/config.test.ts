import { ConfigError } from "@meshid/config";
import { buildProxyConfigConfig, loadProxyConfigConfig } from "./config";
import { parseProxyConfigCommand } from "./main";

const files = {
  certFile: "/tls/svid.pem",
  keyFile: "/tls/svid.key",
  bundleFile: "/tls/bundle.pem",
};

describe("proxy-config config", () => {
  it("proxy-config config – defaults with static TLS files", () => {
    expect(buildProxyConfigConfig({ tls: files })).toEqual({
      trustDomain: "example.org",
      listen: { host: "0.0.0.0", port: 8445 },
      adminSocketPath: "/run/meshid/proxy-config/admin.sock",
      adminIds: [],
      tls: { kind: "files", ...files },
      meshConfig: { kind: "file", path: "/var/lib/meshid/proxy-config/meshconfig.yaml" },
      limits: { maxWatchStreams: 20_000 },
      ops: { listen: { host: "0.0.0.0", port: 9095 } },
      logLevel: "info",
    });
  });

  it("proxy-config config – Kubernetes store and the Workload API from MESHID_PROXY_CONFIG_* variables", () => {
    const config = loadProxyConfigConfig({
      env: {
        MESHID_PROXY_CONFIG_TLS__WORKLOAD_SOCKET_PATH: "/run/meshid/agent/workload.sock",
        MESHID_PROXY_CONFIG_MESH_CONFIG__SOURCE: "kubernetes",
        MESHID_PROXY_CONFIG_KUBERNETES__ENABLED: "true",
        MESHID_PROXY_CONFIG_NATS_URL: "nats://127.0.0.1:4222",
      },
    });
    expect(config).toMatchObject({
      tls: { kind: "workload_api", socketPath: "/run/meshid/agent/workload.sock" },
      meshConfig: { kind: "kubernetes", name: "meshid" },
      kubernetes: {},
      natsUrl: "nats://127.0.0.1:4222",
    });
  });

  it("proxy-config config – every problem is reported at once", () => {
    let err: unknown;
    try {
      loadProxyConfigConfig({
        env: {
          MESHID_PROXY_CONFIG_TRUST_DOMAIN: "Bad Domain",
          MESHID_PROXY_CONFIG_MESH_CONFIG__SOURCE: "kubernetes",
          MESHID_PROXY_CONFIG_TLS__CERT_FILE: "/a",
        },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(/trustDomain/);
    expect(message).toMatch(/tls\.keyFile/);
    expect(message).toMatch(/tls\.bundleFile/);
    expect(message).toMatch(/kubernetes\.enabled/);
  });

  it("proxy-config config – adminIds must be SPIFFE IDs of the trust domain", () => {
    expect(() =>
      buildProxyConfigConfig({ tls: files, adminIds: ["spiffe://other.org/admin", "nope"] }),
    ).toThrow(/must be in trust domain/);
  });

  it("proxy-config config – the command line", () => {
    expect(parseProxyConfigCommand(["--config", "/etc/pc.yaml"], {})).toEqual({
      kind: "run",
      configFile: "/etc/pc.yaml",
    });
    expect(parseProxyConfigCommand([], { MESHID_PROXY_CONFIG_CONFIG_FILE: "/f.yaml" })).toEqual({
      kind: "run",
      configFile: "/f.yaml",
    });
    expect(parseProxyConfigCommand(["--bogus"], {}).kind).toBe("usage_error");
    expect(parseProxyConfigCommand(["-h"], {})).toEqual({ kind: "help" });
  });
});
