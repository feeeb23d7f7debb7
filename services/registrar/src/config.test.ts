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

  it("config – the CA connection: admin socket, or mTLS with the Workload API", () => {
    const mtls = buildRegistrarConfig({
      clusterName: "c1",
      ca: { address: "ca.meshid:8443", workloadSocketPath: "/run/agent/workload.sock" },
    });
    expect(mtls.ca).toEqual({
      mode: "mtls",
      address: "ca.meshid:8443",
      serverId: "spiffe://example.org/meshid/ca",
      workloadSocketPath: "/run/agent/workload.sock",
    });
    expect(
      buildRegistrarConfig({ clusterName: "c1", ca: { adminSocketPath: "/run/ca/admin.sock" } }).ca,
    ).toEqual({ mode: "admin_socket", adminSocketPath: "/run/ca/admin.sock" });
    for (const [ca, problem] of [
      [{}, /either adminSocketPath/],
      [{ adminSocketPath: "/a.sock", address: "ca:1" }, /either adminSocketPath/],
      [{ address: "ca:1" }, /workloadSocketPath/],
      [{ address: "ca", workloadSocketPath: "/w.sock" }, /host:port/],
      [{ adminSocketPath: "/a.sock", serverId: "spiffe://example.org/ca" }, /serverId/],
      [
        { address: "ca:1", workloadSocketPath: "/w.sock", serverId: "spiffe://other.org/ca" },
        /trust domain/,
      ],
    ] as const) {
      expect(() => buildRegistrarConfig({ clusterName: "c1", ca })).toThrow(problem);
    }
  });
});
