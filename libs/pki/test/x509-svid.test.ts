// Fast and generic X509-SVID issuance, for every issuer and leaf key type, under a root and
// under an intermediate: both paths build the same TBSCertificate, and every certificate passes
// @meshid/spiffe validateX509Svid and the real `openssl verify` for TLS client and server use.
import "reflect-metadata";
import { createHash } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { createBundle, validateX509Svid, type Bundle } from "@meshid/spiffe";
import {
  createCsr,
  createIntermediateCa,
  createSelfSignedCa,
  createX509SvidIssuer,
  exportSpkiDer,
  generateKeyPair,
  issueX509SvidGeneric,
  KEY_TYPES,
  type KeyPair,
  type KeyType,
  type IssuedX509Svid,
} from "../src";
import { readTlv } from "../src/der";
import { opensslVerify } from "./openssl";

const TD = "example.org";
const NOW = new Date();
const SPIFFE_ID = "spiffe://example.org/ns/default/sa/web";
const DNS_NAMES = ["web.default.svc", "web.example.org"];

interface Ca {
  certDer: Uint8Array;
  keys: KeyPair;
  /** Certificates between the leaf and the root (DER), nearest first. */
  intermediates: Uint8Array[];
  rootDer: Uint8Array;
  bundle: Bundle;
}

const keys = new Map<KeyType, KeyPair>();
const leafKeys = new Map<KeyType, KeyPair>();
const rootCas = new Map<KeyType, Ca>();
const intermediateCas = new Map<KeyType, Ca>();

function nextType(t: KeyType): KeyType {
  return KEY_TYPES[(KEY_TYPES.indexOf(t) + 1) % KEY_TYPES.length]!;
}

/** A deterministic random source so both paths pick the same serial. */
function fixedRandom(seed: number): (size: number) => Uint8Array {
  return (size) => new Uint8Array(size).map((_, i) => (seed * 31 + i * 7) & 0xff);
}

function tbsOf(certDer: Uint8Array): Buffer {
  const outer = readTlv(certDer, 0);
  const tbs = readTlv(certDer, outer.contentStart);
  return Buffer.from(certDer.subarray(tbs.start, tbs.end));
}

beforeAll(async () => {
  for (const t of KEY_TYPES) {
    keys.set(t, await generateKeyPair(t));
    leafKeys.set(t, await generateKeyPair(t));
  }
  for (const t of KEY_TYPES) {
    const k = keys.get(t)!;
    const root = await createSelfSignedCa({
      keyPair: k,
      trustDomain: TD,
      ttlSeconds: 86_400,
      now: NOW,
    });
    const bundle = createBundle({
      trustDomain: TD,
      x509Authorities: [root.certDer],
      jwtAuthorities: [],
      sequenceNumber: 1,
      refreshHintSeconds: 0,
    });
    rootCas.set(t, {
      certDer: root.certDer,
      keys: k,
      intermediates: [],
      rootDer: root.certDer,
      bundle,
    });
  }
  // The intermediate of type t sits under the root of the next type, so chains mix algorithms.
  for (const t of KEY_TYPES) {
    const parent = rootCas.get(nextType(t))!;
    const k = keys.get(t)!;
    const int = await createIntermediateCa({
      issuer: { certDer: parent.certDer, privateKey: parent.keys.privateKey },
      publicKey: k.publicKey,
      trustDomain: TD,
      ttlSeconds: 43_200,
      now: NOW,
    });
    intermediateCas.set(t, {
      certDer: int.certDer,
      keys: k,
      intermediates: [int.certDer],
      rootDer: parent.rootDer,
      bundle: parent.bundle,
    });
  }
}, 120_000);

function expectLeafProfile(svid: IssuedX509Svid, ca: Ca, leafType: KeyType): void {
  const cert = new x509.X509Certificate(svid.certDer);
  const issuerCert = new x509.X509Certificate(ca.certDer);
  expect(cert.subject).toBe("");
  expect(cert.issuer).toBe(issuerCert.subject);
  expect(cert.serialNumber).toBe(svid.serialHex);
  expect(cert.notBefore.getTime()).toBe(svid.notBefore.getTime());
  expect(cert.notAfter.getTime()).toBe(svid.notAfter.getTime());
  const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
  expect([bc.ca, bc.critical]).toEqual([false, true]);
  const ku = cert.getExtension(x509.KeyUsagesExtension)!;
  expect(ku.critical).toBe(true);
  expect(ku.usages).toBe(
    x509.KeyUsageFlags.digitalSignature |
      (leafType.startsWith("rsa") ? x509.KeyUsageFlags.keyEncipherment : 0),
  );
  expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([
    x509.ExtendedKeyUsage.serverAuth,
    x509.ExtendedKeyUsage.clientAuth,
  ]);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
  expect(san.critical).toBe(true); // the subject is empty (RFC 5280 4.2.1.6)
  expect(san.names.toJSON()).toEqual([
    { type: "url", value: SPIFFE_ID },
    ...DNS_NAMES.map((value) => ({ type: "dns", value })),
  ]);
  const spki = new x509.PublicKey(exportSpkiDer(leafKeys.get(leafType)!.publicKey));
  const bits = Buffer.from(
    new Uint8Array(spki.rawData.slice(spki.rawData.byteLength - keyBitsLength(leafType))),
  );
  expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId).toBe(
    createHash("sha1").update(bits).digest("hex"),
  );
  expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(
    issuerCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
  );
}

/** Length of the subjectPublicKey bits at the end of the SPKI, per key type. */
function keyBitsLength(t: KeyType): number {
  const der = exportSpkiDer(leafKeys.get(t)!.publicKey);
  const outer = readTlv(der, 0);
  const alg = readTlv(der, outer.contentStart);
  const bitString = readTlv(der, alg.end);
  return bitString.end - bitString.contentStart - 1;
}

async function expectValid(svid: IssuedX509Svid, ca: Ca): Promise<void> {
  const chain = [svid.certDer, ...ca.intermediates];
  const validated = await validateX509Svid({ chain, bundle: ca.bundle, at: new Date() });
  expect(validated.spiffeId.toString()).toBe(SPIFFE_ID);
  expect(validated.notAfter.getTime()).toBe(svid.notAfter.getTime());
  for (const purpose of ["sslclient", "sslserver"] as const) {
    const r = await opensslVerify({
      rootDer: ca.rootDer,
      intermediatesDer: ca.intermediates,
      leafDer: svid.certDer,
      purpose,
    });
    if (!r.ok) throw new Error(`openssl verify -purpose ${purpose} failed: ${r.output}`);
  }
}

const cases: [KeyType, "root" | "intermediate", KeyType][] = [];
for (const issuerType of KEY_TYPES) {
  for (const chain of ["root", "intermediate"] as const) {
    for (const leafType of KEY_TYPES) cases.push([issuerType, chain, leafType]);
  }
}

describe("x509-svid", () => {
  test.each(cases)(
    "x509-svid – %s issuer under %s, %s leaf: fast = generic, both valid",
    async (issuerType, chain, leafType) => {
      const ca = (chain === "root" ? rootCas : intermediateCas).get(issuerType)!;
      const leaf = leafKeys.get(leafType)!;
      const seed = cases.findIndex(
        (c) => c[0] === issuerType && c[1] === chain && c[2] === leafType,
      );
      const params = { spiffeId: SPIFFE_ID, dnsNames: DNS_NAMES, ttlSeconds: 3_600, now: NOW };
      const fast = createX509SvidIssuer({
        issuerCertDer: ca.certDer,
        issuerPrivateKey: ca.keys.privateKey,
        random: fixedRandom(seed),
      }).issue({ ...params, publicKey: leaf.publicKey });
      const generic = await issueX509SvidGeneric({
        ...params,
        publicKey: exportSpkiDer(leaf.publicKey),
        issuer: { certDer: ca.certDer, privateKey: ca.keys.privateKey },
        random: fixedRandom(seed),
      });
      const csr = await createCsr({ ...leaf, spiffeId: "spiffe://ignored.example/x" });
      const fromCsr = createX509SvidIssuer({
        issuerCertDer: ca.certDer,
        issuerPrivateKey: ca.keys.privateKey,
        random: fixedRandom(seed),
      }).issueFromCsr(csr, params);

      // Same inputs, same TBSCertificate, byte for byte.
      expect(tbsOf(fast.certDer).equals(tbsOf(generic.certDer))).toBe(true);
      expect(tbsOf(fromCsr.certDer).equals(tbsOf(fast.certDer))).toBe(true);
      expect(fast.serialHex).toBe(generic.serialHex);
      if (issuerType.startsWith("rsa")) {
        // PKCS#1 v1.5 signatures are deterministic: the whole certificates are identical.
        expect(Buffer.from(fast.certDer).equals(Buffer.from(generic.certDer))).toBe(true);
      }
      for (const svid of [fast, generic, fromCsr]) {
        expectLeafProfile(svid, ca, leafType);
        await expectValid(svid, ca);
      }
    },
  );
});
