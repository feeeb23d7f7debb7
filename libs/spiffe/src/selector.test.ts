import {
  type Selector,
  formatSelector,
  normalizeSelectors,
  parseSelector,
  selectorKey,
  selectorsMatch,
  validateSelector,
} from "./selector";
import { expectMeshidError } from "./testing/expect-error";

const sel = (text: string): Selector => parseSelector(text);

describe("parseSelector – shape", () => {
  it("splits at the first colon and keeps colons in the value", () => {
    expect(parseSelector("k8s:pod-uid:123")).toEqual({ type: "k8s", value: "pod-uid:123" });
    expect(parseSelector("k8s:pod-label:app:web")).toEqual({
      type: "k8s",
      value: "pod-label:app:web",
    });
  });

  it("round-trips through formatSelector and selectorKey", () => {
    const s = parseSelector("unix:uid:1000");
    expect(formatSelector(s)).toBe("unix:uid:1000");
    expect(selectorKey(s)).toBe("unix:uid:1000");
  });

  it.each([
    ["nocolon", "format"],
    [":value", "type"],
    ["K8S:ns:x", "type"],
    ["k8s:", "value"],
    ["k8s:ns:a\nb", "value"],
  ])("rejects %j with rule %s", (text, rule) => {
    expectMeshidError(() => parseSelector(text), { code: "spiffe.selector.invalid", rule });
  });
});

describe("validateSelector – known unix and k8s keys", () => {
  it.each([
    "unix:uid:0",
    "unix:uid:4294967295",
    "unix:gid:100",
    "unix:user:www-data",
    "unix:group:nginx",
    "unix:supplementary_gid:27",
    "unix:path:/usr/sbin/nginx",
    `unix:sha256:${"ab".repeat(32)}`,
    "k8s:ns:default",
    "k8s:sa:web-frontend",
    "k8s:node-name:node-1.example",
    "k8s:pod-uid:0f3c5e1a-1b2c-4d5e-8f90-123456789abc",
    "k8s:pod-name:web-7c9d-abcde",
    "k8s:pod-label:app:web",
    "k8s:pod-label:app.kubernetes.io/name:web",
    "k8s:pod-label:tier:",
    "k8s:pod-owner:ReplicaSet:web-7c9d",
    "k8s:pod-owner-uid:ReplicaSet:0f3c5e1a-1b2c-4d5e-8f90-123456789abc",
    "k8s:pod-image:docker.io/library/nginx:1.25",
    "k8s:pod-image-count:2",
    "k8s:container-name:nginx",
    "k8s:container-image:nginx@sha256:" + "0".repeat(64),
  ])("accepts %s", (text) => {
    expect(() => validateSelector(sel(text))).not.toThrow();
  });

  it.each([
    ["unix:uid:-1", "unix:uid value must be a decimal integer from 0 to 4294967295"],
    ["unix:uid:abc", "unix:uid value must be a decimal integer"],
    ["unix:uid:4294967296", "unix:uid value must be a decimal integer"],
    ["unix:gid:01", "unix:gid value must be a decimal integer"],
    ["unix:path:usr/bin/x", "unix:path value must be an absolute path"],
    ["unix:sha256:abc", "unix:sha256 value must be 64 lowercase hexadecimal digits"],
    [`unix:sha256:${"AB".repeat(32)}`, "unix:sha256 value must be 64 lowercase hexadecimal"],
    ["unix:user:", "unix:user value must be a non-empty name"],
    ["unix:uid", 'expected "unix:uid:<value>"'],
    ["unix:color:blue", 'unknown unix selector key "color"'],
    ["k8s:ns:Default", "k8s:ns value must be a DNS-1123 label"],
    ["k8s:ns:" + "a".repeat(64), "k8s:ns value must be a DNS-1123 label"],
    ["k8s:pod-uid:123", "k8s:pod-uid value must be a lowercase UUID"],
    ["k8s:pod-label:app", 'k8s:pod-label value must be "<key>:<value>"'],
    ["k8s:pod-label:-app:web", 'k8s:pod-label value has invalid label key "-app"'],
    ["k8s:pod-label:app:we b", 'k8s:pod-label value has invalid label value "we b"'],
    ["k8s:pod-owner:replicaset:web", 'k8s:pod-owner value has invalid owner kind "replicaset"'],
    ["k8s:pod-owner:ReplicaSet", 'k8s:pod-owner value must be "<Kind>:<name>"'],
    ["k8s:pod-owner:ReplicaSet:Web", "k8s:pod-owner value owner name must be a DNS-1123 subdomain"],
    ["k8s:pod-image:has space", "k8s:pod-image value must be a non-empty image reference"],
    ["k8s:pod-image-count:x", "k8s:pod-image-count value must be a non-negative decimal integer"],
    ["k8s:namespace:default", 'unknown k8s selector key "namespace"'],
    ["k8s:constructor:x", 'unknown k8s selector key "constructor"'],
  ])("rejects %s", (text, message) => {
    expectMeshidError(() => validateSelector(sel(text)), {
      code: "spiffe.selector.invalid",
      message,
    });
  });
});

describe("validateSelector – allowed types", () => {
  it("rejects types outside the default known types", () => {
    const err = expectMeshidError(() => validateSelector(sel("docker:label:a")), {
      code: "spiffe.selector.unknown_type",
      rule: "unknown-type",
    });
    expect(err.details.type).toBe("docker");
  });

  it("accepts extra types when allowed and restricts known ones when not listed", () => {
    expect(() =>
      validateSelector(sel("docker:label:a"), { allowedTypes: ["docker", "unix"] }),
    ).not.toThrow();
    expect(() => validateSelector(sel("k8s:ns:a"), { allowedTypes: ["unix"] })).toThrow(
      'type "k8s" is not one of "unix"',
    );
  });
});

describe("selectorsMatch – subset semantics", () => {
  const workload = ["k8s:ns:default", "k8s:sa:web", "unix:uid:1000"].map(sel);

  it("matches when the entry's selectors are a subset", () => {
    expect(selectorsMatch([sel("k8s:ns:default")], workload)).toBe(true);
    expect(selectorsMatch([sel("k8s:sa:web"), sel("k8s:ns:default")], workload)).toBe(true);
    expect(selectorsMatch(workload, workload)).toBe(true);
  });

  it("does not match when an entry selector is missing", () => {
    expect(selectorsMatch([sel("k8s:ns:default"), sel("k8s:sa:api")], workload)).toBe(false);
    expect(selectorsMatch([sel("k8s:ns:default")], [])).toBe(false);
  });

  it("never matches an empty entry set", () => {
    expect(selectorsMatch([], workload)).toBe(false);
    expect(selectorsMatch([], [])).toBe(false);
  });

  it("compares type and value exactly", () => {
    expect(selectorsMatch([{ type: "k8s", value: "ns:Default" }], workload)).toBe(false);
  });
});

describe("normalizeSelectors – dedupe and sort", () => {
  it("removes duplicates and sorts by key", () => {
    const out = normalizeSelectors(
      ["unix:uid:1", "k8s:sa:b", "k8s:ns:a", "unix:uid:1", "k8s:ns:a"].map(sel),
    );
    expect(out.map(formatSelector)).toEqual(["k8s:ns:a", "k8s:sa:b", "unix:uid:1"]);
  });

  it("returns copies and leaves the input alone", () => {
    const input = [sel("b:x"), sel("a:y")];
    const out = normalizeSelectors(input);
    expect(out[1]).not.toBe(input[0]);
    expect(input.map(formatSelector)).toEqual(["b:x", "a:y"]);
  });
});
