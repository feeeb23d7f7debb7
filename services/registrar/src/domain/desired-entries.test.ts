import {
  DEFAULT_IDENTITY_TEMPLATE,
  parseClusterSpiffeId,
  type IdentityTemplate,
} from "./cluster-spiffe-id";
import { agentIdForNode, isMeshedPod, renderPodEntries, templatesToApply } from "./desired-entries";
import type { PodInfo, ServiceInfo } from "./types";

const pod: PodInfo = {
  uid: "p-1",
  name: "web-1",
  namespace: "shop",
  labels: { app: "web", "meshid.io/inject": "true" },
  annotations: {},
  serviceAccountName: "web",
  nodeName: "node-a",
  terminated: false,
};
const node = { name: "node-a", uid: "n-1", labels: {} };
const services: ServiceInfo[] = [
  { name: "web", namespace: "shop", selector: { app: "web" } },
  { name: "all", namespace: "shop", selector: {} },
  { name: "db", namespace: "shop", selector: { app: "db" } },
  { name: "web", namespace: "other", selector: { app: "web" } },
];
const base = {
  trustDomain: "example.org",
  clusterName: "c1",
  pod,
  node,
  namespace: { name: "shop", labels: { mesh: "on" } },
  services,
  templates: [DEFAULT_IDENTITY_TEMPLATE],
};

function template(spec: Record<string, unknown>, name = "t"): IdentityTemplate {
  const r = parseClusterSpiffeId({ metadata: { name, uid: `uid-${name}` }, spec });
  if (!r.ok) throw new Error(r.error);
  return r.template;
}

describe("renderPodEntries", () => {
  it("desired entries – the default: NSM ID, node agent parent, pod, SA and Service DNS names", () => {
    expect(renderPodEntries(base)).toEqual({
      entries: [
        {
          spiffeId: "spiffe://example.org/ns/shop/sa/web",
          parentId: "spiffe://example.org/meshid/agent/k8s_psat/c1/n-1",
          podUid: "p-1",
          dnsNames: ["web-1", "web.shop.svc"],
          ttlSeconds: 0,
          hint: "",
          podName: "web-1",
          namespace: "shop",
        },
      ],
      failures: [],
    });
    expect(agentIdForNode("example.org", "c1", "n-1")).toBe(
      "spiffe://example.org/meshid/agent/k8s_psat/c1/n-1",
    );
  });

  it("desired entries – unscheduled pods and unknown nodes wait", () => {
    expect(renderPodEntries({ ...base, pod: { ...pod, nodeName: "" } }).waitingFor).toBe(
      "scheduling",
    );
    expect(renderPodEntries({ ...base, node: undefined }).waitingFor).toBe("node");
  });

  it("desired entries – selectors pick templates; equal IDs collapse; failures are per template", () => {
    const templates = [
      template(
        {
          spiffeIDTemplate: "spiffe://example.org/a/{{ .PodMeta.Name }}",
          podSelector: { matchLabels: { app: "web" } },
        },
        "a",
      ),
      template({ spiffeIDTemplate: "spiffe://example.org/a/{{ .PodMeta.Name }}" }, "a2"),
      template(
        {
          spiffeIDTemplate: "spiffe://example.org/db",
          podSelector: { matchLabels: { app: "db" } },
        },
        "db",
      ),
      template(
        {
          spiffeIDTemplate: "spiffe://example.org/m",
          namespaceSelector: { matchLabels: { mesh: "off" } },
        },
        "ns",
      ),
      template({ spiffeIDTemplate: "spiffe://example.org/t/{{ .PodMeta.Labels.tier }}" }, "tier"),
      template({ spiffeIDTemplate: "spiffe://other.org/x" }, "foreign"),
      template({ spiffeIDTemplate: "spiffe://example.org/meshid/agent/x" }, "agent"),
      template(
        {
          spiffeIDTemplate: "spiffe://example.org/ok",
          dnsNameTemplates: ["UPPER.{{ .PodMeta.Name }}"],
        },
        "dns",
      ),
      template(
        {
          spiffeIDTemplate: "spiffe://example.org/ok2",
          ttl: "10m",
          hint: "h",
          dnsNameTemplates: ["{{ .PodMeta.Name }}.x", "{{ .PodMeta.Name }}.x"],
        },
        "ok2",
      ),
    ];
    const result = renderPodEntries({ ...base, templates });
    expect(result.entries.map((e) => [e.spiffeId, e.dnsNames, e.ttlSeconds, e.hint])).toEqual([
      ["spiffe://example.org/a/web-1", [], 0, ""],
      ["spiffe://example.org/ok2", ["web-1.x"], 600, "h"],
    ]);
    expect(result.failures.map((f) => [f.template, f.error])).toEqual([
      ["tier", "spiffeIDTemplate: .PodMeta.Labels[tier] has no value"],
      [
        "foreign",
        'spiffeIDTemplate rendered "spiffe://other.org/x", outside trust domain "example.org"',
      ],
      [
        "agent",
        'spiffeIDTemplate rendered "spiffe://example.org/meshid/agent/x", which no workload may use',
      ],
      ["dns", 'dnsNameTemplates[0] rendered "UPPER.web-1", not a lower-case DNS name'],
    ]);
  });

  it("desired entries – the default applies only while no ClusterSPIFFEID exists", () => {
    const t = template({ spiffeIDTemplate: "spiffe://example.org/x" });
    expect(templatesToApply([], 0)).toEqual([DEFAULT_IDENTITY_TEMPLATE]);
    expect(templatesToApply([], 1)).toEqual([]);
    expect(templatesToApply([t], 0)).toEqual([t]);
  });
});

describe("isMeshedPod", () => {
  const selection = {
    injectLabels: [{ key: "meshid.io/inject", value: "true" }],
    injectAnnotations: [{ key: "mesh/inject", value: "yes" }],
    ignoredNamespaces: ["kube-system", "meshid"],
  };
  it("pod selection – labels or annotations mesh a pod; ignored namespaces never", () => {
    expect(isMeshedPod(pod, selection)).toBe(true);
    expect(isMeshedPod({ ...pod, labels: {} }, selection)).toBe(false);
    expect(isMeshedPod({ ...pod, labels: { "meshid.io/inject": "false" } }, selection)).toBe(false);
    expect(
      isMeshedPod({ ...pod, labels: {}, annotations: { "mesh/inject": "yes" } }, selection),
    ).toBe(true);
    expect(isMeshedPod({ ...pod, namespace: "meshid" }, selection)).toBe(false);
  });
});
