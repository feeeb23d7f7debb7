import { ConfigError } from "@meshid/config";
import { buildRegistrarConfig, loadRegistrarConfig } from "./config";

describe("registrar config", () => {
  it("config – defaults", () => {
    const config = buildRegistrarConfig({
      clusterName: "c1",
      ca: { adminSocketPath: "/run/ca/admin.sock" },
    });
    expect(config).toMatchObject({
      trustDomain: "example.org",
      clusterName: "c1",
      injectLabels: [
        { key: "meshid.io/inject", value: "true" },
        { key: "spiffe.io/spiffeid", value: "true" },
      ],
      injectAnnotations: [],
      ignoredNamespaces: ["kube-system", "kube-public", "meshid"],
      ownNamespace: "meshid",
      resyncIntervalSeconds: 60,
      leaderElection: {
        enabled: true,
        leaseName: "meshid-registrar",
        leaseNamespace: "meshid",
        leaseDurationSeconds: 15,
        renewDeadlineSeconds: 10,
        retryPeriodSeconds: 2,
      },
      batchSize: 500,
      ops: { listen: { host: "0.0.0.0", port: 9092 } },
    });
    expect(config.kubeconfigFile).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("config – environment variables, lists and every problem at once", () => {
    const config = loadRegistrarConfig({
      env: {
        MESHID_REGISTRAR_CLUSTER_NAME: "prod",
        MESHID_REGISTRAR_CA__ADMIN_SOCKET_PATH: "/run/ca/admin.sock",
        MESHID_REGISTRAR_INJECT_ANNOTATIONS: "sidecar.example/inject=yes",
        MESHID_REGISTRAR_IGNORED_NAMESPACES: "kube-system,tools",
        MESHID_REGISTRAR_OWN_NAMESPACE: "mesh",
        MESHID_REGISTRAR_LEADER_ELECTION__IDENTITY: "pod-1",
      },
    });
    expect(config.injectAnnotations).toEqual([{ key: "sidecar.example/inject", value: "yes" }]);
    expect(config.ignoredNamespaces).toEqual(["kube-system", "tools", "mesh"]);
    expect(config.leaderElection).toMatchObject({ identity: "pod-1", leaseNamespace: "mesh" });

    let error: unknown;
    try {
      loadRegistrarConfig({
        env: {
          MESHID_REGISTRAR_TRUST_DOMAIN: "Bad Domain",
          MESHID_REGISTRAR_CLUSTER_NAME: "a/b",
          MESHID_REGISTRAR_INJECT_LABELS: "novalue",
          MESHID_REGISTRAR_BATCH_SIZE: "0",
          MESHID_REGISTRAR_LEADER_ELECTION__RENEW_DEADLINE: "20s",
          MESHID_REGISTRAR_SURPRISE: "1",
        },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const field of [
      "trustDomain",
      "clusterName",
      "ca",
      "injectLabels",
      "batchSize",
      "leaderElection",
    ]) {
      expect(message).toContain(field);
    }
  });
});
