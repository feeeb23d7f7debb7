import { createHash } from "node:crypto";
import { content, decodeOid, DerError, expectTlv, TAG } from "./der";
import type { KeyType } from "./keys";

/** OIDs meshid reads and writes. */
export const OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  sha256WithRSAEncryption: "1.2.840.113549.1.1.11",
  sha384WithRSAEncryption: "1.2.840.113549.1.1.12",
  sha512WithRSAEncryption: "1.2.840.113549.1.1.13",
  ecPublicKey: "1.2.840.10045.2.1",
  prime256v1: "1.2.840.10045.3.1.7",
  secp384r1: "1.3.132.0.34",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  ecdsaWithSHA384: "1.2.840.10045.4.3.3",
  ecdsaWithSHA512: "1.2.840.10045.4.3.4",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

/** What meshid needs from a SubjectPublicKeyInfo, read without building a KeyObject. */
export interface SpkiInfo {
  /** Key family: "ec" or "rsa" (or "other"). */
  readonly family: "ec" | "rsa" | "other";
  /** EC curve OID when family is "ec". */
  readonly curveOid?: string;
  /** The subjectPublicKey BIT STRING content without the unused-bits octet. */
  readonly subjectPublicKey: Uint8Array;
}

/** Reads the algorithm and key bits of SubjectPublicKeyInfo DER. Throws DerError. */
export function readSpki(spkiDer: Uint8Array): SpkiInfo {
  const outer = expectTlv(spkiDer, 0, TAG.SEQUENCE);
  if (outer.end !== spkiDer.length) throw new DerError("trailing bytes after SPKI");
  const alg = expectTlv(spkiDer, outer.contentStart, TAG.SEQUENCE, outer.end);
  const algOid = expectTlv(spkiDer, alg.contentStart, TAG.OID, alg.end);
  const algName = decodeOid(content(spkiDer, algOid));
  const bits = expectTlv(spkiDer, alg.end, TAG.BIT_STRING, outer.end);
  if (bits.end !== outer.end) throw new DerError("trailing bytes in SPKI");
  if (bits.end - bits.contentStart < 2 || spkiDer[bits.contentStart] !== 0) {
    throw new DerError("bad subjectPublicKey BIT STRING");
  }
  const subjectPublicKey = spkiDer.subarray(bits.contentStart + 1, bits.end);
  if (algName === OID.ecPublicKey) {
    let curveOid: string | undefined;
    if (algOid.end < alg.end) {
      const param = expectTlv(spkiDer, algOid.end, TAG.OID, alg.end);
      curveOid = decodeOid(content(spkiDer, param));
    }
    return { family: "ec", curveOid, subjectPublicKey };
  }
  if (algName === OID.rsaEncryption) return { family: "rsa", subjectPublicKey };
  return { family: "other", subjectPublicKey };
}

/** Computes the RFC 5280 (method 1) key identifier: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spkiDer: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha1").update(readSpki(spkiDer).subjectPublicKey).digest());
}

/** How an issuer of the given key type signs: node:crypto hash, OID, and webcrypto params. */
export interface SigningAlgorithm {
  /** node:crypto digest name for `crypto.sign`. */
  readonly hash: "sha256" | "sha384";
  /** Signature AlgorithmIdentifier OID. */
  readonly oid: string;
  /** Whether the AlgorithmIdentifier carries a NULL parameter (RSA). */
  readonly nullParams: boolean;
}

/** Returns the signature algorithm meshid uses for an issuer key of the given type. */
export function signingAlgorithmFor(type: KeyType): SigningAlgorithm {
  switch (type) {
    case "ec-p256":
      return { hash: "sha256", oid: OID.ecdsaWithSHA256, nullParams: false };
    case "ec-p384":
      return { hash: "sha384", oid: OID.ecdsaWithSHA384, nullParams: false };
    case "rsa-2048":
    case "rsa-4096":
      return { hash: "sha256", oid: OID.sha256WithRSAEncryption, nullParams: true };
  }
}
