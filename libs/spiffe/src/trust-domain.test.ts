import { expectMeshidError } from "./testing/expect-error";
import { parseTrustDomain } from "./trust-domain";

describe("parseTrustDomain – accepted forms", () => {
  it.each([
    ["example.org", "example.org"],
    ["spiffe://example.org", "example.org"],
    ["SPIFFE://example.org", "example.org"],
    ["a".repeat(255), "a".repeat(255)],
    ["td-1_x.y", "td-1_x.y"],
  ])("accepts %s", (input, name) => {
    const td = parseTrustDomain(input);
    expect(td.name).toBe(name);
    expect(td.toString()).toBe(name);
    expect(td.idString()).toBe(`spiffe://${name}`);
  });

  it("compares by name", () => {
    expect(parseTrustDomain("example.org").equals(parseTrustDomain("spiffe://example.org"))).toBe(
      true,
    );
    expect(parseTrustDomain("example.org").equals(parseTrustDomain("example.com"))).toBe(false);
  });
});

describe("parseTrustDomain – rejected forms", () => {
  it.each([
    ["", "empty-trust-domain"],
    ["spiffe://", "empty-trust-domain"],
    ["Example.org", "trust-domain-chars"],
    ["exa mple", "trust-domain-chars"],
    ["a".repeat(256), "trust-domain-too-long"],
    ["example.org:80", "port"],
    ["spiffe://example.org:80", "port"],
    ["u@example.org", "userinfo"],
    ["ex%41mple.org", "percent-encoding"],
    ["spiffe://example.org/a", "path"],
    ["spiffe://example.org/", "path"],
    ["spiffe://example.org?q", "query"],
    ["spiffe://example.org#f", "fragment"],
    ["https://example.org", "scheme"],
  ])("rejects %s with rule %s", (input, rule) => {
    expectMeshidError(() => parseTrustDomain(input), { code: "spiffe.trust_domain.invalid", rule });
  });
});
