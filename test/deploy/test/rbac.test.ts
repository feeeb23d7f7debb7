// Each service account gets exactly the permissions its service uses (read from the services'
// Kubernetes calls): no wildcard, nothing more. Bindings point at the chart's own roles.
import { helmTemplate } from "../src/helm";
import { chartDir, renderChart, SERVICE_CHARTS, STANDALONE_SERVICES } from "../src/charts";
import { permissionsOf } from "../src/rbac";
import { workloadsOf } from "../src/manifests";

const NS = "meshid";

const EXPECTED: Record<string, readonly string[]> = {
  // k8s_psat: TokenReview of the agent's projected token, then the node's UID.
  ca: [
    "cluster authentication.k8s.io/tokenreviews create",
    "cluster core/nodes get",
    // The bundle container of the CA pod (the first bundle ConfigMap).
    `${NS} core/configmaps create`,
    `${NS} core/configmaps get meshid-bundle`,
    `${NS} core/configmaps update meshid-bundle`,
  ],
  // The kubelet authorises GET /pods (k8s workload attestor) as nodes/proxy.
  agent: ["cluster core/nodes/proxy get"],
  registrar: [
    "cluster core/events create",
    "cluster core/namespaces list",
    "cluster core/namespaces watch",
    "cluster core/nodes list",
    "cluster core/nodes watch",
    "cluster core/pods list",
    "cluster core/pods watch",
    "cluster core/services list",
    "cluster core/services watch",
    "cluster meshid.io/clusterspiffeids list",
    "cluster meshid.io/clusterspiffeids watch",
    `${NS} coordination.k8s.io/leases create`,
    `${NS} coordination.k8s.io/leases get meshid-registrar`,
    `${NS} coordination.k8s.io/leases update meshid-registrar`,
  ],
  "bundle-notifier": [
    "cluster admissionregistration.k8s.io/mutatingwebhookconfigurations get",
    "cluster admissionregistration.k8s.io/mutatingwebhookconfigurations list",
    "cluster admissionregistration.k8s.io/mutatingwebhookconfigurations update",
    "cluster admissionregistration.k8s.io/validatingwebhookconfigurations get",
    "cluster admissionregistration.k8s.io/validatingwebhookconfigurations list",
    "cluster admissionregistration.k8s.io/validatingwebhookconfigurations update",
    "cluster apiregistration.k8s.io/apiservices get",
    "cluster apiregistration.k8s.io/apiservices list",
    "cluster apiregistration.k8s.io/apiservices update",
    `${NS} core/configmaps create`,
    `${NS} core/configmaps get meshid-bundle`,
    `${NS} core/configmaps update meshid-bundle`,
  ],
  // The MeshConfig singleton is created with the defaults when missing.
  "proxy-config": [
    "cluster core/events create",
    "cluster core/pods list",
    "cluster core/pods watch",
    "cluster meshid.io/meshconfigs create",
    "cluster meshid.io/meshconfigs get",
    "cluster meshid.io/meshconfigs list",
    "cluster meshid.io/meshconfigs update",
    "cluster meshid.io/meshconfigs watch",
  ],
};

// The control plane in one process: the union of the four services' rights, nothing more.
EXPECTED["control-plane"] = [
  ...new Set(STANDALONE_SERVICES.flatMap((service) => EXPECTED[service] ?? [])),
];

describe("rbac", () => {
  test.each(SERVICE_CHARTS)(
    "rbac – $name: exactly the permissions the service uses, bound to its own account",
    async ({ name: chart, valueSets }) => {
      for (const values of valueSets) {
        const objects = await renderChart(chart, values);
        const [workload] = workloadsOf(objects);
        const account = workload!.pod.serviceAccountName!;
        expect(account).toBe(`meshid-${chart}`);
        expect(
          objects.some((o) => o.kind === "ServiceAccount" && o.metadata.name === account),
        ).toBe(true);
        expect(permissionsOf(objects, account)).toEqual([...EXPECTED[chart]!].sort());
        // Nothing is granted to another account, and no rule uses a wildcard.
        for (const role of objects.filter((o) => o.kind === "Role" || o.kind === "ClusterRole")) {
          expect(JSON.stringify(role.rules)).not.toContain("*");
        }
        for (const binding of objects.filter((o) => o.kind.endsWith("Binding"))) {
          expect(binding.subjects).toEqual([
            { kind: "ServiceAccount", name: account, namespace: "meshid" },
          ]);
        }
      }
    },
  );

  test("rbac – without webhook targets the bundle-notifier has no cluster-wide rights", async () => {
    const objects = await helmTemplate({
      chart: chartDir("bundle-notifier"),
      set: ["bundleNotifier.webhooks.enabled=false"],
    });
    expect(permissionsOf(objects, "meshid-bundle-notifier")).toEqual([
      `${NS} core/configmaps create`,
      `${NS} core/configmaps get meshid-bundle`,
      `${NS} core/configmaps update meshid-bundle`,
    ]);
  });

  test("rbac – without its bundle container the CA has only the attestation rights", async () => {
    const objects = await helmTemplate({
      chart: chartDir("ca"),
      set: ["ca.bundleSidecar.enabled=false"],
    });
    expect(permissionsOf(objects, "meshid-ca")).toEqual([
      "cluster authentication.k8s.io/tokenreviews create",
      "cluster core/nodes get",
    ]);
    const [workload] = workloadsOf(objects);
    expect(workload!.pod.containers.map((c) => c.name)).toEqual(["ca"]);
  });

  test("rbac – control-plane: the union adds nothing of its own, and drops webhook rights with the webhook targets", async () => {
    expect(EXPECTED["control-plane"]).toContain(
      "cluster authentication.k8s.io/tokenreviews create",
    );
    expect(EXPECTED["control-plane"]).toContain(`${NS} coordination.k8s.io/leases create`);
    const objects = await helmTemplate({
      chart: chartDir("control-plane"),
      set: ["controlPlane.bundleNotifier.webhooks.enabled=false"],
    });
    const rights = permissionsOf(objects, "meshid-control-plane");
    expect(rights).toEqual(
      [...EXPECTED["control-plane"]!]
        .filter((r) => !/admissionregistration|apiregistration/.test(r))
        .sort(),
    );
  });
});
