import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { bundleToPem, validateX509Svid, type Bundle } from "@meshid/spiffe";
import { createTestCa, type TestSvid } from "../src/test-ca";

async function expectValid(svid: TestSvid, bundle: Bundle): Promise<void> {
  const result = await validateX509Svid({ chain: svid.certChainDer, bundle, at: new Date() });
  expect(result.spiffeId.toString()).toBe(svid.spiffeId);
  expect(result.notAfter.getTime()).toBe(svid.notAfter.getTime());
}

function expectChainsTo(svid: TestSvid, rootDer: Uint8Array): void {
  const certs = [...svid.certChainDer, rootDer].map((d) => new X509Certificate(Buffer.from(d)));
  for (let i = 0; i + 1 < certs.length; i++) {
    const cert = certs[i]!;
    const issuer = certs[i + 1]!;
    expect(cert.checkIssued(issuer)).toBe(true);
    expect(cert.verify(issuer.publicKey)).toBe(true);
  }
  const leaf = certs[0]!;
  expect(leaf.subjectAltName).toContain(`URI:${svid.spiffeId}`);
  expect(leaf.ca).toBe(false);
  // The key matches the leaf certificate.
  expect(createPublicKey(svid.privateKey).equals(leaf.publicKey)).toBe(true);
  expect(createPrivateKey(svid.keyPem).equals(svid.privateKey)).toBe(true);
  expect(leaf.validTo).toBe(new X509Certificate(svid.certChainPem).validTo);
}

describe("test-ca", () => {
  test("test-ca – root issues SVIDs that chain to the bundle", async () => {
    const ca = await createTestCa();
    expect(ca.trustDomain).toBe("example.org");
    expect(ca.bundle.trustDomain.name).toBe("example.org");
    expect(ca.bundle.x509Authorities).toHaveLength(1);
    expect(Buffer.from(ca.bundle.x509Authorities[0]!)).toEqual(Buffer.from(ca.rootCertDer));
    expect(ca.bundlePem).toBe(bundleToPem(ca.bundle));
    const svid = await ca.issueSvid({
      spiffeId: "spiffe://example.org/ns/default/sa/web",
      dnsNames: ["web.default.svc"],
      ttlSeconds: 600,
    });
    expect(svid.certChainDer).toHaveLength(1);
    expect(svid.notAfter.getTime()).toBeLessThanOrEqual(Date.now() + 600_000);
    expectChainsTo(svid, ca.rootCertDer);
    await expectValid(svid, ca.bundle);
    expect(new X509Certificate(Buffer.from(svid.certChainDer[0]!)).subjectAltName).toContain(
      "DNS:web.default.svc",
    );
  });

  test("test-ca – intermediates put themselves in the chain, leaf first", async () => {
    const ca = await createTestCa({ trustDomain: "td.test", keyType: "ec-p384" });
    const int1 = await ca.issueIntermediate({ keyType: "rsa-2048" });
    const int2 = await int1.issueIntermediate();
    const svid = await int2.issueSvid({ spiffeId: "spiffe://td.test/app", keyType: "ec-p384" });
    expect(svid.certChainDer).toHaveLength(3);
    expect(Buffer.from(svid.certChainDer[1]!)).toEqual(Buffer.from(int2.certDer));
    expect(Buffer.from(svid.certChainDer[2]!)).toEqual(Buffer.from(int1.certDer));
    expectChainsTo(svid, ca.rootCertDer);
    await expectValid(svid, ca.bundle);
    expect(int2.chainDer).toHaveLength(2);
  });
});
