import { DEFAULT_IDENTITY_TEMPLATE, parseClusterSpiffeId } from "./cluster-spiffe-id";

function csid(spec: unknown, name = "t1"): unknown {
  return {
    apiVersion: "meshid.io/v1alpha1",
    kind: "ClusterSPIFFEID",
    metadata: { name, uid: "uid-1" },
    spec,
  };
}

describe("parseClusterSpiffeId", () => {
  it("ClusterSPIFFEID – a full spec compiles", () => {
    const result = parseClusterSpiffeId(
      csid({
        spiffeIDTemplate: "spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}",
        podSelector: { matchLabels: { app: "web" } },
        namespaceSelector: { matchExpressions: [{ key: "mesh", operator: "Exists" }] },
        dnsNameTemplates: ["{{ .PodMeta.Name }}"],
        ttl: "1h0m0s",
        hint: "web",
      }),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.template).toMatchObject({
      name: "t1",
      uid: "uid-1",
      ttlSeconds: 3600,
      hint: "web",
      serviceDnsNames: false,
      podSelector: { matchLabels: { app: "web" } },
    });
    expect(result.template.dnsNames).toHaveLength(1);
  });

  it("ClusterSPIFFEID – every kind of bad resource is an error result naming the problem", () => {
    const cases: [unknown, RegExp][] = [
      [csid(undefined), /spec is missing/],
      [csid({}), /spiffeIDTemplate is required/],
      [csid({ spiffeIDTemplate: "spiffe://{{ .Nope }}" }), /unknown field/],
      [csid({ spiffeIDTemplate: "spiffe://a/b", admin: true }), /unknown spec field\(s\) "admin"/],
      [csid({ spiffeIDTemplate: "spiffe://a/b", dnsNameTemplates: "x" }), /list of strings/],
      [
        csid({ spiffeIDTemplate: "spiffe://a/b", dnsNameTemplates: ["{{ .X }}"] }),
        /dnsNameTemplates\[0\]/,
      ],
      [csid({ spiffeIDTemplate: "spiffe://a/b", ttl: "soon" }), /ttl/],
      [csid({ spiffeIDTemplate: "spiffe://a/b", ttl: "1.5s" }), /whole seconds/],
      [csid({ spiffeIDTemplate: "spiffe://a/b", hint: 5 }), /hint/],
      [csid({ spiffeIDTemplate: "spiffe://a/b", podSelector: "x" }), /podSelector/],
      [{ metadata: {} }, /metadata.name/],
      [null, /metadata.name/],
    ];
    for (const [object, message] of cases) {
      const result = parseClusterSpiffeId(object);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error).toMatch(message);
    }
  });

  it("ClusterSPIFFEID – the default reproduces NGINX Service Mesh's identity", () => {
    expect(DEFAULT_IDENTITY_TEMPLATE.spiffeId.source).toBe(
      "spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}",
    );
    expect(DEFAULT_IDENTITY_TEMPLATE.serviceDnsNames).toBe(true);
  });
});
