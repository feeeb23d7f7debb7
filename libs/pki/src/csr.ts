import { sign, verify, type KeyObject } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import {
  bitString,
  children,
  content,
  ctx,
  decodeOid,
  DerError,
  expectTlv,
  NULL,
  octetString,
  oid,
  oidContent,
  oidEquals,
  raw,
  seq,
  smallInteger,
  TAG,
  tlv,
  type Tlv,
} from "./der";
import { keyTypeOf, type KeyType } from "./keys";
import { decodePem } from "./pem";
import { importSpkiFast, OID, signingAlgorithmFor } from "./spki";

/** Parameters of {@link createCsr}. */
export interface CreateCsrParams {
  /** The requester's private key; it signs the request (proof of possession). */
  readonly privateKey: KeyObject;
  /** The matching public key, written into the request. */
  readonly publicKey: KeyObject;
  /** Optional SPIFFE ID, written as a URI SAN in an extensionRequest attribute. */
  readonly spiffeId?: string;
  /** Optional DNS SANs, written next to the SPIFFE ID. */
  readonly dnsNames?: readonly string[];
}

/** A parsed PKCS#10 certification request (its signature is checked by {@link verifyCsr}). */
export interface ParsedCsr {
  /** The request, DER. */
  readonly der: Uint8Array;
  /** The requested public key. */
  readonly publicKey: KeyObject;
  /** Its key type. */
  readonly keyType: KeyType;
  /** The requested public key as SubjectPublicKeyInfo DER. */
  readonly spkiDer: Uint8Array;
  /** The signature algorithm OID, e.g. `1.2.840.10045.4.3.2`. */
  readonly signatureAlgorithm: string;
  /** URI SANs requested in an extensionRequest attribute (informational: CAs ignore them). */
  readonly uris: readonly string[];
  /** DNS SANs requested in an extensionRequest attribute (informational). */
  readonly dnsNames: readonly string[];
}

/** The raw parts of a CSR, found without building an object tree (issuance hot path). */
export interface CsrParts {
  /** DER of certificationRequestInfo: the signed bytes. */
  readonly infoDer: Uint8Array;
  /** DER of the SubjectPublicKeyInfo. */
  readonly spkiDer: Uint8Array;
  /** Signature algorithm OID. */
  readonly signatureAlgorithm: string;
  /** node:crypto digest name for the signature algorithm. */
  readonly hash: "sha256" | "sha384" | "sha512";
  /** The signature value (BIT STRING content without the unused-bits octet). */
  readonly signature: Uint8Array;
  /** Where the attributes [0] sit, when present. */
  readonly attributes?: Tlv;
}

const HASH_BY_SIG_OID: Readonly<Record<string, "sha256" | "sha384" | "sha512">> = {
  [OID.ecdsaWithSHA256]: "sha256",
  [OID.ecdsaWithSHA384]: "sha384",
  [OID.ecdsaWithSHA512]: "sha512",
  [OID.sha256WithRSAEncryption]: "sha256",
  [OID.sha384WithRSAEncryption]: "sha384",
  [OID.sha512WithRSAEncryption]: "sha512",
};

const KNOWN_SIG_OIDS: readonly (readonly [Uint8Array, string])[] = Object.keys(HASH_BY_SIG_OID).map(
  (dotted) => [oidContent(dotted), dotted] as const,
);

function knownSignatureOid(der: Uint8Array, t: Tlv): string | undefined {
  for (const [bytes, dotted] of KNOWN_SIG_OIDS) if (oidEquals(der, t, bytes)) return dotted;
  return undefined;
}

function malformed(message: string, cause?: unknown): MeshidError {
  return new MeshidError("invalid_argument", "pki.csr.malformed", message, { cause });
}

function badSignature(message: string, cause?: unknown): MeshidError {
  return new MeshidError("invalid_argument", "pki.csr.signature", message, { cause });
}

/**
 * Splits CSR DER into the signed info, SPKI, signature algorithm and signature. Throws
 * `pki.csr.malformed` for bad DER and `pki.csr.signature` for an unsupported algorithm.
 */
export function readCsrParts(der: Uint8Array): CsrParts {
  let sigOid: string;
  let parts: Omit<CsrParts, "hash" | "signatureAlgorithm">;
  try {
    const outer = expectTlv(der, 0, TAG.SEQUENCE);
    if (outer.end !== der.length) throw new DerError("trailing bytes after CSR");
    const info = expectTlv(der, outer.contentStart, TAG.SEQUENCE, outer.end);
    const alg = expectTlv(der, info.end, TAG.SEQUENCE, outer.end);
    const sig = expectTlv(der, alg.end, TAG.BIT_STRING, outer.end);
    if (sig.end !== outer.end) throw new DerError("trailing bytes in CSR");
    if (sig.end - sig.contentStart < 2 || der[sig.contentStart] !== 0) {
      throw new DerError("bad signature BIT STRING");
    }
    const algOid = expectTlv(der, alg.contentStart, TAG.OID, alg.end);
    sigOid = knownSignatureOid(der, algOid) ?? decodeOid(content(der, algOid));
    const version = expectTlv(der, info.contentStart, TAG.INTEGER, info.end);
    if (version.end - version.contentStart !== 1 || der[version.contentStart] !== 0) {
      throw new DerError("CSR version must be 0");
    }
    const subject = expectTlv(der, version.end, TAG.SEQUENCE, info.end);
    const spki = expectTlv(der, subject.end, TAG.SEQUENCE, info.end);
    let attributes: Tlv | undefined;
    if (spki.end < info.end) {
      attributes = expectTlv(der, spki.end, 0xa0, info.end);
      if (attributes.end !== info.end) throw new DerError("trailing bytes in CSR info");
    }
    parts = {
      infoDer: raw(der, info),
      spkiDer: raw(der, spki),
      signature: der.subarray(sig.contentStart + 1, sig.end),
      ...(attributes === undefined ? {} : { attributes }),
    };
  } catch (err) {
    throw malformed("CSR is not valid PKCS#10 DER", err);
  }
  const hash = HASH_BY_SIG_OID[sigOid];
  if (hash === undefined) {
    throw badSignature(`unsupported CSR signature algorithm ${sigOid}`);
  }
  return { ...parts, signatureAlgorithm: sigOid, hash };
}

/**
 * Imports the CSR's public key and checks its proof of possession (the signature over
 * certificationRequestInfo). Returns the key and its type. Throws `pki.key.unsupported`,
 * `pki.csr.malformed` or `pki.csr.signature` (all invalid_argument).
 */
export function verifyCsrParts(parts: CsrParts): {
  publicKey: KeyObject;
  keyType: KeyType;
  subjectPublicKey: Uint8Array;
} {
  const { key: publicKey, keyType, subjectPublicKey } = importSpkiFast(parts.spkiDer);
  const isEcSig = parts.signatureAlgorithm.startsWith("1.2.840.10045.4.");
  if (isEcSig !== keyType.startsWith("ec")) {
    throw badSignature("CSR signature algorithm does not match its key type");
  }
  let ok: boolean;
  try {
    ok = verify(parts.hash, parts.infoDer, publicKey, parts.signature);
  } catch (err) {
    throw badSignature("CSR signature could not be verified", err);
  }
  if (!ok) throw badSignature("CSR signature does not verify: no proof of possession");
  return { publicKey, keyType, subjectPublicKey };
}

function toDer(derOrPem: Uint8Array | string): Uint8Array {
  if (typeof derOrPem !== "string") return derOrPem;
  try {
    const blocks = derOrPem.includes("NEW CERTIFICATE REQUEST")
      ? decodePem(derOrPem, "NEW CERTIFICATE REQUEST")
      : decodePem(derOrPem, "CERTIFICATE REQUEST");
    if (blocks.length !== 1) throw new Error("expected exactly one PEM block");
    return blocks[0] as Uint8Array;
  } catch (err) {
    throw malformed("CSR is not a PEM CERTIFICATE REQUEST block", err);
  }
}

function readRequestedSans(der: Uint8Array, attributes: Tlv): { uris: string[]; dns: string[] } {
  const uris: string[] = [];
  const dns: string[] = [];
  for (const attr of children(der, attributes)) {
    const [type, values] = children(der, attr);
    if (type?.tag !== TAG.OID || values?.tag !== TAG.SET) throw new DerError("bad Attribute");
    if (decodeOid(content(der, type)) !== OID.extensionRequest) continue;
    for (const exts of children(der, values)) {
      for (const ext of children(der, exts)) {
        const f = children(der, ext);
        const id = f[0];
        const value = f[f.length - 1];
        if (id?.tag !== TAG.OID || value?.tag !== TAG.OCTET_STRING) {
          throw new DerError("bad Extension");
        }
        if (decodeOid(content(der, id)) !== OID.subjectAltName) continue;
        const names = expectTlv(der, value.contentStart, TAG.SEQUENCE, value.end);
        for (const gn of children(der, names)) {
          const text = Buffer.from(content(der, gn)).toString("latin1");
          if (gn.tag === 0x86) uris.push(text);
          else if (gn.tag === 0x82) dns.push(text);
        }
      }
    }
  }
  return { uris, dns };
}

/**
 * Parses a PKCS#10 CSR from DER or PEM (`CERTIFICATE REQUEST`). Does not check the
 * signature: call {@link verifyCsr}. Throws `pki.csr.malformed`, `pki.csr.signature`
 * (unsupported algorithm) or `pki.key.unsupported` (all invalid_argument).
 */
export function parseCsr(derOrPem: Uint8Array | string): ParsedCsr {
  const der = toDer(derOrPem);
  const parts = readCsrParts(der);
  const { key: publicKey, keyType } = importSpkiFast(parts.spkiDer);
  let sans: { uris: string[]; dns: string[] } = { uris: [], dns: [] };
  if (parts.attributes !== undefined) {
    try {
      sans = readRequestedSans(der, parts.attributes);
    } catch (err) {
      throw malformed("CSR attributes are malformed", err);
    }
  }
  return {
    der,
    publicKey,
    keyType,
    spkiDer: parts.spkiDer,
    signatureAlgorithm: parts.signatureAlgorithm,
    uris: sans.uris,
    dnsNames: sans.dns,
  };
}

/**
 * Checks a CSR's proof of possession: its signature verifies with its own public key.
 * Accepts DER, PEM or a {@link ParsedCsr}. Throws `pki.csr.signature` (invalid_argument) when
 * it does not, plus the errors of {@link parseCsr}.
 */
export function verifyCsr(csr: Uint8Array | string | ParsedCsr): void {
  const der = typeof csr === "string" || csr instanceof Uint8Array ? toDer(csr) : csr.der;
  verifyCsrParts(readCsrParts(der));
}

function sanExtension(spiffeId: string | undefined, dnsNames: readonly string[]): Buffer {
  const names: Buffer[] = [];
  if (spiffeId !== undefined) names.push(tlv(0x86, Buffer.from(spiffeId, "latin1")));
  for (const d of dnsNames) names.push(tlv(0x82, Buffer.from(d, "latin1")));
  return seq(oid(OID.subjectAltName), octetString(seq(...names)));
}

/**
 * Creates a PKCS#10 CSR (DER) with an empty subject, signed by `privateKey` with the hash
 * matching its type (P-256/RSA → SHA-256, P-384 → SHA-384). SPIFFE ID and DNS names go in an
 * extensionRequest SAN. Throws `pki.key.unsupported` (invalid_argument).
 */
export function createCsr(params: CreateCsrParams): Promise<Uint8Array> {
  try {
    return Promise.resolve(buildCsr(params));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function buildCsr(params: CreateCsrParams): Uint8Array {
  const keyType = keyTypeOf(params.privateKey);
  const alg = signingAlgorithmFor(keyType);
  const dnsNames = params.dnsNames ?? [];
  const spki = params.publicKey.export({ type: "spki", format: "der" });
  const attrs =
    params.spiffeId === undefined && dnsNames.length === 0
      ? Buffer.alloc(0)
      : seq(oid(OID.extensionRequest), tlv(TAG.SET, seq(sanExtension(params.spiffeId, dnsNames))));
  const info = seq(smallInteger(0), seq(), spki, ctx(0, attrs, true));
  const algId = alg.nullParams ? seq(oid(alg.oid), NULL) : seq(oid(alg.oid));
  const signature = sign(alg.hash, info, params.privateKey);
  return new Uint8Array(seq(info, algId, bitString(signature)));
}
