import { createTestCa, type TestCa } from "@meshid/testkit";
import { readCertificateInfo } from "@meshid/pki";
import { meshidCaV1, meshidTypesV1 } from "@meshid/proto";
import {
  agentBundleFromProto,
  agentEntryFromProto,
  signedSvidResultFromProto,
  spiffeIdStringFromProto,
} from "./grpc-ca-client";

let ca: TestCa;
let other: TestCa;

beforeAll(async () => {
  ca = await createTestCa({ trustDomain: "example.org" });
  other = await createTestCa({ trustDomain: "example.org" });
});

describe("grpc CA client converters", () => {
  it("grpc ca client – SPIFFE IDs and entries from proto", () => {
    expect(spiffeIdStringFromProto({ trustDomain: "example.org", path: "/a" })).toBe(
      "spiffe://example.org/a",
    );
    expect(spiffeIdStringFromProto(undefined)).toBe("");
    expect(
      agentEntryFromProto(
        meshidTypesV1.RegistrationEntry.fromPartial({
          id: "e1",
          spiffeId: { trustDomain: "example.org", path: "/w" },
          parentId: { trustDomain: "example.org", path: "/meshid/agent/join_token/t" },
          selectors: [{ type: "k8s", value: "ns:default" }],
          x509SvidTtlSeconds: 0,
          dnsNames: ["w.local"],
          admin: false,
          hint: "h",
          revision: 12,
          owner: "registrar",
        }),
      ),
    ).toEqual({
      id: "e1",
      spiffeId: "spiffe://example.org/w",
      parentId: "spiffe://example.org/meshid/agent/join_token/t",
      selectors: [{ type: "k8s", value: "ns:default" }],
      dnsNames: ["w.local"],
      x509SvidTtlSeconds: 0,
      hint: "h",
      revision: 12,
    });
  });

  it("grpc ca client – bundle from proto lists the SKIs of tainted authorities", () => {
    const bundle = agentBundleFromProto({
      trustDomain: "example.org",
      x509Authorities: [
        { asn1: Buffer.from(ca.rootCertDer), tainted: true },
        { asn1: Buffer.from(other.rootCertDer), tainted: false },
      ],
      jwtAuthorities: [],
      refreshHintSeconds: 0,
      sequenceNumber: 3,
    });
    expect(bundle.taintedAuthorityIds).toEqual([
      Buffer.from(readCertificateInfo(ca.rootCertDer).subjectKeyId).toString("hex"),
    ]);
    expect(bundle.x509AuthoritiesDer).toHaveLength(2);
    expect(bundle.sequenceNumber).toBe(3);
    expect(() => agentBundleFromProto(undefined)).toThrow(
      expect.objectContaining({ code: "agent.ca_client.bad_response" }) as Error,
    );
  });

  it("grpc ca client – batch item results: ok, failed with and without an error code", () => {
    const expiresAt = new Date("2030-01-01T00:00:00Z");
    expect(
      signedSvidResultFromProto(
        meshidCaV1.X509SvidResult.fromPartial({
          entryId: "e1",
          status: { code: 0, message: "", errorCode: "" },
          svid: { certChain: [Buffer.from([1, 2])], serial: "0a", expiresAt, hint: "" },
        }),
        "e1",
      ),
    ).toEqual({
      ok: true,
      entryId: "e1",
      certChainDer: [Buffer.from([1, 2])],
      serialHex: "0a",
      expiresAt,
    });
    expect(
      signedSvidResultFromProto(
        meshidCaV1.X509SvidResult.fromPartial({
          entryId: "",
          status: { code: 7, message: "not yours", errorCode: "ca.svid.entry_not_authorized" },
        }),
        "e2",
      ),
    ).toEqual({
      ok: false,
      entryId: "e2",
      code: "ca.svid.entry_not_authorized",
      message: "not yours",
    });
    expect(
      signedSvidResultFromProto(
        meshidCaV1.X509SvidResult.fromPartial({
          entryId: "e3",
          status: { code: 5, message: "gone", errorCode: "" },
        }),
        "e3",
      ),
    ).toMatchObject({ ok: false, code: "grpc.status_5" });
  });
});
