import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "@meshid/config";
import { createTempDir } from "@meshid/testkit";
import {
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MINT_WAIT_MS,
  buildAgentConfig,
  loadAgentConfig,
} from "./config";

const REQUIRED_ENV = {
  MESHID_AGENT_CA_ADDRESS: "ca.meshid:8443",
  MESHID_AGENT_BUNDLE_FILE: "/etc/meshid/bundle.pem",
  MESHID_AGENT_ATTESTATION__TYPE: "join_token",
  MESHID_AGENT_ATTESTATION__JOIN_TOKEN: "tok-123456",
};

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error("expected a ConfigError");
}

describe("agent config", () => {
  it("config – defaults around the required settings", () => {
    const config = loadAgentConfig({ env: REQUIRED_ENV });
    expect(config.trustDomain).toBe("example.org");
    expect(config.caAddress).toBe("ca.meshid:8443");
    expect(config.caServerId).toBe("spiffe://example.org/meshid/ca");
    expect(config.bundleFile).toBe("/etc/meshid/bundle.pem");
    expect(config.dataDir).toBe("/var/lib/meshid/agent");
    expect(config.attestation).toEqual({ type: "join_token", joinToken: "tok-123456" });
    expect(config.workloadApi).toEqual({
      socketPath: "/run/meshid/agent/workload.sock",
      mintWaitMs: DEFAULT_MINT_WAIT_MS,
    });
    expect(config.natsUrl).toBeUndefined();
    expect(config.reconcileIntervalSeconds).toBe(30);
    expect(config.svidKeyType).toBe("ec-p256");
    expect(config.maxBatchSize).toBe(DEFAULT_MAX_BATCH_SIZE);
    expect(config.attestors.unix).toEqual({ enabled: true, path: false, sha256: false });
    expect(config.attestors.k8s.enabled).toBe(false);
    expect(config.memoryRelease).toEqual({ afterMinted: 100, quietMs: 2000 });
    expect(config.procRoot).toBe("/proc");
    expect(config.ops.listen.port).toBe(9091);
    expect(config.logLevel).toBe("info");
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("config – memoryRelease from the environment; 0 turns it off; bad values named", () => {
    expect(
      loadAgentConfig({
        env: {
          ...REQUIRED_ENV,
          MESHID_AGENT_MEMORY_RELEASE__AFTER_MINTED: "0",
          MESHID_AGENT_MEMORY_RELEASE__QUIET: "250ms",
        },
      }).memoryRelease,
    ).toEqual({ afterMinted: 0, quietMs: 250 });
    const problems = problemsOf(() =>
      loadAgentConfig({
        env: {
          ...REQUIRED_ENV,
          MESHID_AGENT_MEMORY_RELEASE__AFTER_MINTED: "-1",
          MESHID_AGENT_MEMORY_RELEASE__QUIET: "soon",
        },
      }),
    );
    expect(problems.map((p) => p.split(":")[0]).sort()).toEqual([
      "memoryRelease.afterMinted",
      "memoryRelease.quiet",
    ]);
  });

  it("config – k8s_psat from YAML, env overrides the file", async () => {
    const dir = await createTempDir("agent-config-");
    try {
      const file = join(dir.path, "agent.yaml");
      await writeFile(
        file,
        [
          "trustDomain: mesh.test",
          "caAddress: 127.0.0.1:8443",
          "bundleFile: /b.json",
          "attestation:",
          "  type: k8s_psat",
          "  cluster: c1",
          "  tokenPath: /var/run/secrets/tokens/meshid-agent",
          "attestors:",
          "  k8s: { enabled: true, nodeName: node-1 }",
          "reconcileInterval: 2m",
        ].join("\n"),
      );
      const config = loadAgentConfig({ file, env: { MESHID_AGENT_LOG_LEVEL: "debug" } });
      expect(config.caServerId).toBe("spiffe://mesh.test/meshid/ca");
      expect(config.attestation).toEqual({
        type: "k8s_psat",
        cluster: "c1",
        tokenPath: "/var/run/secrets/tokens/meshid-agent",
      });
      expect(config.attestors.k8s).toMatchObject({ enabled: true, nodeName: "node-1" });
      expect(config.reconcileIntervalSeconds).toBe(120);
      expect(config.logLevel).toBe("debug");
    } finally {
      await dir.cleanup();
    }
  });

  it("config – every problem at once", () => {
    const problems = problemsOf(() =>
      loadAgentConfig({
        env: {
          MESHID_AGENT_TRUST_DOMAIN: "Bad Domain",
          MESHID_AGENT_CA_ADDRESS: "no-port",
          MESHID_AGENT_BUNDLE_FILE: "relative.pem",
          MESHID_AGENT_ATTESTATION__TYPE: "join_token",
          MESHID_AGENT_MAX_BATCH_SIZE: "501",
          MESHID_AGENT_ATTESTORS__K8S__ENABLED: "true",
          MESHID_AGENT_CA_SERVER_ID: "not-a-spiffe-id",
        },
      }),
    );
    const paths = problems.map((p) => p.split(":")[0]);
    expect(paths).toEqual(
      expect.arrayContaining([
        "trustDomain",
        "caAddress",
        "bundleFile",
        "attestation.joinToken",
        "maxBatchSize",
        "attestors.k8s.nodeName",
        "caServerId",
      ]),
    );
  });

  it("config – required settings missing, unknown keys and foreign attestation fields rejected", async () => {
    const dir = await createTempDir("agent-config-");
    try {
      const file = join(dir.path, "agent.yaml");
      await writeFile(
        file,
        "nope: 1\nattestation: { type: join_token, joinToken: t, cluster: c }\n",
      );
      const problems = problemsOf(() => loadAgentConfig({ file, env: {} }));
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^caAddress: /),
          expect.stringMatching(/^bundleFile: /),
          "nope: unknown key",
          'attestation.cluster: does not apply to attestation type "join_token"',
        ]),
      );
    } finally {
      await dir.cleanup();
    }
  });

  it("config – caServerId must be in the trust domain", () => {
    expect(() =>
      buildAgentConfig({
        caAddress: "localhost:1",
        bundleFile: "/b.pem",
        attestation: { type: "join_token", joinToken: "t" },
        caServerId: "spiffe://other.test/meshid/ca",
      }),
    ).toThrow(/trust domain/);
  });
});
