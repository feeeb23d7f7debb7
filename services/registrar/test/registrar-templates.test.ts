// ClusterSPIFFEID templates: added, changed and removed resources re-render the entries; a
// broken one is reported (Kubernetes Event, log, metric) and skipped while the others work.
import {
  CLUSTER_SPIFFE_ID_PLURAL,
  DEFAULT_SPIFFE_ID_TEMPLATE,
} from "../src/domain/cluster-spiffe-id";
import { TEMPLATE_RENDER_FAILED_REASON } from "../src/adapters/kube-template-reporter";
import {
  startRegistrarWorld,
  waitFor,
  type RegistrarWorld,
  type SeenEntry,
} from "./registrar-harness";

jest.setTimeout(180_000);

let world: RegistrarWorld;

beforeAll(async () => {
  world = await startRegistrarWorld();
}, 120_000);
afterAll(async () => {
  await world?.stop();
});

const GROUP = { group: "meshid.io", version: "v1alpha1", plural: CLUSTER_SPIFFE_ID_PLURAL };

async function applyTemplate(name: string, spec: Record<string, unknown>): Promise<void> {
  const existing = world.kube.get<{ metadata: { resourceVersion: string } }>({
    kind: "ClusterSPIFFEID",
    name,
  });
  const body = {
    apiVersion: "meshid.io/v1alpha1",
    kind: "ClusterSPIFFEID",
    metadata: {
      name,
      ...(existing === undefined ? {} : { resourceVersion: existing.metadata.resourceVersion }),
    },
    spec,
  };
  if (existing === undefined) await world.custom.createClusterCustomObject({ ...GROUP, body });
  else await world.custom.replaceClusterCustomObject({ ...GROUP, name, body });
}

async function entriesMatching(
  what: string,
  check: (entries: SeenEntry[]) => boolean,
): Promise<SeenEntry[]> {
  return waitFor(what, async () => {
    const e = await world.entries();
    return check(e) ? e : undefined;
  });
}

function templateEvents(name: string): { reason?: string; message?: string }[] {
  return world.kube
    .events()
    .filter(
      (e) =>
        (e as { involvedObject?: { kind?: string; name?: string } }).involvedObject?.name === name,
    ) as { reason?: string; message?: string }[];
}

describe("registrar – ClusterSPIFFEID templates", () => {
  it("registrar – templates added, changed, broken and removed re-render the entries", async () => {
    world.addNode("node-1");
    const { registrar, log } = await world.startRegistrar();
    await waitFor("ready", () => registrar.ready());
    const web = await world.createPod({
      namespace: "shop",
      name: "web-1",
      node: "node-1",
      serviceAccount: "web",
      labels: { app: "web", tier: "front", "meshid.io/inject": "true" },
    });
    const db = await world.createPod({
      namespace: "shop",
      name: "db-1",
      node: "node-1",
      serviceAccount: "db",
      labels: { app: "db", "meshid.io/inject": "true" },
    });
    const webUid = web.metadata?.uid ?? "";
    const dbUid = db.metadata?.uid ?? "";
    await entriesMatching("default entries", (e) => e.length === 2);

    // A template for every pod by app label, with TTL, hint and DNS templates: it replaces
    // the default.
    await applyTemplate("by-app", {
      spiffeIDTemplate:
        "spiffe://{{ .TrustDomain }}/app/{{ .PodMeta.Labels.app }}/ns/{{ .PodMeta.Namespace }}",
      dnsNameTemplates: ["{{ .PodMeta.Labels.app }}.{{ .PodMeta.Namespace }}.example"],
      ttl: "30m",
      hint: "by-app",
    });
    let entries = await entriesMatching(
      "by-app entries",
      (e) => e.length === 2 && e.every((x) => x.spiffeId.includes("/app/")),
    );
    expect(entries.map((e) => [e.spiffeId, e.dnsNames, e.ttlSeconds, e.hint])).toEqual([
      ["spiffe://example.org/app/db/ns/shop", ["db.shop.example"], 1800, "by-app"],
      ["spiffe://example.org/app/web/ns/shop", ["web.shop.example"], 1800, "by-app"],
    ]);

    // A second template limited by podSelector adds an entry for the front tier only.
    await applyTemplate("front", {
      spiffeIDTemplate: "spiffe://{{ .TrustDomain }}/front/{{ .PodMeta.Name }}",
      podSelector: { matchLabels: { tier: "front" } },
    });
    entries = await entriesMatching("front entry", (e) => e.length === 3);
    expect(
      entries.find((e) => e.spiffeId === "spiffe://example.org/front/web-1")?.selectors,
    ).toEqual([`k8s:pod-uid:${webUid}`]);

    // Changing a template re-renders in place (same pod, new ID) …
    await applyTemplate("front", {
      spiffeIDTemplate: "spiffe://{{ .TrustDomain }}/edge/{{ .PodMeta.Name }}",
      podSelector: { matchLabels: { tier: "front" } },
    });
    entries = await entriesMatching(
      "edge entry",
      (e) => e.some((x) => x.spiffeId === "spiffe://example.org/edge/web-1") && e.length === 3,
    );

    // … a template naming an unknown field is reported and skipped; the others still apply.
    await applyTemplate("broken", {
      spiffeIDTemplate: "spiffe://{{ .TrustDomain }}/x/{{ .PodMeta.Nope }}",
    });
    await waitFor("TemplateRenderFailed Event on broken", () =>
      templateEvents("broken").some(
        (e) =>
          e.reason === TEMPLATE_RENDER_FAILED_REASON &&
          e.message?.includes(".PodMeta.Nope") === true,
      ),
    );
    // A label only one pod has fails for the other pod only.
    await applyTemplate("needs-tier", {
      spiffeIDTemplate: "spiffe://{{ .TrustDomain }}/tier/{{ .PodMeta.Labels.tier }}",
    });
    entries = await entriesMatching("tier entry", (e) => e.length === 4);
    expect(entries.filter((e) => e.spiffeId === "spiffe://example.org/tier/front")).toHaveLength(1);
    await waitFor("per-pod render failure Event", () =>
      templateEvents("needs-tier").some((e) => e.message?.includes("shop/db-1") === true),
    );
    // Unknown spec fields are refused too.
    await applyTemplate("unknown-field", {
      spiffeIDTemplate: "spiffe://{{ .TrustDomain }}/u",
      federatesWith: ["other.org"],
    });
    await waitFor("Event for unknown spec field", () =>
      templateEvents("unknown-field").some((e) => e.message?.includes("federatesWith") === true),
    );
    expect(await world.entries()).toHaveLength(4);
    expect(log.text()).toContain("ClusterSPIFFEID template failed");

    // Removing every template brings back the default.
    for (const name of ["by-app", "front", "broken", "needs-tier", "unknown-field"]) {
      await world.custom.deleteClusterCustomObject({ ...GROUP, name });
    }
    entries = await entriesMatching(
      "default entries again",
      (e) => e.length === 2 && e.every((x) => x.spiffeId.includes("/ns/shop/sa/")),
    );
    expect(entries.map((e) => [e.spiffeId, e.selectors])).toEqual([
      ["spiffe://example.org/ns/shop/sa/db", [`k8s:pod-uid:${dbUid}`]],
      ["spiffe://example.org/ns/shop/sa/web", [`k8s:pod-uid:${webUid}`]],
    ]);
    expect(DEFAULT_SPIFFE_ID_TEMPLATE).toContain("/ns/");
    expect(registrar.status().reconciler.failures).toBe(0);
  });
});
