import { X509Certificate, createPrivateKey } from "node:crypto";
import { isMeshidError } from "@meshid/errors";
import { concatDer } from "@meshid/spiffe";
import { createTestCa, type TestCa } from "@meshid/testkit";
import {
  RESPONSE_INVALID_CODE,
  describeSvid,
  pickDefaultSvid,
  pickSvidById,
  x509ContextFromResponse,
  type X509SvidResponseLike,
} from "./x509-context";

describe("x509ContextFromResponse", () => {
  let ca: TestCa;
  let federated: TestCa;
  let response: X509SvidResponseLike;

  beforeAll(async () => {
    ca = await createTestCa({ trustDomain: "example.org" });
    federated = await createTestCa({ trustDomain: "other.test" });
    const intermediate = await ca.issueIntermediate();
    const one = await intermediate.issueSvid({ spiffeId: "spiffe://example.org/one" });
    const two = await ca.issueSvid({ spiffeId: "spiffe://example.org/two" });
    response = {
      svids: [one, two].map((s, i) => ({
        spiffeId: s.spiffeId,
        x509Svid: concatDer(s.certChainDer),
        x509SvidKey: s.keyPkcs8Der,
        bundle: ca.rootCertDer,
        hint: i === 0 ? "internal" : "",
      })),
      federatedBundles: {
        "spiffe://other.test": federated.rootCertDer,
        // A federated bundle never replaces the own trust domain's.
        "spiffe://example.org": federated.rootCertDer,
      },
    };
  });

  it("x509 context – converts DER to chains, PEM, serial, expiry and bundles by trust-domain ID", () => {
    const context = x509ContextFromResponse(response);
    expect(context.svids.map((s) => s.spiffeId)).toEqual([
      "spiffe://example.org/one",
      "spiffe://example.org/two",
    ]);
    const one = context.svids[0]!;
    expect(one.certChainDer).toHaveLength(2);
    expect(one.trustDomainId).toBe("spiffe://example.org");
    expect(one.hint).toBe("internal");
    const leaf = new X509Certificate(one.certChainPem);
    expect(one.serialNumber).toBe(leaf.serialNumber);
    expect(one.expiresAt.getTime()).toBe(new Date(leaf.validTo).getTime());
    expect(one.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(leaf.checkPrivateKey(createPrivateKey(one.keyPem))).toBe(true);
    expect(one.bundlePem).toBe(ca.bundlePem);
    expect([...context.bundles.keys()].sort()).toEqual([
      "spiffe://example.org",
      "spiffe://other.test",
    ]);
    expect(Buffer.from(context.bundles.get("spiffe://example.org")![0]!)).toEqual(
      Buffer.from(ca.rootCertDer),
    );
    expect(describeSvid(one)).not.toHaveProperty("keyPem");
    expect(JSON.stringify(describeSvid(one))).not.toMatch(/PRIVATE/);
  });

  it("x509 context – pickers choose the default or an exact SPIFFE ID", () => {
    const { svids } = x509ContextFromResponse(response);
    expect(pickDefaultSvid(svids)?.spiffeId).toBe("spiffe://example.org/one");
    expect(pickSvidById("spiffe://example.org/two")(svids)?.spiffeId).toBe(
      "spiffe://example.org/two",
    );
    expect(pickSvidById("spiffe://example.org/none")(svids)).toBeUndefined();
  });

  it.each<[string, (r: X509SvidResponseLike) => X509SvidResponseLike]>([
    ["no SVID", (r) => ({ ...r, svids: [] })],
    ["a bad SPIFFE ID", (r) => ({ ...r, svids: [{ ...r.svids[0]!, spiffeId: "http://x/y" }] })],
    ["no certificate", (r) => ({ ...r, svids: [{ ...r.svids[0]!, x509Svid: new Uint8Array() }] })],
    ["no key", (r) => ({ ...r, svids: [{ ...r.svids[0]!, x509SvidKey: new Uint8Array() }] })],
    ["no bundle", (r) => ({ ...r, svids: [{ ...r.svids[0]!, bundle: new Uint8Array() }] })],
    ["garbage DER", (r) => ({ ...r, svids: [{ ...r.svids[0]!, x509Svid: Buffer.from("PEM?") }] })],
    [
      "a bad federated bundle",
      (r) => ({ ...r, federatedBundles: { "spiffe://x.test": Buffer.from([1]) } }),
    ],
  ])("x509 context – refuses a message with %s", (_what, mutate) => {
    let caught: unknown;
    try {
      x509ContextFromResponse(mutate(response));
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, RESPONSE_INVALID_CODE)).toBe(true);
    expect(String((caught as Error).message)).not.toMatch(/PRIVATE KEY/);
  });
});
