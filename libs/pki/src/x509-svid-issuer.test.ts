import "reflect-metadata";
import { generateKeyPairSync } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { isMeshidError } from "@meshid/errors";
import { createSelfSignedCa } from "./ca-certificate";
import { createCsr } from "./csr";
import { readTlv } from "./der";
import { exportSpkiDer, generateKeyPair, type KeyPair } from "./keys";
import { createX509SvidIssuer, type X509SvidIssuer } from "./x509-svid-issuer";
import { issueX509SvidGeneric } from "./x509-svid-generic";

const NOW = new Date("2030-06-01T12:00:00.750Z");
const ID = "spiffe://example.org/app";

let caKeys: KeyPair;
let caDer: Uint8Array;
let issuer: X509SvidIssuer;
let leaf: KeyPair;

beforeAll(async () => {
  caKeys = await generateKeyPair("ec-p256");
  caDer = (
    await createSelfSignedCa({
      keyPair: caKeys,
      trustDomain: "example.org",
      ttlSeconds: 86_400,
      now: NOW,
    })
  ).certDer;
  issuer = createX509SvidIssuer({ issuerCertDer: caDer, issuerPrivateKey: caKeys.privateKey });
  leaf = await generateKeyPair("ec-p256");
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isMeshidError(err) ? `${err.kind}/${err.code}` : `not-meshid: ${String(err)}`;
  }
  return undefined;
}

describe("x509-svid-issuer", () => {
  test("x509-svid-issuer – notBefore is now − 10 s and notAfter now + ttl, whole seconds", () => {
    const svid = issuer.issue({
      spiffeId: ID,
      publicKey: leaf.publicKey,
      ttlSeconds: 600,
      now: NOW,
    });
    expect(svid.notBefore.toISOString()).toBe("2030-06-01T11:59:50.000Z");
    expect(svid.notAfter.toISOString()).toBe("2030-06-01T12:10:00.000Z");
    const cert = new x509.X509Certificate(svid.certDer);
    expect(cert.notBefore).toEqual(svid.notBefore);
    expect(cert.notAfter).toEqual(svid.notAfter);
  });

  test("x509-svid-issuer – notAfter is capped at the issuer's notAfter", () => {
    const svid = issuer.issue({
      spiffeId: ID,
      publicKey: leaf.publicKey,
      ttlSeconds: 10 * 86_400,
      now: NOW,
    });
    expect(svid.notAfter).toEqual(issuer.issuerNotAfter);
    expect(issuer.issuerNotAfter.toISOString()).toBe("2030-06-02T12:00:00.000Z");
  });

  test("x509-svid-issuer – serials are random, positive, minimal DER", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const svid = issuer.issue({
        spiffeId: ID,
        publicKey: leaf.publicKey,
        ttlSeconds: 60,
        now: NOW,
      });
      expect(new x509.X509Certificate(svid.certDer).serialNumber).toBe(svid.serialHex);
      seen.add(svid.serialHex);
    }
    expect(seen.size).toBe(200);
    // High bit set → a 0x00 sign octet; leading zero octets → stripped.
    for (const first of [0xff, 0x00]) {
      const fixed = createX509SvidIssuer({
        issuerCertDer: caDer,
        issuerPrivateKey: caKeys.privateKey,
        random: (n) => new Uint8Array(n).fill(7).fill(first, 0, 2),
      }).issue({ spiffeId: ID, publicKey: leaf.publicKey, ttlSeconds: 60, now: NOW });
      const cert = new x509.X509Certificate(fixed.certDer);
      expect(cert.serialNumber).toBe(fixed.serialHex);
      expect(fixed.serialHex).toBe(first === 0xff ? "ffff" + "07".repeat(14) : "07".repeat(14));
    }
  });

  test("x509-svid-issuer – years from 2050 use GeneralizedTime, like the generic path", async () => {
    const now = new Date("2049-12-31T23:00:00Z");
    const ca = await createSelfSignedCa({
      keyPair: caKeys,
      trustDomain: "example.org",
      ttlSeconds: 86_400,
      now,
    });
    const random = (n: number): Uint8Array => new Uint8Array(n).fill(0x42);
    const params = {
      spiffeId: ID,
      publicKey: exportSpkiDer(leaf.publicKey),
      ttlSeconds: 7_200,
      now,
    };
    const fast = createX509SvidIssuer({
      issuerCertDer: ca.certDer,
      issuerPrivateKey: caKeys.privateKey,
      random,
    }).issue(params);
    const generic = await issueX509SvidGeneric({
      ...params,
      issuer: { certDer: ca.certDer, privateKey: caKeys.privateKey },
      random,
    });
    expect(fast.notAfter.toISOString()).toBe("2050-01-01T01:00:00.000Z");
    expect(Buffer.from(fast.certDer).includes(Buffer.from("20500101010000Z"))).toBe(true);
    expect(Buffer.from(fast.certDer).includes(Buffer.from("491231225950Z"))).toBe(true);
    const tbs = (d: Uint8Array): Buffer => {
      const t = readTlv(d, readTlv(d, 0).contentStart);
      return Buffer.from(d.subarray(t.start, t.end));
    };
    expect(tbs(fast.certDer).equals(tbs(generic.certDer))).toBe(true);
    expect(new x509.X509Certificate(fast.certDer).notAfter).toEqual(fast.notAfter);
  });

  test("x509-svid-issuer – bad parameters are invalid_argument with stable codes", () => {
    const base = { spiffeId: ID, publicKey: leaf.publicKey, ttlSeconds: 60, now: NOW };
    const badIds = [
      "spiffe://example.org",
      "spiffe://example.org/",
      "spiffe://Example.org/x",
      "spiffe://example.org/a/../b",
      "spiffe://example.org/a//b",
      "spiffe://example.org/a?b",
      "https://example.org/x",
      "spiffe://example.org/" + "a".repeat(2048),
    ];
    for (const spiffeId of badIds) {
      expect(codeOf(() => issuer.issue({ ...base, spiffeId }))).toBe(
        "invalid_argument/pki.svid.spiffe_id_invalid",
      );
    }
    expect(codeOf(() => issuer.issue({ ...base, dnsNames: ["bad name"] }))).toBe(
      "invalid_argument/pki.svid.dns_name_invalid",
    );
    expect(codeOf(() => issuer.issue({ ...base, dnsNames: ["-x.example"] }))).toBe(
      "invalid_argument/pki.svid.dns_name_invalid",
    );
    expect(
      codeOf(() => issuer.issue({ ...base, dnsNames: ["*.ok.example", "a-b.example"] })),
    ).toBeUndefined();
    expect(codeOf(() => issuer.issue({ ...base, ttlSeconds: 0 }))).toBe(
      "invalid_argument/pki.svid.ttl_invalid",
    );
    expect(codeOf(() => issuer.issue({ ...base, ttlSeconds: Number.NaN }))).toBe(
      "invalid_argument/pki.svid.ttl_invalid",
    );
    expect(codeOf(() => issuer.issue({ ...base, publicKey: new Uint8Array([0x30, 0x00]) }))).toBe(
      "invalid_argument/pki.key.malformed",
    );
    const ed = generateKeyPairSync("ed25519");
    expect(codeOf(() => issuer.issue({ ...base, publicKey: ed.publicKey }))).toBe(
      "invalid_argument/pki.key.unsupported",
    );
    expect(codeOf(() => issuer.issue({ ...base, publicKey: exportSpkiDer(ed.publicKey) }))).toBe(
      "invalid_argument/pki.key.unsupported",
    );
  });

  test("x509-svid-issuer – SPIFFE IDs of another trust domain are refused by both paths", async () => {
    const params = {
      spiffeId: "spiffe://other.org/app",
      publicKey: leaf.publicKey,
      ttlSeconds: 60,
      now: NOW,
    };
    expect(codeOf(() => issuer.issue(params))).toBe(
      "invalid_argument/pki.svid.trust_domain_mismatch",
    );
    await expect(
      issueX509SvidGeneric({
        ...params,
        issuer: { certDer: caDer, privateKey: caKeys.privateKey },
      }),
    ).rejects.toMatchObject({ code: "pki.svid.trust_domain_mismatch" });
  });

  test("x509-svid-issuer – nothing is issued under an expired issuer", () => {
    const later = new Date(issuer.issuerNotAfter.getTime() + 1_000);
    expect(
      codeOf(() =>
        issuer.issue({ spiffeId: ID, publicKey: leaf.publicKey, ttlSeconds: 60, now: later }),
      ),
    ).toBe("failed_precondition/pki.issuer.expired");
  });

  test("x509-svid-issuer – refuses a non-CA issuer and a key that does not match", async () => {
    const svid = issuer.issue({
      spiffeId: ID,
      publicKey: leaf.publicKey,
      ttlSeconds: 60,
      now: NOW,
    });
    expect(
      codeOf(() =>
        createX509SvidIssuer({ issuerCertDer: svid.certDer, issuerPrivateKey: leaf.privateKey }),
      ),
    ).toBe("failed_precondition/pki.issuer.not_ca");
    const other = await generateKeyPair("ec-p256");
    expect(
      codeOf(() =>
        createX509SvidIssuer({ issuerCertDer: caDer, issuerPrivateKey: other.privateKey }),
      ),
    ).toBe("failed_precondition/pki.issuer.key_mismatch");
    const rsa = await generateKeyPair("rsa-2048");
    expect(
      codeOf(() =>
        createX509SvidIssuer({ issuerCertDer: caDer, issuerPrivateKey: rsa.privateKey }),
      ),
    ).toBe("failed_precondition/pki.issuer.key_mismatch");
    expect(
      codeOf(() =>
        createX509SvidIssuer({
          issuerCertDer: new Uint8Array([1, 2]),
          issuerPrivateKey: caKeys.privateKey,
        }),
      ),
    ).toBe("invalid_argument/pki.certificate.malformed");
  });

  test("x509-svid-issuer – issueFromCsr checks proof of possession and ignores requested SANs", async () => {
    const csr = await createCsr({
      ...leaf,
      spiffeId: "spiffe://evil.example/admin",
      dnsNames: ["evil.example"],
    });
    const svid = issuer.issueFromCsr(csr, { spiffeId: ID, ttlSeconds: 60, now: NOW });
    const san = new x509.X509Certificate(svid.certDer).getExtension(
      x509.SubjectAlternativeNameExtension,
    )!;
    expect(san.names.toJSON()).toEqual([{ type: "url", value: ID }]);
    const other = await generateKeyPair("ec-p256");
    const forged = await createCsr({ privateKey: other.privateKey, publicKey: leaf.publicKey });
    expect(
      codeOf(() => issuer.issueFromCsr(forged, { spiffeId: ID, ttlSeconds: 60, now: NOW })),
    ).toBe("invalid_argument/pki.csr.signature");
    expect(
      codeOf(() =>
        issuer.issueFromCsr(csr.subarray(0, 40), { spiffeId: ID, ttlSeconds: 60, now: NOW }),
      ),
    ).toBe("invalid_argument/pki.csr.malformed");
  });
});
