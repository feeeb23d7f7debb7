import { compileTemplate, type TemplateContext } from "./template";

const ctx: TemplateContext = {
  trustDomain: "example.org",
  clusterName: "c1",
  pod: {
    name: "web-1",
    namespace: "shop",
    uid: "u-1",
    labels: { app: "web", "app.kubernetes.io/name": "storefront" },
    annotations: { team: "blue" },
    serviceAccountName: "web-sa",
    nodeName: "node-a",
  },
  node: { name: "node-a", uid: "n-1", labels: { zone: "z1" } },
};

function render(source: string): string {
  const compiled = compileTemplate(source);
  if (!compiled.ok) throw new Error(compiled.error);
  const result = compiled.template.render(ctx);
  if (!result.ok) throw new Error(result.error);
  return result.value;
}

describe("compileTemplate", () => {
  it("template – renders every documented field", () => {
    expect(
      render(
        "spiffe://{{ .TrustDomain }}/{{.ClusterName}}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}",
      ),
    ).toBe("spiffe://example.org/c1/ns/shop/sa/web-sa");
    expect(render("{{ .PodMeta.Name }}.{{ .PodMeta.UID }}.{{ .PodSpec.NodeName }}")).toBe(
      "web-1.u-1.node-a",
    );
    expect(render("{{ .NodeMeta.Name }}/{{ .NodeMeta.UID }}/{{ .NodeMeta.Labels.zone }}")).toBe(
      "node-a/n-1/z1",
    );
    expect(render("{{ .PodMeta.Labels.app }}-{{ .PodMeta.Annotations.team }}")).toBe("web-blue");
    expect(render('{{ index .PodMeta.Labels "app.kubernetes.io/name" }}')).toBe("storefront");
    expect(render("plain text")).toBe("plain text");
  });

  it("template – unknown fields and syntax errors fail at compile time", () => {
    for (const [source, message] of [
      ["{{ .PodMeta.Nope }}", /unknown field "\{\{ \.PodMeta\.Nope \}\}"/],
      ["{{ .Secret }}", /unknown field/],
      ["{{ .PodMeta.Labels }}", /unknown field/],
      ['{{ index .PodSpec.Foo "x" }}', /unknown field/],
      ["spiffe://{{ .TrustDomain", /unclosed/],
      ["a }} b", /unmatched/],
      ["x".repeat(3000), /longer than/],
    ] as const) {
      const result = compileTemplate(source);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error).toMatch(message);
    }
  });

  it("template – a missing label or annotation is a render error", () => {
    const compiled = compileTemplate("{{ .PodMeta.Labels.tier }}");
    expect(compiled.ok).toBe(true);
    if (!compiled.ok) return;
    expect(compiled.template.render(ctx)).toEqual({
      ok: false,
      error: ".PodMeta.Labels[tier] has no value",
    });
  });
});
