// A workload's key pair and PKCS#10 request, made with as few allocations as the minting of
// thousands of SVIDs allows. EC keys are generated synchronously on the calling thread: the
// asynchronous form runs on libuv's thread pool, where every pool thread grows its own malloc
// arena (≈ 0.5 MiB each, never returned) for work that takes tens of microseconds. The CSR is
// written straight into one exact-size buffer (its signed part into a reused scratch buffer)
// instead of a tree of concatenated Buffers.
import { generateKeyPairSync, sign, type KeyObject, type PrivateKeyInput } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { generateKeyPair, type KeyType } from "@meshid/pki";

/** A workload key and the CSR that asks the CA for its SVID. */
export interface WorkloadKeyAndCsr {
  /** PKCS#10 DER: empty subject, the SPIFFE ID as a URI SAN in an extensionRequest. */
  readonly csrDer: Uint8Array;
  /** The private key, PKCS#8 DER. */
  readonly privateKeyPkcs8Der: Uint8Array;
}

interface KeyProfile {
  /** node:crypto digest of the CSR signature. */
  readonly hash: "sha256" | "sha384";
  /** DER of the CSR's signature AlgorithmIdentifier. */
  readonly algorithmIdDer: Uint8Array;
  /** EC curve for the synchronous generator; undefined = asynchronous (RSA: slow to make). */
  readonly namedCurve?: string;
}

/** DER from hex (readable constants, one allocation at load). */
function der(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

/** SEQUENCE { sha256WithRSAEncryption, NULL }. */
const SHA256_WITH_RSA = der("300d06092a864886f70d01010b0500");

const KEY_PROFILES: Readonly<Record<KeyType, KeyProfile>> = {
  // SEQUENCE { ecdsa-with-SHA256 }
  "ec-p256": {
    hash: "sha256",
    algorithmIdDer: der("300a06082a8648ce3d040302"),
    namedCurve: "prime256v1",
  },
  // SEQUENCE { ecdsa-with-SHA384 }
  "ec-p384": {
    hash: "sha384",
    algorithmIdDer: der("300a06082a8648ce3d040303"),
    namedCurve: "secp384r1",
  },
  "rsa-2048": { hash: "sha256", algorithmIdDer: SHA256_WITH_RSA },
  "rsa-4096": { hash: "sha256", algorithmIdDer: SHA256_WITH_RSA },
};

/** OBJECT IDENTIFIER 1.2.840.113549.1.9.14 (extensionRequest), with tag and length. */
const EXTENSION_REQUEST_OID = Uint8Array.of(
  0x06,
  0x09,
  0x2a,
  0x86,
  0x48,
  0x86,
  0xf7,
  0x0d,
  0x01,
  0x09,
  0x0e,
);
/** OBJECT IDENTIFIER 2.5.29.17 (subjectAltName), with tag and length. */
const SUBJECT_ALT_NAME_OID = Uint8Array.of(0x06, 0x03, 0x55, 0x1d, 0x11);
/** INTEGER 0 (version) and an empty SEQUENCE (subject). */
const VERSION_AND_EMPTY_SUBJECT = Uint8Array.of(0x02, 0x01, 0x00, 0x30, 0x00);

/** Bytes of a DER header (tag + length) for `length` content bytes. */
function headerLength(length: number): number {
  return length < 0x80 ? 2 : length < 0x100 ? 3 : length < 0x10000 ? 4 : 5;
}

/** Total bytes of a TLV with `length` content bytes. */
function tlvLength(length: number): number {
  return headerLength(length) + length;
}

/** Writes a DER header at `at`; returns the offset of the content. */
function writeHeader(buf: Uint8Array, at: number, tag: number, length: number): number {
  buf[at++] = tag;
  if (length < 0x80) {
    buf[at++] = length;
  } else if (length < 0x100) {
    buf[at++] = 0x81;
    buf[at++] = length;
  } else if (length < 0x10000) {
    buf[at++] = 0x82;
    buf[at++] = length >>> 8;
    buf[at++] = length & 0xff;
  } else {
    buf[at++] = 0x83;
    buf[at++] = length >>> 16;
    buf[at++] = (length >>> 8) & 0xff;
    buf[at++] = length & 0xff;
  }
  return at;
}

/** Reused for the signed part of each CSR (only the signature and the CSR itself are new). */
let scratch = Buffer.allocUnsafeSlow(1024);

/**
 * The certificationRequestInfo of a CSR in the scratch buffer (a view, valid until the next
 * call): version 0, an empty subject, `spkiDer`, and an extensionRequest attribute holding a
 * subjectAltName extension with `spiffeId` as its one URI.
 */
function writeRequestInfo(spkiDer: Uint8Array, spiffeId: string): Uint8Array {
  const uriLength = Buffer.byteLength(spiffeId, "latin1");
  const namesLength = tlvLength(uriLength); // GeneralNames content: [6] uri
  const octetLength = tlvLength(namesLength); // OCTET STRING content: GeneralNames
  const extensionLength = SUBJECT_ALT_NAME_OID.length + tlvLength(octetLength);
  const extensionsLength = tlvLength(extensionLength);
  const setLength = tlvLength(extensionsLength);
  const attributeLength = EXTENSION_REQUEST_OID.length + tlvLength(setLength);
  const attributesLength = tlvLength(attributeLength); // [0] content: one Attribute
  const infoLength =
    VERSION_AND_EMPTY_SUBJECT.length + spkiDer.length + tlvLength(attributesLength);
  const total = tlvLength(infoLength);
  if (scratch.length < total) scratch = Buffer.allocUnsafeSlow(total * 2);
  const buf = scratch;
  let at = writeHeader(buf, 0, 0x30, infoLength);
  buf.set(VERSION_AND_EMPTY_SUBJECT, at);
  at += VERSION_AND_EMPTY_SUBJECT.length;
  buf.set(spkiDer, at);
  at += spkiDer.length;
  at = writeHeader(buf, at, 0xa0, attributesLength);
  at = writeHeader(buf, at, 0x30, attributeLength);
  buf.set(EXTENSION_REQUEST_OID, at);
  at += EXTENSION_REQUEST_OID.length;
  at = writeHeader(buf, at, 0x31, setLength);
  at = writeHeader(buf, at, 0x30, extensionsLength);
  at = writeHeader(buf, at, 0x30, extensionLength);
  buf.set(SUBJECT_ALT_NAME_OID, at);
  at += SUBJECT_ALT_NAME_OID.length;
  at = writeHeader(buf, at, 0x04, octetLength);
  at = writeHeader(buf, at, 0x30, namesLength);
  at = writeHeader(buf, at, 0x86, uriLength);
  at += buf.write(spiffeId, at, "latin1");
  if (at !== total) {
    throw new MeshidError("internal", "agent.csr.length", "CSR length miscomputed");
  }
  return buf.subarray(0, total);
}

/**
 * A PKCS#10 CSR for `spiffeId` (a URI SAN in an extensionRequest, empty subject), signed by
 * `privateKey`, in one exact-size buffer.
 */
export function encodeWorkloadCsr(
  keyType: KeyType,
  spkiDer: Uint8Array,
  privateKey: KeyObject | PrivateKeyInput,
  spiffeId: string,
): Uint8Array {
  const profile = KEY_PROFILES[keyType];
  const info = writeRequestInfo(spkiDer, spiffeId);
  const signature = sign(profile.hash, info, privateKey);
  const bitStringLength = 1 + signature.length;
  const contentLength = info.length + profile.algorithmIdDer.length + tlvLength(bitStringLength);
  const csr = Buffer.allocUnsafe(tlvLength(contentLength));
  let at = writeHeader(csr, 0, 0x30, contentLength);
  csr.set(info, at);
  at += info.length;
  csr.set(profile.algorithmIdDer, at);
  at += profile.algorithmIdDer.length;
  at = writeHeader(csr, at, 0x03, bitStringLength);
  csr[at++] = 0; // no unused bits
  csr.set(signature, at);
  return csr;
}

function unsupported(keyType: string): MeshidError {
  return new MeshidError(
    "invalid_argument",
    "pki.key.unsupported",
    `unsupported key type ${JSON.stringify(keyType)}`,
  );
}

/**
 * Generates a workload key of `keyType` and its CSR for `spiffeId`. EC keys are made
 * synchronously (tens of microseconds; the promise is already settled), RSA keys on the
 * thread pool.
 *
 * @throws MeshidError invalid_argument `pki.key.unsupported` for an unknown key type.
 */
export async function generateWorkloadKeyAndCsr(
  keyType: KeyType,
  spiffeId: string,
): Promise<WorkloadKeyAndCsr> {
  const profile = Object.hasOwn(KEY_PROFILES, keyType) ? KEY_PROFILES[keyType] : undefined;
  if (profile === undefined) throw unsupported(keyType);
  if (profile.namedCurve !== undefined) {
    // DER straight out of the generator: no KeyObjects, whose native keys live until a GC.
    const pair = generateKeyPairSync("ec", {
      namedCurve: profile.namedCurve,
      publicKeyEncoding: { type: "spki", format: "der" },
      privateKeyEncoding: { type: "pkcs8", format: "der" },
    });
    const privateKey = { key: pair.privateKey, format: "der", type: "pkcs8" } as const;
    return {
      csrDer: encodeWorkloadCsr(keyType, pair.publicKey, privateKey, spiffeId),
      privateKeyPkcs8Der: pair.privateKey,
    };
  }
  const pair = await generateKeyPair(keyType);
  return {
    csrDer: encodeWorkloadCsr(
      keyType,
      pair.publicKey.export({ type: "spki", format: "der" }),
      pair.privateKey,
      spiffeId,
    ),
    privateKeyPkcs8Der: pair.privateKey.export({ type: "pkcs8", format: "der" }),
  };
}
