import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@meshid/config";
import {
  DEFAULT_CONFIGMAP_NAME,
  DEFAULT_CONFIGMAP_NAMESPACE,
  buildBundleNotifierConfig,
  loadBundleNotifierConfig,
} from "./config";

function loadError(env: Record<string, string>, file?: string): string {
  try {
    loadBundleNotifierConfig({ env, ...(file === undefined ? {} : { file }) });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("bundle-notifier config", () => {
  it("bundle-notifier config – defaults with the admin socket and the ConfigMap target", () => {
    const config = loadBundleNotifierConfig({
      env: {
        MESHID_BUNDLE_NOTIFIER_CA__ADMIN_SOCKET_PATH: "/run/ca/admin.sock",
        MESHID_BUNDLE_NOTIFIER_TARGETS__CONFIG_MAP__ENABLED: "true",
      },
    });
    expect(config).toEqual({
      trustDomain: "example.org",
      ca: { kind: "admin_socket", adminSocketPath: "/run/ca/admin.sock" },
      caRetry: { initialDelayMs: 500, maxDelayMs: 30_000 },
      targets: {
        configMap: { namespace: DEFAULT_CONFIGMAP_NAMESPACE, name: DEFAULT_CONFIGMAP_NAME },
      },
      resyncIntervalSeconds: 60,
      ops: { listen: { host: "0.0.0.0", port: 9093 } },
      logLevel: "info",
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("bundle-notifier config – mTLS mode derives the CA's SPIFFE ID; every target combination", () => {
    const config = buildBundleNotifierConfig({
      trustDomain: "mesh.test",
      ca: { address: "ca.meshid:8443", workloadSocketPath: "/run/spire/agent.sock" },
      natsUrl: "nats://nats:4222",
      targets: {
        configMap: { enabled: true, namespace: "ops", name: "trust", kubeconfigFile: "/k/config" },
        webhooks: { enabled: true },
        file: { path: "/var/run/bundle.pem" },
      },
      resyncInterval: "5m",
    });
    expect(config.ca).toEqual({
      kind: "mtls",
      address: "ca.meshid:8443",
      serverId: "spiffe://mesh.test/meshid/ca",
      workloadSocketPath: "/run/spire/agent.sock",
    });
    expect(config.targets).toEqual({
      configMap: { namespace: "ops", name: "trust", kubeconfigFile: "/k/config" },
      webhooks: {},
      file: { path: "/var/run/bundle.pem", format: "pem" },
    });
    expect(config.natsUrl).toBe("nats://nats:4222");
    expect(config.resyncIntervalSeconds).toBe(300);
  });

  it("bundle-notifier config – a broken config names every problem at once", () => {
    const message = loadError({
      MESHID_BUNDLE_NOTIFIER_TRUST_DOMAIN: "Not A Domain",
      MESHID_BUNDLE_NOTIFIER_CA__ADDRESS: "no-port",
      MESHID_BUNDLE_NOTIFIER_TARGETS__CONFIG_MAP__NAMESPACE: "Bad_NS",
      MESHID_BUNDLE_NOTIFIER_RESYNC_INTERVAL: "soon",
      MESHID_BUNDLE_NOTIFIER_NATS_URL: "not a url",
    });
    expect(message).toMatch(/trustDomain/);
    expect(message).toMatch(/ca\.address/);
    expect(message).toMatch(/ca\.workloadSocketPath/);
    expect(message).toMatch(/targets\.configMap\.namespace/);
    expect(message).toMatch(/resyncInterval/);
    expect(message).toMatch(/natsUrl/);
    expect(message).toMatch(/enable at least one target/);
  });

  it("bundle-notifier config – no CA, both CA modes, or mTLS fields with the socket are refused", () => {
    expect(loadError({ MESHID_BUNDLE_NOTIFIER_TARGETS__FILE__PATH: "/tmp/b.pem" })).toMatch(
      /set either adminSocketPath/,
    );
    const both = loadError({
      MESHID_BUNDLE_NOTIFIER_TARGETS__FILE__PATH: "/tmp/b.pem",
      MESHID_BUNDLE_NOTIFIER_CA__ADMIN_SOCKET_PATH: "/run/admin.sock",
      MESHID_BUNDLE_NOTIFIER_CA__ADDRESS: "ca:8443",
      MESHID_BUNDLE_NOTIFIER_CA__SERVER_ID: "spiffe://other.org/ca",
    });
    expect(both).toMatch(/not both/);
    expect(both).toMatch(/ca\.serverId.*applies only with address/s);
  });

  it("bundle-notifier config – unknown keys and relative paths in the file are refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "bn-config-"));
    try {
      const file = join(dir, "notifier.yaml");
      writeFileSync(
        file,
        "ca:\n  adminSocketPath: relative/admin.sock\ntargets:\n  file:\n    path: /tmp/x\n    mode: 644\nsurprise: 1\n",
      );
      const message = loadError({}, file);
      expect(message).toMatch(/ca\.adminSocketPath/);
      expect(message).toMatch(/mode/);
      expect(message).toMatch(/surprise/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
