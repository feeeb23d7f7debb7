import { isMeshidError } from "@meshid/errors";
import { type Selector, parseSpiffeId, parseTrustDomain } from "@meshid/spiffe";
import {
  EntryValidationCode,
  checkEntryId,
  dnsNameProblem,
  validateEntryUpdate,
  validateNewEntry,
} from "./entry-validation";
import type { NewRegistrationEntry } from "./types";

const td = parseTrustDomain("example.org");

function entry(
  over: Partial<Record<keyof NewRegistrationEntry, unknown>> = {},
): NewRegistrationEntry {
  return {
    spiffeId: parseSpiffeId("spiffe://example.org/ns/default/sa/web"),
    parentId: parseSpiffeId("spiffe://example.org/meshid/agent/join_token/abc"),
    selectors: [{ type: "k8s", value: "pod-uid:0f8fad5b-d9cb-469f-a165-70867728950e" }],
    x509SvidTtlSeconds: 0,
    dnsNames: ["web.default.svc"],
    admin: false,
    hint: "",
    owner: "registrar",
    ...over,
  } as NewRegistrationEntry;
}

const sel = (type: string, value: string): Selector => ({ type, value });

describe("entry validation – bad entries", () => {
  const cases: [string, Partial<Record<keyof NewRegistrationEntry, unknown>>, string, string][] = [
    [
      "malformed SPIFFE ID",
      { spiffeId: "spiffe://example.org/a//b" },
      "spiffe.id.invalid",
      "spiffeId",
    ],
    [
      "SPIFFE ID with a bad scheme",
      { spiffeId: "https://example.org/a" },
      "spiffe.id.invalid",
      "spiffeId",
    ],
    ["missing SPIFFE ID", { spiffeId: undefined }, EntryValidationCode.idMissing, "spiffeId"],
    [
      "SPIFFE ID in another trust domain",
      { spiffeId: parseSpiffeId("spiffe://other.org/web") },
      EntryValidationCode.foreignTrustDomain,
      "spiffeId",
    ],
    [
      "trust-domain ID as SPIFFE ID",
      { spiffeId: parseSpiffeId("spiffe://example.org") },
      EntryValidationCode.trustDomainId,
      "spiffeId",
    ],
    [
      "SPIFFE ID in the agents' namespace",
      { spiffeId: parseSpiffeId("spiffe://example.org/meshid/agent/join_token/x") },
      EntryValidationCode.reservedId,
      "spiffeId",
    ],
    [
      "malformed parent ID",
      { parentId: "spiffe://Example.org/agent" },
      "spiffe.id.invalid",
      "parentId",
    ],
    [
      "parent in another trust domain",
      { parentId: parseSpiffeId("spiffe://other.org/meshid/agent/x") },
      EntryValidationCode.parentForeignTrustDomain,
      "parentId",
    ],
    ["empty selectors", { selectors: [] }, EntryValidationCode.noSelectors, "selectors"],
    [
      "unknown selector type",
      { selectors: [sel("docker", "label:a:b")] },
      "spiffe.selector.unknown_type",
      "selectors[0]",
    ],
    [
      "bad k8s selector value",
      { selectors: [sel("k8s", "ns:Default")] },
      "spiffe.selector.invalid",
      "selectors[0]",
    ],
    [
      "unknown k8s selector key (second selector)",
      { selectors: [sel("k8s", "ns:default"), sel("k8s", "colour:blue")] },
      "spiffe.selector.invalid",
      "selectors[1]",
    ],
    [
      "too many selectors",
      { selectors: Array.from({ length: 65 }, (_, i) => sel("unix", `uid:${i}`)) },
      EntryValidationCode.tooManySelectors,
      "selectors",
    ],
    [
      "selector longer than 1024 characters",
      { selectors: [sel("k8s", `pod-image:${"i".repeat(1024)}`)] },
      EntryValidationCode.selectorTooLong,
      "selectors[0]",
    ],
    ["negative TTL", { x509SvidTtlSeconds: -1 }, EntryValidationCode.ttl, "x509SvidTtlSeconds"],
    ["fractional TTL", { x509SvidTtlSeconds: 1.5 }, EntryValidationCode.ttl, "x509SvidTtlSeconds"],
    ["NaN TTL", { x509SvidTtlSeconds: Number.NaN }, EntryValidationCode.ttl, "x509SvidTtlSeconds"],
    [
      "upper-case DNS name",
      { dnsNames: ["Web.default.svc"] },
      EntryValidationCode.dnsName,
      "dnsNames[0]",
    ],
    [
      "DNS label with underscore",
      { dnsNames: ["a.b", "we_b.svc"] },
      EntryValidationCode.dnsName,
      "dnsNames[1]",
    ],
    [
      "wildcard inside a label",
      { dnsNames: ["w*.example.org"] },
      EntryValidationCode.dnsName,
      "dnsNames[0]",
    ],
    [
      "wildcard not first",
      { dnsNames: ["a.*.example.org"] },
      EntryValidationCode.dnsName,
      "dnsNames[0]",
    ],
    ["bare wildcard", { dnsNames: ["*"] }, EntryValidationCode.dnsName, "dnsNames[0]"],
    [
      "DNS label of 64 characters",
      { dnsNames: [`${"a".repeat(64)}.org`] },
      EntryValidationCode.dnsName,
      "dnsNames[0]",
    ],
    [
      "DNS name longer than 253",
      { dnsNames: [Array.from({ length: 5 }, () => "a".repeat(60)).join(".")] },
      EntryValidationCode.dnsName,
      "dnsNames[0]",
    ],
    ["empty DNS label", { dnsNames: ["a..b"] }, EntryValidationCode.dnsName, "dnsNames[0]"],
    [
      "too many DNS names",
      { dnsNames: Array.from({ length: 101 }, (_, i) => `h${i}.svc`) },
      EntryValidationCode.tooManyDnsNames,
      "dnsNames",
    ],
    ["hint too long", { hint: "h".repeat(1025) }, EntryValidationCode.hint, "hint"],
    ["hint with a newline", { hint: "a\nb" }, EntryValidationCode.hint, "hint"],
    ["owner with spaces", { owner: "my owner" }, EntryValidationCode.owner, "owner"],
    ["owner too long", { owner: "o".repeat(129) }, EntryValidationCode.owner, "owner"],
    ["admin not a boolean", { admin: "yes" }, EntryValidationCode.admin, "admin"],
    ["id not a UUID", { id: "entry-1" }, EntryValidationCode.idInvalid, "id"],
    [
      "upper-case UUID",
      { id: "0F8FAD5B-D9CB-469F-A165-70867728950E" },
      EntryValidationCode.idInvalid,
      "id",
    ],
  ];

  it.each(cases)("entry validation – refuses %s", (_name, over, code, field) => {
    const result = validateNewEntry({ entry: entry(over), trustDomain: td });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(code);
    expect(result.error.kind).toBe("invalid_argument");
    expect(result.error.details.field).toBe(field);
    expect(result.error.message).toContain(`entry ${field}:`);
  });

  it("entry validation – the table has at least 15 distinct error codes or fields", () => {
    expect(new Set(cases.map(([, , code, field]) => `${code}/${field}`)).size).toBeGreaterThan(15);
  });
});

describe("entry validation – good entries", () => {
  it("entry validation – accepts and normalises a valid entry", () => {
    const result = validateNewEntry({
      entry: entry({
        id: "0f8fad5b-d9cb-469f-a165-70867728950e",
        selectors: [sel("k8s", "sa:web"), sel("k8s", "ns:default"), sel("k8s", "sa:web")],
        dnsNames: ["web.default.svc", "*.web.default.svc", "web.default.svc"],
        x509SvidTtlSeconds: 3600,
      }),
      trustDomain: td,
    });
    if (!result.ok) throw result.error;
    expect(result.value.id).toBe("0f8fad5b-d9cb-469f-a165-70867728950e");
    expect(result.value.selectors).toEqual([sel("k8s", "ns:default"), sel("k8s", "sa:web")]);
    expect(result.value.dnsNames).toEqual(["web.default.svc", "*.web.default.svc"]);
    expect(result.value.spiffeId.toString()).toBe("spiffe://example.org/ns/default/sa/web");
    expect(result.value.x509SvidTtlSeconds).toBe(3600);
  });

  it("entry validation – accepts a parent that is an entry ID and node selectors", () => {
    const result = validateNewEntry({
      entry: entry({
        parentId: parseSpiffeId("spiffe://example.org/node-alias/cluster-a"),
        selectors: [sel("k8s_psat", "cluster:a")],
      }),
      trustDomain: td,
    });
    expect(result.ok).toBe(true);
  });

  it("entry validation – applies custom limits", () => {
    const result = validateNewEntry({
      entry: entry({ dnsNames: ["a.svc", "b.svc"] }),
      trustDomain: td,
      limits: { maxDnsNames: 1 },
    });
    expect(result.ok || result.error.code).toBe(EntryValidationCode.tooManyDnsNames);
  });

  it("entry validation – updates need a UUID id", () => {
    const missing = validateEntryUpdate({
      entry: { ...entry(), id: undefined as unknown as string },
      trustDomain: td,
    });
    expect(missing.ok || missing.error.code).toBe(EntryValidationCode.idInvalid);
    const good = validateEntryUpdate({
      entry: { ...entry(), id: "0f8fad5b-d9cb-469f-a165-70867728950e" },
      trustDomain: td,
    });
    expect(good.ok).toBe(true);
  });

  it("entry validation – checkEntryId throws a MeshidError naming the field", () => {
    expect(checkEntryId("0f8fad5b-d9cb-469f-a165-70867728950e")).toBe(
      "0f8fad5b-d9cb-469f-a165-70867728950e",
    );
    let caught: unknown;
    try {
      checkEntryId("nope", "ids[3]");
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, EntryValidationCode.idInvalid)).toBe(true);
    expect((caught as Error).message).toContain("entry ids[3]:");
  });

  it.each([
    ["example.org", undefined],
    ["*.example.org", undefined],
    ["a-b.c1.d", undefined],
    ["1.2.3.4", undefined],
    [`${"a".repeat(63)}.org`, undefined],
    ["-a.org", "must be a-z"],
    ["a-.org", "must be a-z"],
    ["", "is empty"],
    ["a.", "empty label"],
  ])("entry validation – dns name %j", (name, problem) => {
    if (problem === undefined) expect(dnsNameProblem(name)).toBeUndefined();
    else expect(dnsNameProblem(name)).toContain(problem);
  });
});
