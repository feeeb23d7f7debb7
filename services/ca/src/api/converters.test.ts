import { MeshidError } from "@meshid/errors";
import { meshidTypesV1 } from "@meshid/proto";
import { parseSpiffeId } from "@meshid/spiffe";
import { createTestCa } from "@meshid/testkit";
import type { AttestedAgent, RegistrationEntry } from "../domain/types";
import {
  ConverterErrorCode,
  agentToProto,
  authorityIdFromProto,
  authorityToProto,
  bundleRecordToSpiffeBundle,
  bundleToProto,
  entryFromProto,
  entryIdFromProto,
  entryToProto,
  entryUpdateFromProto,
  issuedSvidToProto,
  itemStatusFromError,
  itemStatusFromResult,
  listAgentsParamsFromProto,
  listEntriesParamsFromProto,
  newEntryFromProto,
  selectorsFromProto,
  spiffeIdFromProto,
  spiffeIdToProto,
} from "./converters";

const entry: RegistrationEntry = {
  id: "0f8fad5b-d9cb-469f-a165-70867728950e",
  spiffeId: parseSpiffeId("spiffe://example.org/ns/default/sa/web"),
  parentId: parseSpiffeId("spiffe://example.org/meshid/agent/join_token/abc"),
  selectors: [
    { type: "k8s", value: "ns:default" },
    { type: "k8s", value: "sa:web" },
  ],
  x509SvidTtlSeconds: 600,
  dnsNames: ["web.default.svc"],
  admin: false,
  hint: "web",
  owner: "registrar",
  revision: 7,
  createdAt: new Date("2026-01-01T00:00:00Z"),
  updatedAt: new Date("2026-01-02T00:00:00Z"),
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof MeshidError ? `${err.kind}/${err.code}` : "not-meshid";
  }
  return undefined;
}

describe("converters", () => {
  it("converters – entry round trip", () => {
    const back = entryFromProto(entryToProto(entry));
    expect(back.id).toBe(entry.id);
    expect(back.spiffeId.equals(entry.spiffeId)).toBe(true);
    expect(back.parentId.equals(entry.parentId)).toBe(true);
    expect(back).toEqual({ ...entry, spiffeId: back.spiffeId, parentId: back.parentId });
  });

  it("converters – new entry without id, update needs one", () => {
    const p = { ...entryToProto(entry), id: "" };
    expect(newEntryFromProto(p).id).toBeUndefined();
    expect(codeOf(() => entryUpdateFromProto(p))).toBe(
      `invalid_argument/${ConverterErrorCode.fieldMissing}`,
    );
    expect(entryUpdateFromProto(entryToProto(entry)).id).toBe(entry.id);
  });

  it("converters – selectors are validated and normalised", () => {
    expect(
      selectorsFromProto(
        [
          { type: "k8s", value: "sa:web" },
          { type: "k8s", value: "ns:default" },
          { type: "k8s", value: "sa:web" },
        ],
        "selectors",
        true,
      ),
    ).toEqual([
      { type: "k8s", value: "ns:default" },
      { type: "k8s", value: "sa:web" },
    ]);
    expect(codeOf(() => selectorsFromProto([], "selectors", true))).toBe(
      `invalid_argument/${ConverterErrorCode.fieldMissing}`,
    );
    expect(codeOf(() => selectorsFromProto([{ type: "bogus", value: "x" }], "s", true))).toBe(
      `invalid_argument/${ConverterErrorCode.selectorInvalid}`,
    );
    expect(codeOf(() => selectorsFromProto([{ type: "k8s", value: "" }], "s", true))).toBe(
      `invalid_argument/${ConverterErrorCode.selectorInvalid}`,
    );
  });

  it.each([
    ["missing spiffe_id", { spiffeId: undefined }, ConverterErrorCode.fieldMissing],
    [
      "bad spiffe_id",
      { spiffeId: { trustDomain: "Bad TD", path: "/x" } },
      ConverterErrorCode.spiffeIdInvalid,
    ],
    [
      "bad parent path",
      { parentId: { trustDomain: "example.org", path: "no-slash" } },
      ConverterErrorCode.spiffeIdInvalid,
    ],
    ["negative ttl", { x509SvidTtlSeconds: -1 }, ConverterErrorCode.ttlInvalid],
    ["bad DNS name", { dnsNames: ["Not A Name"] }, ConverterErrorCode.dnsNameInvalid],
    ["id not a UUID", { id: "not-a-uuid" }, ConverterErrorCode.idInvalid],
  ])("converters – entry with %s is refused", (_name, patch, code) => {
    const p: meshidTypesV1.RegistrationEntry = { ...entryToProto(entry), ...patch };
    expect(codeOf(() => newEntryFromProto(p))).toBe(`invalid_argument/${code}`);
  });

  it("converters – SPIFFE ID round trip and errors", () => {
    const id = parseSpiffeId("spiffe://example.org/a/b");
    expect(spiffeIdFromProto(spiffeIdToProto(id), "x").toString()).toBe(id.toString());
    expect(codeOf(() => spiffeIdFromProto({ trustDomain: "", path: "" }, "x"))).toBe(
      `invalid_argument/${ConverterErrorCode.fieldMissing}`,
    );
  });

  it("converters – entry ids", () => {
    expect(entryIdFromProto(entry.id, "id")).toBe(entry.id);
    expect(codeOf(() => entryIdFromProto("", "id"))).toBe(
      `invalid_argument/${ConverterErrorCode.fieldMissing}`,
    );
    expect(codeOf(() => entryIdFromProto("123", "id"))).toBe(
      `invalid_argument/${ConverterErrorCode.idInvalid}`,
    );
  });

  it("converters – list params", () => {
    expect(
      listEntriesParamsFromProto({
        pageSize: 10,
        pageToken: "t",
        byParentId: spiffeIdToProto(entry.parentId),
        bySpiffeId: undefined,
        bySelectors: [{ type: "k8s", value: "ns:default" }],
        selectorMatch: 2,
        byOwner: "registrar",
      }),
    ).toEqual({
      pageSize: 10,
      pageToken: "t",
      byParentId: entry.parentId.toString(),
      bySelectors: { selectors: [{ type: "k8s", value: "ns:default" }], match: "subset" },
      byOwner: "registrar",
    });
    expect(
      codeOf(() =>
        listEntriesParamsFromProto({
          pageSize: 5000,
          pageToken: "",
          byParentId: undefined,
          bySpiffeId: undefined,
          bySelectors: [],
          selectorMatch: 0,
          byOwner: "",
        }),
      ),
    ).toBe(`invalid_argument/${ConverterErrorCode.pageSizeInvalid}`);
    expect(
      listAgentsParamsFromProto({
        pageSize: 0,
        pageToken: "",
        byAttestationType: "join_token",
        onlyBanned: true,
      }),
    ).toEqual({ byAttestationType: "join_token", onlyBanned: true });
  });

  it("converters – agents, SVIDs, authorities", () => {
    const agent: AttestedAgent = {
      spiffeId: entry.parentId,
      attestationType: "join_token",
      selectors: [{ type: "join_token", value: "abc" }],
      x509SvidSerial: "0a1b",
      x509SvidExpiresAt: new Date("2026-01-01T01:00:00Z"),
      banned: false,
      createdAt: new Date("2026-01-01T00:00:00Z"),
      updatedAt: new Date("2026-01-01T00:00:00Z"),
    };
    expect(agentToProto(agent)).toMatchObject({
      id: { trustDomain: "example.org", path: "/meshid/agent/join_token/abc" },
      x509SvidSerial: "0a1b",
      banned: false,
    });
    const svid = issuedSvidToProto({
      spiffeId: entry.spiffeId,
      certChainDer: [new Uint8Array([1, 2])],
      serialHex: "ff",
      expiresAt: new Date(0),
      hint: "h",
    });
    expect(svid.certChain[0]).toEqual(Buffer.from([1, 2]));
    expect(svid.serial).toBe("ff");
    const view = {
      authorityId: "abcd",
      state: "prepared" as const,
      notBefore: new Date(0),
      notAfter: new Date(1000),
      tainted: false,
      upstreamAuthorityId: "",
      keyType: "ec-p256" as const,
    };
    expect(authorityToProto(view).state).toBe(
      meshidTypesV1.AuthorityState.AUTHORITY_STATE_PREPARED,
    );
    expect(authorityIdFromProto("abcd")).toBe("abcd");
    expect(codeOf(() => authorityIdFromProto("XYZ"))).toBe(
      `invalid_argument/${ConverterErrorCode.idInvalid}`,
    );
  });

  it("converters – bundle to proto and to a SPIFFE bundle", async () => {
    const ca = await createTestCa();
    const record = {
      trustDomain: "example.org",
      x509Authorities: [{ certDer: ca.rootCertDer, tainted: true }],
      sequenceNumber: 3,
      refreshHintSeconds: 60,
    };
    const proto = bundleToProto(record);
    expect(proto.x509Authorities[0]?.tainted).toBe(true);
    expect(proto.sequenceNumber).toBe(3);
    expect(bundleRecordToSpiffeBundle(record).x509Authorities).toHaveLength(1);
  });

  it("converters – item status never leaks internal errors", () => {
    expect(
      itemStatusFromError(new MeshidError("not_found", "ca.entry.not_found", "no such entry")),
    ).toEqual({ code: 5, message: "no such entry", errorCode: "ca.entry.not_found" });
    expect(itemStatusFromError(new Error("secret path /x"))).toEqual({
      code: 13,
      message: "internal error",
      errorCode: "",
    });
    expect(itemStatusFromResult({ ok: true, value: 1 }).code).toBe(0);
  });
});
