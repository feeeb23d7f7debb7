import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { isMeshidError } from "@meshid/errors";
import { createIntermediateCa, createSelfSignedCa } from "./ca-certificate";
import { readCertificateInfo } from "./certificate-info";
import { exportSpkiDer, generateKeyPair } from "./keys";
import { pemToCertificates } from "./pem";

const now = new Date("2026-01-02T03:04:05.678Z");

describe("ca-certificate", () => {
  test("ca-certificate – self-signed root has the CA profile", async () => {
    const keyPair = await generateKeyPair("ec-p256");
    const ca = await createSelfSignedCa({
      keyPair,
      trustDomain: "example.org",
      ttlSeconds: 86_400,
      now,
      pathLen: 2,
    });
    expect(Buffer.from(pemToCertificates(ca.certPem)[0]!)).toEqual(Buffer.from(ca.certDer));
    expect(ca.notBefore.toISOString()).toBe("2026-01-02T03:03:55.000Z");
    expect(ca.notAfter.toISOString()).toBe("2026-01-03T03:04:05.000Z");
    const cert = new x509.X509Certificate(ca.certDer);
    expect(cert.subject).toBe("CN=example.org root CA, O=meshid");
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.serialNumber).toBe(ca.serialHex);
    expect(ca.serialHex.length).toBeGreaterThanOrEqual(30);
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.pathLength, bc.critical]).toEqual([true, 2, true]);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.toJSON()).toEqual([{ type: "url", value: "spiffe://example.org" }]);
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    expect(aki.keyId).toBe(ski.keyId);
    expect(await cert.verify({ signatureOnly: true })).toBe(true);
  });

  test("ca-certificate – intermediate chains to its issuer and is capped at its notAfter", async () => {
    const rootKeys = await generateKeyPair("ec-p384");
    const root = await createSelfSignedCa({
      keyPair: rootKeys,
      trustDomain: "example.org",
      ttlSeconds: 3_600,
      now,
    });
    const intKeys = await generateKeyPair("rsa-2048");
    const int = await createIntermediateCa({
      issuer: { certDer: root.certDer, privateKey: rootKeys.privateKey },
      publicKey: exportSpkiDer(intKeys.publicKey),
      trustDomain: "example.org",
      ttlSeconds: 7_200,
      now,
      pathLen: 0,
    });
    expect(int.notAfter).toEqual(root.notAfter);
    const cert = new x509.X509Certificate(int.certDer);
    const rootCert = new x509.X509Certificate(root.certDer);
    expect(cert.issuer).toBe(rootCert.subject);
    expect(cert.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-384" } });
    expect(await cert.verify({ publicKey: rootCert.publicKey, signatureOnly: true })).toBe(true);
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(
      rootCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
    );
    expect(readCertificateInfo(int.certDer).basicConstraints).toEqual({ ca: true, pathLen: 0 });

    // pathLen 0 cannot sign another CA.
    const more = await generateKeyPair("ec-p256");
    await expect(
      createIntermediateCa({
        issuer: { certDer: int.certDer, privateKey: intKeys.privateKey },
        publicKey: more.publicKey,
        trustDomain: "example.org",
        ttlSeconds: 60,
        now,
      }),
    ).rejects.toMatchObject({ code: "pki.issuer.path_len", kind: "failed_precondition" });
  });

  test("ca-certificate – expired issuers and bad parameters are refused", async () => {
    const keyPair = await generateKeyPair("ec-p256");
    const root = await createSelfSignedCa({
      keyPair,
      trustDomain: "example.org",
      ttlSeconds: 60,
      now,
    });
    await expect(
      createIntermediateCa({
        issuer: { certDer: root.certDer, privateKey: keyPair.privateKey },
        publicKey: keyPair.publicKey,
        trustDomain: "example.org",
        ttlSeconds: 60,
        now: new Date(now.getTime() + 120_000),
      }),
    ).rejects.toMatchObject({ code: "pki.issuer.expired" });
    const bad = [
      { trustDomain: "Example.org", ttlSeconds: 60, code: "pki.trust_domain.invalid" },
      { trustDomain: "example.org", ttlSeconds: 0, code: "pki.ca.ttl_invalid" },
      { trustDomain: "example.org", ttlSeconds: 60, pathLen: -1, code: "pki.ca.path_len_invalid" },
    ];
    for (const { code, ...p } of bad) {
      const err: unknown = await createSelfSignedCa({ keyPair, now, ...p }).catch(
        (e: unknown) => e,
      );
      expect(isMeshidError(err, code)).toBe(true);
    }
  });
});
