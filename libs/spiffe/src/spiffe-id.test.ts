import { isMeshidError } from "@meshid/errors";
import { SpiffeId, parseSpiffeId, tryParseSpiffeId } from "./spiffe-id";
import { expectMeshidError } from "./testing/expect-error";
import { parseTrustDomain } from "./trust-domain";

const td255 = "a".repeat(255);
const td256 = "a".repeat(256);
/** Builds a valid ID of exactly `bytes` bytes in trust domain example.org. */
function idOfLength(bytes: number): string {
  const prefix = "spiffe://example.org/";
  return prefix + "x".repeat(bytes - prefix.length);
}

const valid: Array<[string, string]> = [
  ["spiffe://example.org", "spiffe://example.org"],
  ["spiffe://example.org/workload", "spiffe://example.org/workload"],
  ["spiffe://example.org/ns/default/sa/web", "spiffe://example.org/ns/default/sa/web"],
  ["SPIFFE://example.org/a", "spiffe://example.org/a"],
  ["SpIfFe://example.org/a", "spiffe://example.org/a"],
  ["spiffe://example.org/UPPER/Case", "spiffe://example.org/UPPER/Case"],
  ["spiffe://my-td_1.example.org/a.b-c_d", "spiffe://my-td_1.example.org/a.b-c_d"],
  ["spiffe://example.org/...", "spiffe://example.org/..."],
  ["spiffe://example.org/.hidden", "spiffe://example.org/.hidden"],
  ["spiffe://1.2.3.4/a", "spiffe://1.2.3.4/a"],
  [`spiffe://${td255}/a`, `spiffe://${td255}/a`],
  [idOfLength(2048), idOfLength(2048)],
];

const invalid: Array<[string, string]> = [
  ["", "empty"],
  [idOfLength(2049), "too-long"],
  ["http://example.org/a", "scheme"],
  ["example.org/a", "scheme"],
  ["spiffe:/example.org/a", "scheme"],
  ["spiffe://", "empty-trust-domain"],
  ["spiffe:///a", "empty-trust-domain"],
  ["spiffe://Example.org/a", "trust-domain-chars"],
  ["spiffe://EXAMPLE.ORG", "trust-domain-chars"],
  ["spiffe://exa mple.org/a", "trust-domain-chars"],
  ["spiffe://exämple.org/a", "trust-domain-chars"],
  [`spiffe://${td256}/a`, "trust-domain-too-long"],
  ["spiffe://example.org:8080/a", "port"],
  ["spiffe://example.org:/a", "port"],
  ["spiffe://user@example.org/a", "userinfo"],
  ["spiffe://user:pw@example.org/a", "userinfo"],
  ["spiffe://example.org/a?x=1", "query"],
  ["spiffe://example.org?x", "query"],
  ["spiffe://example.org/a#frag", "fragment"],
  ["spiffe://example.org#", "fragment"],
  ["spiffe://example.org//a", "empty-segment"],
  ["spiffe://example.org/a//b", "empty-segment"],
  ["spiffe://example.org/.", "dot-segment"],
  ["spiffe://example.org/a/./b", "dot-segment"],
  ["spiffe://example.org/..", "dot-segment"],
  ["spiffe://example.org/a/../b", "dot-segment"],
  ["spiffe://example.org/", "trailing-slash"],
  ["spiffe://example.org/a/", "trailing-slash"],
  ["spiffe://example.org/a%20b", "percent-encoding"],
  ["spiffe://example.org/%2e", "percent-encoding"],
  ["spiffe://ex%41mple.org/a", "percent-encoding"],
  ["spiffe://example.org/a b", "path-chars"],
  ["spiffe://example.org/a*b", "path-chars"],
  ["spiffe://example.org/ü", "path-chars"],
];

describe("parseSpiffeId – valid IDs", () => {
  it.each(valid)("accepts %s", (input, canonical) => {
    const id = parseSpiffeId(input);
    expect(id.toString()).toBe(canonical);
    expect(tryParseSpiffeId(input)).toEqual({ ok: true, id });
  });
});

describe("parseSpiffeId – invalid IDs", () => {
  it.each(invalid)("rejects %s with rule %s", (input, rule) => {
    let caught: unknown;
    try {
      parseSpiffeId(input);
    } catch (error) {
      caught = error;
    }
    expect(isMeshidError(caught, "spiffe.id.invalid")).toBe(true);
    if (!isMeshidError(caught)) throw new Error("unreachable");
    expect(caught.kind).toBe("invalid_argument");
    expect(caught.details.rule).toBe(rule);
    expect(caught.message).toContain(`(${rule})`);
    expect(caught.message).toMatch(/^invalid SPIFFE ID "/);
    const result = tryParseSpiffeId(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.details.rule).toBe(rule);
  });

  it("names the rule in words in the message", () => {
    expect(() => parseSpiffeId("spiffe://example.org/a/./b")).toThrow(
      'invalid SPIFFE ID "spiffe://example.org/a/./b": path segment "." is not allowed (dot-segment)',
    );
  });

  it("shortens very long IDs in the message", () => {
    expect(() => parseSpiffeId(idOfLength(3000))).toThrow(/…": ID is 3000 bytes/);
  });
});

describe("SpiffeId – accessors and comparisons", () => {
  it("splits trust domain and path", () => {
    const id = parseSpiffeId("spiffe://example.org/ns/web");
    expect(id.trustDomain.name).toBe("example.org");
    expect(id.path).toBe("/ns/web");
    expect(id.isTrustDomainId()).toBe(false);
    expect(JSON.stringify({ id })).toBe('{"id":"spiffe://example.org/ns/web"}');
  });

  it("recognises trust-domain IDs", () => {
    const id = parseSpiffeId("spiffe://example.org");
    expect(id.isTrustDomainId()).toBe(true);
    expect(id.path).toBe("");
  });

  it("compares paths case-sensitively", () => {
    const a = parseSpiffeId("spiffe://example.org/A");
    expect(a.equals(parseSpiffeId("SPIFFE://example.org/A"))).toBe(true);
    expect(a.equals(parseSpiffeId("spiffe://example.org/a"))).toBe(false);
    expect(a.equals(parseSpiffeId("spiffe://other.org/A"))).toBe(false);
  });

  it("tests membership of a trust domain", () => {
    const id = parseSpiffeId("spiffe://example.org/a");
    expect(id.memberOf(parseTrustDomain("example.org"))).toBe(true);
    expect(id.memberOf(parseTrustDomain("other.org"))).toBe(false);
  });
});

describe("SpiffeId.fromParts – construction", () => {
  it("builds from a name or a TrustDomain", () => {
    expect(SpiffeId.fromParts("example.org", "/a/b").toString()).toBe("spiffe://example.org/a/b");
    expect(SpiffeId.fromParts(parseTrustDomain("example.org"), "").toString()).toBe(
      "spiffe://example.org",
    );
  });

  it.each([
    ["/a/", "trailing-slash"],
    ["a", "path-chars"],
    ["/a/../b", "dot-segment"],
    ["/a%41", "percent-encoding"],
    ["//a", "empty-segment"],
    ["/" + "x".repeat(2100), "too-long"],
  ])("rejects path %s with rule %s", (path, rule) => {
    expectMeshidError(() => SpiffeId.fromParts("example.org", path), {
      code: "spiffe.id.invalid",
      rule,
    });
  });

  it("rejects a bad trust domain name with the trust-domain code", () => {
    expectMeshidError(() => SpiffeId.fromParts("Bad.org", "/a"), {
      code: "spiffe.trust_domain.invalid",
      rule: "trust-domain-chars",
    });
  });
});
