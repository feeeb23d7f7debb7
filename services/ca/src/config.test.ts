import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "@meshid/config";
import { createTempDir } from "@meshid/testkit";
import {
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_MESSAGE_BYTES,
  buildCaConfig,
  loadCaConfig,
} from "./config";

describe("ca config", () => {
  it("config – defaults", () => {
    const { config, warnings } = loadCaConfig({ env: {} });
    expect(config.trustDomain).toBe("example.org");
    expect(config.listen).toEqual({ host: "0.0.0.0", port: 8443 });
    expect(config.dataDir).toBe("/var/lib/meshid/ca");
    expect(config.adminSocketPath).toBe("/var/lib/meshid/ca/admin/admin.sock");
    expect(config.datastore).toEqual({
      type: "sqlite",
      path: "/var/lib/meshid/ca/datastore.sqlite3",
    });
    expect(config.keyManager).toBe("disk");
    expect(config.caTtlSeconds).toBe(720 * 3600);
    expect(config.svidTtlSeconds).toBe(3600);
    expect(config.agentSvidTtlSeconds).toBe(3600);
    expect(config.caKeyType).toBe("ec-p256");
    expect(config.adminIds).toEqual([]);
    expect(config.psatClusters).toEqual([]);
    expect(config.limits.maxBatchSize).toBe(DEFAULT_MAX_BATCH_SIZE);
    expect(config.limits.maxMessageBytes).toBe(DEFAULT_MAX_MESSAGE_BYTES);
    expect(config.natsUrl).toBeUndefined();
    expect(config.ops.listen.port).toBe(9090);
    expect(config.logLevel).toBe("info");
    expect(Object.isFrozen(config)).toBe(true);
    expect(warnings.some((w) => w.includes("natsUrl"))).toBe(true);
  });

  it("config – env overrides and derived paths", () => {
    const { config } = loadCaConfig({
      env: {
        MESHID_CA_TRUST_DOMAIN: "mesh.test",
        MESHID_CA_LISTEN: "127.0.0.1:0",
        MESHID_CA_DATA_DIR: "/tmp/ca-data",
        MESHID_CA_KEY_MANAGER: "memory",
        MESHID_CA_SVID_TTL: "30m",
        MESHID_CA_CA_TTL: "48h",
        MESHID_CA_ADMIN_IDS: "spiffe://mesh.test/meshctl,spiffe://mesh.test/registrar",
        MESHID_CA_LIMITS__MAX_BATCH_SIZE: "50",
        MESHID_CA_NATS_URL: "nats://127.0.0.1:4222",
        MESHID_CA_PSAT_CLUSTERS: JSON.stringify([
          { name: "c1", allowedServiceAccounts: ["meshid:agent"] },
        ]),
      },
    });
    expect(config.trustDomain).toBe("mesh.test");
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 0 });
    expect(config.adminSocketPath).toBe("/tmp/ca-data/admin/admin.sock");
    expect(config.datastore.path).toBe("/tmp/ca-data/datastore.sqlite3");
    expect(config.keyManager).toBe("memory");
    expect(config.svidTtlSeconds).toBe(1800);
    expect(config.caTtlSeconds).toBe(48 * 3600);
    expect(config.adminIds).toHaveLength(2);
    expect(config.limits.maxBatchSize).toBe(50);
    expect(config.natsUrl).toBe("nats://127.0.0.1:4222");
    expect(config.psatClusters).toEqual([
      { name: "c1", audience: "meshid-ca", allowedServiceAccounts: ["meshid:agent"] },
    ]);
  });

  it("config – warns when svidTtl exceeds a sixth of caTtl", () => {
    const { warnings } = buildCaConfig({ caTtl: "24h", svidTtl: "5h" });
    expect(warnings.some((w) => w.includes("sixth"))).toBe(true);
  });

  it("config – reports every problem at once", () => {
    let error: unknown;
    try {
      loadCaConfig({
        env: {
          MESHID_CA_CA_TTL: "1h",
          MESHID_CA_LISTEN: "nope",
          MESHID_CA_KEY_MANAGER: "hsm",
          MESHID_CA_DATA_DIR: "relative/dir",
          MESHID_CA_BOGUS: "1",
          MESHID_CA_DATASTORE__TYPE: "postgres",
          MESHID_CA_ADMIN_IDS: "not-a-spiffe-id",
        },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "caTtl",
        "listen",
        "keyManager",
        "dataDir",
        "bogus",
        "datastore.type",
        "adminIds[0]",
      ]),
    );
  });

  it("config – cross-field checks: postgres, bad trust domain, foreign admin IDs, duplicate clusters", () => {
    let error: unknown;
    try {
      loadCaConfig({
        env: {
          MESHID_CA_TRUST_DOMAIN: "Bad Domain!",
          MESHID_CA_DATASTORE__TYPE: "postgres",
          MESHID_CA_ADMIN_IDS: "not-a-spiffe-id",
          MESHID_CA_PSAT_CLUSTERS: JSON.stringify([
            { name: "c", allowedServiceAccounts: ["a:b"] },
            { name: "c", allowedServiceAccounts: ["a:b"] },
          ]),
        },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    const paths = problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "trustDomain",
        "datastore.type",
        "adminIds[0]",
        "psatClusters[1].name",
      ]),
    );
    expect(problems.find((p) => p.path === "datastore.type")?.message).toMatch(/not supported yet/);
  });

  it("config – YAML file, env wins over the file", async () => {
    const dir = await createTempDir("meshid-ca-config-");
    try {
      const file = join(dir.path, "ca.yaml");
      await writeFile(
        file,
        [
          "trustDomain: mesh.test",
          "dataDir: /srv/ca",
          "adminSocketPath: /run/meshid-ca/admin.sock",
          "svidTtl: 2h",
          "limits:",
          "  signRatePerAgent:",
          "    perSecond: 10",
          "psatClusters:",
          "  - name: prod",
          "    audience: ca",
          "    allowedServiceAccounts: [meshid:agent]",
          "    kubeconfigFile: /etc/kube/prod.yaml",
        ].join("\n"),
      );
      const { config } = loadCaConfig({ file, env: { MESHID_CA_SVID_TTL: "90m" } });
      expect(config.trustDomain).toBe("mesh.test");
      expect(config.adminSocketPath).toBe("/run/meshid-ca/admin.sock");
      expect(config.datastore.path).toBe("/srv/ca/datastore.sqlite3");
      expect(config.svidTtlSeconds).toBe(5400);
      expect(config.limits.signRatePerAgent).toEqual({ perSecond: 10, burst: 1000 });
      expect(config.psatClusters[0]).toEqual({
        name: "prod",
        audience: "ca",
        allowedServiceAccounts: ["meshid:agent"],
        kubeconfigFile: "/etc/kube/prod.yaml",
      });
    } finally {
      await dir.cleanup();
    }
  });

  it("config – svidTtl and agentSvidTtl may not exceed caTtl", () => {
    expect(() => buildCaConfig({ caTtl: "24h", svidTtl: "25h", agentSvidTtl: "30h" })).toThrow(
      /must not exceed caTtl/,
    );
  });

  it("config – admin IDs must be in the trust domain", () => {
    expect(() => buildCaConfig({ adminIds: ["spiffe://other.org/x"] })).toThrow(/trust domain/);
  });
});
