import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import {
  bitString,
  content,
  decodeOid,
  DerError,
  expectTlv,
  NULL,
  oid,
  oidContent,
  oidEquals,
  seq,
  TAG,
  unsignedInteger,
} from "./der";
import { keyTypeOf, type KeyType } from "./keys";

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
const EC_PUBLIC_KEY_OID = oidContent(OID.ecPublicKey);
const RSA_ENCRYPTION_OID = oidContent(OID.rsaEncryption);
const PRIME256V1_OID = oidContent(OID.prime256v1);
const SECP384R1_OID = oidContent(OID.secp384r1);

export function readSpki(spkiDer: Uint8Array): SpkiInfo {
  const outer = expectTlv(spkiDer, 0, TAG.SEQUENCE);
  if (outer.end !== spkiDer.length) throw new DerError("trailing bytes after SPKI");
  const alg = expectTlv(spkiDer, outer.contentStart, TAG.SEQUENCE, outer.end);
  const algOid = expectTlv(spkiDer, alg.contentStart, TAG.OID, alg.end);
  const bits = expectTlv(spkiDer, alg.end, TAG.BIT_STRING, outer.end);
  if (bits.end !== outer.end) throw new DerError("trailing bytes in SPKI");
  if (bits.end - bits.contentStart < 2 || spkiDer[bits.contentStart] !== 0) {
    throw new DerError("bad subjectPublicKey BIT STRING");
  }
  const subjectPublicKey = spkiDer.subarray(bits.contentStart + 1, bits.end);
  if (oidEquals(spkiDer, algOid, EC_PUBLIC_KEY_OID)) {
    let curveOid: string | undefined;
    if (algOid.end < alg.end) {
      const param = expectTlv(spkiDer, algOid.end, TAG.OID, alg.end);
      curveOid = oidEquals(spkiDer, param, PRIME256V1_OID)
        ? OID.prime256v1
        : oidEquals(spkiDer, param, SECP384R1_OID)
          ? OID.secp384r1
          : decodeOid(content(spkiDer, param));
    }
    return { family: "ec", curveOid, subjectPublicKey };
  }
  if (oidEquals(spkiDer, algOid, RSA_ENCRYPTION_OID)) return { family: "rsa", subjectPublicKey };
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

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

function stripZeros(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

const EC_CURVES: Readonly<Record<string, { crv: string; size: number; type: KeyType }>> = {
  [OID.prime256v1]: { crv: "P-256", size: 32, type: "ec-p256" },
  [OID.secp384r1]: { crv: "P-384", size: 48, type: "ec-p384" },
};

function unsupportedKey(message: string): MeshidError {
  return new MeshidError("invalid_argument", "pki.key.unsupported", message);
}

/**
 * Imports SubjectPublicKeyInfo DER as a KeyObject and returns its key type, quickly: supported
 * EC and RSA keys go through node's JWK import, which skips OpenSSL's generic decoder (several
 * times cheaper); anything else falls back to the DER import. Throws `pki.key.malformed` or
 * `pki.key.unsupported` (invalid_argument).
 */
export function importSpkiFast(spkiDer: Uint8Array): {
  key: KeyObject;
  keyType: KeyType;
  subjectPublicKey: Uint8Array;
} {
  let info: SpkiInfo;
  try {
    info = readSpki(spkiDer);
  } catch (err) {
    throw new MeshidError(
      "invalid_argument",
      "pki.key.malformed",
      "public key is not valid SubjectPublicKeyInfo DER",
      { cause: err },
    );
  }
  try {
    if (info.family === "ec" && info.curveOid !== undefined) {
      const curve = EC_CURVES[info.curveOid];
      if (curve === undefined) throw unsupportedKey(`unsupported EC curve ${info.curveOid}`);
      const pt = info.subjectPublicKey;
      if (pt.length === 1 + 2 * curve.size && pt[0] === 0x04) {
        const key = createPublicKey({
          key: {
            kty: "EC",
            crv: curve.crv,
            x: b64url(pt.subarray(1, 1 + curve.size)),
            y: b64url(pt.subarray(1 + curve.size)),
          },
          format: "jwk",
        });
        return { key, keyType: curve.type, subjectPublicKey: pt };
      }
    } else if (info.family === "rsa") {
      const bits = info.subjectPublicKey;
      const s = expectTlv(bits, 0, TAG.SEQUENCE);
      const n = expectTlv(bits, s.contentStart, TAG.INTEGER, s.end);
      const e = expectTlv(bits, n.end, TAG.INTEGER, s.end);
      const modulus = stripZeros(content(bits, n));
      const bitLength = modulus.length * 8 - Math.clz32(modulus[0] ?? 0) + 24;
      if (bitLength !== 2048 && bitLength !== 4096) {
        throw unsupportedKey(`unsupported RSA key size ${bitLength}`);
      }
      const key = createPublicKey({
        key: { kty: "RSA", n: b64url(modulus), e: b64url(stripZeros(content(bits, e))) },
        format: "jwk",
      });
      return {
        key,
        keyType: bitLength === 2048 ? "rsa-2048" : "rsa-4096",
        subjectPublicKey: bits,
      };
    }
  } catch (err) {
    if (err instanceof MeshidError) throw err;
    throw new MeshidError(
      "invalid_argument",
      "pki.key.malformed",
      "public key is not a valid EC or RSA key",
      { cause: err },
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  } catch (err) {
    throw new MeshidError(
      "invalid_argument",
      "pki.key.malformed",
      "public key is not valid SubjectPublicKeyInfo DER",
      { cause: err },
    );
  }
  return { key, keyType: keyTypeOf(key), subjectPublicKey: info.subjectPublicKey };
}

const EC_SPKI_PREFIX: Readonly<Record<string, Buffer>> = {
  "ec-p256": Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex"),
  "ec-p384": Buffer.from("3076301006072a8648ce3d020106052b81040022036200", "hex"),
};

/**
 * Returns a public (or private: its public half) KeyObject as SubjectPublicKeyInfo DER plus
 * its key type, via node's JWK export (much cheaper than OpenSSL's DER encoder). Throws
 * `pki.key.unsupported` (invalid_argument).
 */
export function spkiFromKeyObject(key: KeyObject): { spkiDer: Uint8Array; keyType: KeyType } {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const keyType = keyTypeOf(pub);
  const jwk = pub.export({ format: "jwk" });
  const prefix = EC_SPKI_PREFIX[keyType];
  if (prefix !== undefined && typeof jwk.x === "string" && typeof jwk.y === "string") {
    const spkiDer = Buffer.concat([
      prefix,
      Buffer.from([0x04]),
      Buffer.from(jwk.x, "base64url"),
      Buffer.from(jwk.y, "base64url"),
    ]);
    return { spkiDer, keyType };
  }
  if (typeof jwk.n === "string" && typeof jwk.e === "string") {
    const spkiDer = seq(
      seq(oid(OID.rsaEncryption), NULL),
      bitString(
        seq(
          unsignedInteger(Buffer.from(jwk.n, "base64url")),
          unsignedInteger(Buffer.from(jwk.e, "base64url")),
        ),
      ),
    );
    return { spkiDer, keyType };
  }
  return { spkiDer: pub.export({ type: "spki", format: "der" }), keyType };
}
