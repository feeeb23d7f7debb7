import * as x509 from "@peculiar/x509";
import { type Bundle, createBundle } from "./bundle";
import { parseSpiffeId } from "./spiffe-id";
import { expectMeshidError, expectMeshidRejection } from "./testing/expect-error";
import {
  TEST_NOW,
  type TestCert,
  createTestCa,
  createTestCertificate,
  createTestSvid,
} from "./testing/test-pki";
import { parseTrustDomain } from "./trust-domain";
import { validateSigningCertificate, validateX509Svid, validateX509SvidLeaf } from "./x509-svid";

const HOUR_MS = 3_600_000;
const { KeyUsageFlags: KU, ExtendedKeyUsage: EKU } = x509;

let root: TestCert;
let intermediate: TestCert;
let bundle: Bundle;

beforeAll(async () => {
  root = await createTestCa({ name: "root", uris: ["spiffe://example.org"] });
  intermediate = await createTestCa({ name: "intermediate", issuer: root });
  bundle = createBundle({ trustDomain: "example.org", x509Authorities: [root.der] });
});

function bundleOf(...cas: TestCert[]): Bundle {
  return createBundle({ trustDomain: "example.org", x509Authorities: cas.map((c) => c.der) });
}

async function expectRule(
  chain: TestCert[],
  rule: string,
  opts: { bundle?: Bundle; at?: Date; index?: number } = {},
): Promise<void> {
  const err = await expectMeshidRejection(
    validateX509Svid({
      chain: chain.map((c) => c.der),
      bundle: opts.bundle ?? bundle,
      at: opts.at ?? TEST_NOW,
    }),
    { code: "spiffe.svid.invalid", rule, message: `(${rule})` },
  );
  if (opts.index !== undefined) expect(err.details.index).toBe(opts.index);
}

describe("validateX509Svid – valid chains", () => {
  it("accepts a leaf signed directly by a bundle root", async () => {
    const leaf = await createTestSvid({ issuer: root, uris: ["spiffe://example.org/ns/web"] });
    const out = await validateX509Svid({ chain: [leaf.der], bundle, at: TEST_NOW });
    expect(out.spiffeId.equals(parseSpiffeId("spiffe://example.org/ns/web"))).toBe(true);
    expect(out.notAfter).toEqual(leaf.cert.notAfter);
    expect(out.notBefore).toEqual(leaf.cert.notBefore);
    expect(out.leaf.serialNumber).toBe(leaf.cert.serialNumber);
  });

  it("accepts a chain ending at an intermediate whose issuer is in the bundle", async () => {
    const leaf = await createTestSvid({ issuer: intermediate });
    const out = await validateX509Svid({
      chain: [leaf.der, intermediate.der],
      bundle,
      at: TEST_NOW,
    });
    expect(out.spiffeId.toString()).toBe("spiffe://example.org/workload");
  });

  it("accepts a chain that includes the bundle root itself", async () => {
    const leaf = await createTestSvid({ issuer: intermediate });
    await expect(
      validateX509Svid({ chain: [leaf.der, intermediate.der, root.der], bundle, at: TEST_NOW }),
    ).resolves.toMatchObject({ notAfter: leaf.cert.notAfter });
  });

  it("accepts RSA and P-384 chains and DNS SANs", async () => {
    const rsaRoot = await createTestCa({ keyType: "rsa-2048" });
    const p384 = await createTestCa({ keyType: "ec-p384", issuer: rsaRoot });
    const leaf = await createTestSvid({ issuer: p384, keyType: "rsa-2048", dnsNames: ["web"] });
    await expect(
      validateX509Svid({ chain: [leaf.der, p384.der], bundle: bundleOf(rsaRoot), at: TEST_NOW }),
    ).resolves.toBeDefined();
  });

  it("accepts a leaf without basicConstraints or extendedKeyUsage and with extra key usages", async () => {
    const leaf = await createTestSvid({
      issuer: root,
      ca: null,
      extendedKeyUsage: null,
      keyUsage: KU.digitalSignature | KU.keyEncipherment | KU.keyAgreement,
    });
    await expect(
      validateX509Svid({ chain: [leaf.der], bundle, at: TEST_NOW }),
    ).resolves.toBeDefined();
  });

  it("finds the authority that signed among several with the same name (rotation)", async () => {
    const old = await createTestCa({ name: "same" });
    const next = await createTestCa({ name: "same" });
    const leaf = await createTestSvid({ issuer: next });
    await expect(
      validateX509Svid({ chain: [leaf.der], bundle: bundleOf(old, next), at: TEST_NOW }),
    ).resolves.toBeDefined();
  });

  it("accepts the boundaries of the validity window", async () => {
    const leaf = await createTestSvid({ issuer: root });
    for (const at of [leaf.cert.notBefore, leaf.cert.notAfter]) {
      await expect(validateX509Svid({ chain: [leaf.der], bundle, at })).resolves.toBeDefined();
    }
  });

  it("accepts pathLenConstraint values that are respected", async () => {
    const root1 = await createTestCa({ pathLength: 1 });
    const inter0 = await createTestCa({ issuer: root1, pathLength: 0 });
    const leaf = await createTestSvid({ issuer: inter0 });
    await expect(
      validateX509Svid({ chain: [leaf.der, inter0.der], bundle: bundleOf(root1), at: TEST_NOW }),
    ).resolves.toBeDefined();
  });
});

describe("validateX509Svid – leaf rules", () => {
  it("leaf-uri-san-count – rejects two URI SANs", async () => {
    const leaf = await createTestSvid({
      issuer: root,
      uris: ["spiffe://example.org/a", "spiffe://example.org/b"],
    });
    await expectRule([leaf], "leaf-uri-san-count", { index: 0 });
  });

  it("leaf-uri-san-count – rejects no URI SAN", async () => {
    const leaf = await createTestSvid({ issuer: root, uris: [], dnsNames: ["web"] });
    await expectRule([leaf], "leaf-uri-san-count");
  });

  it("leaf-spiffe-id – rejects a URI SAN that is not a SPIFFE ID", async () => {
    const leaf = await createTestSvid({ issuer: root, uris: ["https://example.org/a"] });
    await expectRule([leaf], "leaf-spiffe-id");
  });

  it("leaf-spiffe-id – rejects a trust-domain ID without a path", async () => {
    const leaf = await createTestSvid({ issuer: root, uris: ["spiffe://example.org"] });
    await expectRule([leaf], "leaf-spiffe-id");
  });

  it("leaf-trust-domain – rejects an ID of another trust domain", async () => {
    const leaf = await createTestSvid({ issuer: root, uris: ["spiffe://other.org/a"] });
    await expectRule([leaf], "leaf-trust-domain");
  });

  it("leaf-ca – rejects cA=true", async () => {
    const leaf = await createTestSvid({ issuer: root, ca: true });
    await expectRule([leaf], "leaf-ca");
  });

  it("leaf-key-usage-missing – rejects a leaf without keyUsage", async () => {
    const leaf = await createTestSvid({ issuer: root, keyUsage: null });
    await expectRule([leaf], "leaf-key-usage-missing");
  });

  it("leaf-key-usage-not-critical – rejects a non-critical keyUsage", async () => {
    const leaf = await createTestSvid({ issuer: root, keyUsageCritical: false });
    await expectRule([leaf], "leaf-key-usage-not-critical");
  });

  it("leaf-digital-signature – rejects keyUsage without digitalSignature", async () => {
    const leaf = await createTestSvid({ issuer: root, keyUsage: KU.keyEncipherment });
    await expectRule([leaf], "leaf-digital-signature");
  });

  it("leaf-key-cert-sign – rejects keyCertSign", async () => {
    const leaf = await createTestSvid({
      issuer: root,
      keyUsage: KU.digitalSignature | KU.keyCertSign,
    });
    await expectRule([leaf], "leaf-key-cert-sign");
  });

  it("leaf-crl-sign – rejects cRLSign", async () => {
    const leaf = await createTestSvid({ issuer: root, keyUsage: KU.digitalSignature | KU.cRLSign });
    await expectRule([leaf], "leaf-crl-sign");
  });

  it("leaf-eku – rejects extendedKeyUsage without clientAuth", async () => {
    const leaf = await createTestSvid({ issuer: root, extendedKeyUsage: [EKU.serverAuth] });
    await expectRule([leaf], "leaf-eku");
  });

  it("leaf-eku – rejects extendedKeyUsage without serverAuth", async () => {
    const leaf = await createTestSvid({
      issuer: root,
      extendedKeyUsage: [EKU.clientAuth, EKU.codeSigning],
    });
    await expectRule([leaf], "leaf-eku");
  });
});

describe("validateX509Svid – signing certificate rules", () => {
  it("signing-not-ca – rejects an intermediate with cA=false", async () => {
    const notCa = await createTestCa({ issuer: root, ca: false });
    const leaf = await createTestSvid({ issuer: notCa });
    await expectRule([leaf, notCa], "signing-not-ca", { index: 1 });
  });

  it("signing-not-ca – rejects an intermediate without basicConstraints", async () => {
    const noBc = await createTestCa({ issuer: root, ca: null });
    const leaf = await createTestSvid({ issuer: noBc });
    await expectRule([leaf, noBc], "signing-not-ca");
  });

  it("signing-key-cert-sign – rejects an intermediate without keyCertSign", async () => {
    const noSign = await createTestCa({ issuer: root, keyUsage: KU.cRLSign });
    const leaf = await createTestSvid({ issuer: noSign });
    await expectRule([leaf, noSign], "signing-key-cert-sign");
  });

  it("signing-key-cert-sign – rejects an intermediate without keyUsage", async () => {
    const noKu = await createTestCa({ issuer: root, keyUsage: null });
    const leaf = await createTestSvid({ issuer: noKu });
    await expectRule([leaf, noKu], "signing-key-cert-sign");
  });

  it("signing-spiffe-id-path – rejects an intermediate whose SPIFFE ID has a path", async () => {
    const withPath = await createTestCa({ issuer: root, uris: ["spiffe://example.org/ca"] });
    const leaf = await createTestSvid({ issuer: withPath });
    await expectRule([leaf, withPath], "signing-spiffe-id-path");
  });

  it("path-len – rejects an intermediate under a root with pathLen 0", async () => {
    const root0 = await createTestCa({ pathLength: 0 });
    const inter = await createTestCa({ issuer: root0 });
    const leaf = await createTestSvid({ issuer: inter });
    await expectRule([leaf, inter], "path-len", { bundle: bundleOf(root0), index: -1 });
  });

  it("path-len – rejects two intermediates under an intermediate with pathLen 0", async () => {
    const upper = await createTestCa({ issuer: root, pathLength: 0 });
    const lower = await createTestCa({ issuer: upper });
    const leaf = await createTestSvid({ issuer: lower });
    await expectRule([leaf, lower, upper], "path-len", { index: 2 });
  });
});

describe("validateX509Svid – time, trust and signatures", () => {
  it("expired – rejects a leaf past notAfter", async () => {
    const leaf = await createTestSvid({
      issuer: root,
      notAfter: new Date(TEST_NOW.getTime() - 1000),
      notBefore: new Date(TEST_NOW.getTime() - HOUR_MS),
    });
    await expectRule([leaf], "expired", { index: 0 });
  });

  it("expired – rejects an expired intermediate", async () => {
    const old = await createTestCa({
      issuer: root,
      notBefore: new Date(TEST_NOW.getTime() - 3 * HOUR_MS),
      notAfter: new Date(TEST_NOW.getTime() - HOUR_MS),
    });
    const leaf = await createTestSvid({ issuer: old });
    await expectRule([leaf, old], "expired", { index: 1 });
  });

  it("expired – rejects an expired bundle authority", async () => {
    const oldRoot = await createTestCa({
      notBefore: new Date(TEST_NOW.getTime() - 3 * HOUR_MS),
      notAfter: new Date(TEST_NOW.getTime() - HOUR_MS),
    });
    const leaf = await createTestSvid({ issuer: oldRoot });
    await expectRule([leaf], "expired", { bundle: bundleOf(oldRoot), index: -1 });
  });

  it("not-yet-valid – rejects a leaf before notBefore", async () => {
    const leaf = await createTestSvid({
      issuer: root,
      notBefore: new Date(TEST_NOW.getTime() + 1000),
      notAfter: new Date(TEST_NOW.getTime() + HOUR_MS),
    });
    await expectRule([leaf], "not-yet-valid", { index: 0 });
  });

  it("untrusted – rejects a chain from a root outside the bundle", async () => {
    const otherRoot = await createTestCa({ name: "other" });
    const leaf = await createTestSvid({ issuer: otherRoot });
    await expectRule([leaf], "untrusted", { index: 0 });
  });

  it("untrusted – rejects an authority with the right name but another key", async () => {
    const impostor = await createTestCa({ name: "root" });
    const leaf = await createTestSvid({ issuer: impostor });
    await expectRule([leaf], "untrusted");
  });

  it("untrusted – never lets a leaf anchor itself", async () => {
    const otherRoot = await createTestCa({ name: "other" });
    const leaf = await createTestSvid({ issuer: otherRoot });
    await expectRule([leaf], "untrusted", { bundle: bundleOf(leaf) });
  });

  it("untrusted – rejects an empty bundle", async () => {
    const leaf = await createTestSvid({ issuer: root });
    await expectRule([leaf], "untrusted", { bundle: bundleOf() });
  });

  it("signature – rejects a leaf not signed by the next certificate", async () => {
    const twin = await createTestCa({ name: "intermediate", issuer: root });
    const leaf = await createTestSvid({ issuer: twin });
    await expectRule([leaf, intermediate], "signature", { index: 0 });
  });

  it("signature – rejects a chain whose next certificate has another subject", async () => {
    const other = await createTestCa({ name: "unrelated", issuer: root });
    const leaf = await createTestSvid({ issuer: intermediate });
    await expectRule([leaf, other], "signature");
  });

  it("untrusted – rejects a tampered leaf whose signature no longer verifies", async () => {
    const leaf = await createTestSvid({ issuer: root });
    const der = Uint8Array.from(leaf.der);
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0x01; // inside the signature value
    await expectMeshidRejection(validateX509Svid({ chain: [der], bundle, at: TEST_NOW }), {
      code: "spiffe.svid.invalid",
      rule: "untrusted",
    });
  });
});

describe("validateX509Svid – malformed input", () => {
  it("malformed – rejects an empty chain", async () => {
    await expectMeshidRejection(validateX509Svid({ chain: [], bundle, at: TEST_NOW }), {
      code: "spiffe.svid.invalid",
      rule: "malformed",
    });
  });

  it("malformed – rejects garbage and two certificates in one entry", async () => {
    const leaf = await createTestSvid({ issuer: root });
    for (const der of [
      new Uint8Array([1, 2, 3]),
      new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]),
      new Uint8Array([...leaf.der, ...root.der]),
    ]) {
      await expectMeshidRejection(validateX509Svid({ chain: [der], bundle, at: TEST_NOW }), {
        code: "spiffe.svid.invalid",
        rule: "malformed",
      });
    }
  });

  it("malformed – rejects a repeated extension", async () => {
    const leaf = await createTestCertificate({
      subject: "O=SPIFFE",
      issuer: root,
      extensions: [
        new x509.KeyUsagesExtension(KU.digitalSignature, true),
        new x509.KeyUsagesExtension(KU.digitalSignature, true),
        new x509.SubjectAlternativeNameExtension([
          { type: "url", value: "spiffe://example.org/a" },
        ]),
      ],
    });
    await expectRule([leaf], "malformed");
  });
});

describe("validateX509SvidLeaf and validateSigningCertificate – direct use", () => {
  it("returns the leaf ID without a trust domain and checks CA profiles", async () => {
    const leaf = await createTestSvid({ issuer: root, uris: ["spiffe://other.org/x"] });
    expect(validateX509SvidLeaf(leaf.cert).toString()).toBe("spiffe://other.org/x");
    expectMeshidError(() => validateX509SvidLeaf(leaf.cert, parseTrustDomain("example.org")), {
      code: "spiffe.svid.invalid",
      rule: "leaf-trust-domain",
    });
    expect(() => validateSigningCertificate(intermediate.cert)).not.toThrow();
    expect(() => validateSigningCertificate(root.cert)).not.toThrow();
    expectMeshidError(() => validateSigningCertificate(leaf.cert, 3), {
      code: "spiffe.svid.invalid",
      rule: "signing-not-ca",
      message: "certificate 3:",
    });
  });
});
