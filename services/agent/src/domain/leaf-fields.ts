// What the SVID cache needs from a freshly signed leaf, read in one walk of its DER
// with no intermediate objects: @meshid/pki's readCertificateInfo builds a child list per
// constructed field, copies, Dates and regex matches (≈ 9 KB of garbage per leaf, most of a
// minting burst's young-generation traffic after the CSRs).
import { MeshidError } from "@meshid/errors";

/** Validity and authority of a leaf certificate. */
export interface LeafFields {
  /** notBefore, epoch milliseconds. */
  readonly notBeforeMs: number;
  /** notAfter, epoch milliseconds. */
  readonly notAfterMs: number;
  /** The authorityKeyIdentifier's keyIdentifier, lowercase hex (the signer's SKI). */
  readonly authorityId: string;
}

const TAG_SEQUENCE: number = 0x30;
const TAG_INTEGER: number = 0x02;
const TAG_OID: number = 0x06;
const TAG_OCTET_STRING: number = 0x04;
const TAG_BOOLEAN: number = 0x01;
const TAG_BIT_STRING: number = 0x03;
const TAG_UTC_TIME: number = 0x17;
const TAG_GENERALIZED_TIME: number = 0x18;
const TAG_VERSION: number = 0xa0;
const TAG_EXTENSIONS: number = 0xa3;
const TAG_KEY_IDENTIFIER: number = 0x80;
/** Content of the authorityKeyIdentifier OID 2.5.29.35. */
const AKI_OID = [0x55, 0x1d, 0x23] as const;

function malformed(message: string): MeshidError {
  return new MeshidError("invalid_argument", "agent.svid.malformed", message);
}

/**
 * A DER cursor over one buffer: `read()` parses the TLV at `offset` and leaves its tag and
 * content bounds in fields (no object per TLV).
 */
export class DerCursor {
  tag = 0;
  start = 0;
  end = 0;

  constructor(private readonly der: Uint8Array) {}

  /** Parses the TLV at `offset`, which must end by `limit`; returns its end. */
  read(offset: number, limit: number): number {
    const der = this.der;
    if (offset + 2 > limit) throw malformed("certificate DER is truncated");
    this.tag = der[offset] as number;
    let length = der[offset + 1] as number;
    let start = offset + 2;
    if (length & 0x80) {
      const n = length & 0x7f;
      if (n === 0 || n > 4 || start + n > limit)
        throw malformed("certificate DER has a bad length");
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + (der[start + i] as number);
      start += n;
    }
    const end = start + length;
    if (end > limit) throw malformed("certificate DER is truncated");
    this.start = start;
    this.end = end;
    return end;
  }

  /** Like {@link read}, and checks the tag. */
  expect(tag: number, offset: number, limit: number, what: string): number {
    const end = this.read(offset, limit);
    if (this.tag !== tag) throw malformed(`certificate ${what} has an unexpected tag`);
    return end;
  }
}

function digits(der: Uint8Array, at: number, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) {
    const d = (der[at + i] as number) - 0x30;
    if (d < 0 || d > 9) throw malformed("certificate time is not digits");
    n = n * 10 + d;
  }
  return n;
}

/** A UTCTime (YYMMDDhhmmssZ) or GeneralizedTime (YYYYMMDDhhmmssZ) as epoch ms. */
function readTime(der: Uint8Array, c: DerCursor): number {
  const length = c.end - c.start;
  let at = c.start;
  let year: number;
  if (c.tag === TAG_UTC_TIME && length === 13) {
    const yy = digits(der, at, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    at += 2;
  } else if (c.tag === TAG_GENERALIZED_TIME && length === 15) {
    year = digits(der, at, 4);
    at += 4;
  } else {
    throw malformed("certificate validity is not a UTCTime or GeneralizedTime");
  }
  if (der[c.end - 1] !== 0x5a) throw malformed("certificate time is not in UTC");
  return Date.UTC(
    year,
    digits(der, at, 2) - 1,
    digits(der, at + 2, 2),
    digits(der, at + 4, 2),
    digits(der, at + 6, 2),
    digits(der, at + 8, 2),
  );
}

/** The last keyIdentifier read and its hex (every leaf of one authority carries the same). */
let lastKeyId: Uint8Array = new Uint8Array(0);
let lastKeyIdHex = "";

function keyIdHex(der: Uint8Array, start: number, end: number): string {
  const length = end - start;
  if (length === lastKeyId.length) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (der[start + i] !== lastKeyId[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastKeyIdHex;
  }
  lastKeyId = der.slice(start, end);
  lastKeyIdHex = Buffer.from(lastKeyId.buffer, 0, length).toString("hex");
  return lastKeyIdHex;
}

/**
 * Reads the certificate and TBSCertificate headers and the version, and leaves `c` on the
 * serialNumber INTEGER (its content is `c.start`..`c.end`). Returns the end of the
 * TBSCertificate.
 */
function readToSerial(c: DerCursor, certDer: Uint8Array): number {
  const certEnd = c.expect(TAG_SEQUENCE, 0, certDer.length, "");
  if (certEnd !== certDer.length) throw malformed("trailing bytes after the certificate");
  const tbsEnd = c.expect(TAG_SEQUENCE, c.start, certEnd, "TBSCertificate");
  const offset = c.read(c.start, tbsEnd);
  if (c.tag === TAG_VERSION) c.read(offset, tbsEnd);
  if (c.tag !== TAG_INTEGER) throw malformed("certificate has no serial number");
  return tbsEnd;
}

/** Where a leaf's serial number and public key sit in its DER (byte offsets, end excluded). */
export interface LeafLayout {
  /** The serialNumber INTEGER's content (a leading 0x00 sign octet included, if any). */
  readonly serialStart: number;
  readonly serialEnd: number;
  /** The subjectPublicKey BIT STRING's bits, after its unused-bits octet (an EC point). */
  readonly publicKeyStart: number;
  readonly publicKeyEnd: number;
}

/**
 * Finds the serial number and the subject public key of a certificate in its DER.
 *
 * @throws MeshidError invalid_argument `agent.svid.malformed` when the DER is malformed up to
 *   the subjectPublicKeyInfo.
 */
export function readLeafLayout(certDer: Uint8Array): LeafLayout {
  const c = new DerCursor(certDer);
  const tbsEnd = readToSerial(c, certDer);
  const serialStart = c.start;
  const serialEnd = c.end;
  let offset = c.expect(TAG_SEQUENCE, serialEnd, tbsEnd, "signature algorithm");
  offset = c.expect(TAG_SEQUENCE, offset, tbsEnd, "issuer");
  offset = c.expect(TAG_SEQUENCE, offset, tbsEnd, "validity");
  offset = c.expect(TAG_SEQUENCE, offset, tbsEnd, "subject");
  const spkiEnd = c.expect(TAG_SEQUENCE, offset, tbsEnd, "subjectPublicKeyInfo");
  const afterAlgorithm = c.expect(TAG_SEQUENCE, c.start, spkiEnd, "key algorithm");
  c.expect(TAG_BIT_STRING, afterAlgorithm, spkiEnd, "subjectPublicKey");
  if (c.end === c.start || certDer[c.start] !== 0) {
    throw malformed("certificate subjectPublicKey has unused bits");
  }
  return { serialStart, serialEnd, publicKeyStart: c.start + 1, publicKeyEnd: c.end };
}

/**
 * The serial number of a certificate as lowercase hex, without sign octets (as the CA reports
 * it: `0a1b…`, never empty).
 *
 * @throws MeshidError invalid_argument `agent.svid.malformed` (see {@link readLeafLayout}).
 */
export function readLeafSerialHex(certDer: Uint8Array): string {
  const c = new DerCursor(certDer);
  readToSerial(c, certDer);
  let start = c.start;
  while (start < c.end - 1 && certDer[start] === 0) start++;
  return Buffer.from(certDer.buffer, certDer.byteOffset + start, c.end - start).toString("hex");
}

/**
 * Reads notBefore, notAfter and the authority key identifier of a leaf certificate in one walk
 * of its DER (nothing else is parsed or checked). The hex of the identifier is shared between
 * consecutive leaves of one authority.
 *
 * @throws MeshidError invalid_argument `agent.svid.malformed` when the DER is malformed, a
 *   time is not a valid UTCTime / GeneralizedTime, or the authorityKeyIdentifier (or its
 *   keyIdentifier) is absent.
 */
export function readLeafFields(certDer: Uint8Array): LeafFields {
  const c = new DerCursor(certDer);
  const tbsEnd = readToSerial(c, certDer);
  let offset = c.expect(TAG_SEQUENCE, c.end, tbsEnd, "signature algorithm");
  offset = c.expect(TAG_SEQUENCE, offset, tbsEnd, "issuer");
  const validityEnd = c.expect(TAG_SEQUENCE, offset, tbsEnd, "validity");
  offset = validityEnd;
  const afterNotBefore = c.read(c.start, validityEnd);
  const notBeforeMs = readTime(certDer, c);
  if (c.read(afterNotBefore, validityEnd) !== validityEnd)
    throw malformed("bad certificate validity");
  const notAfterMs = readTime(certDer, c);
  while (offset < tbsEnd) {
    offset = c.read(offset, tbsEnd);
    if (c.tag !== TAG_EXTENSIONS) continue;
    const extensionsEnd = c.expect(TAG_SEQUENCE, c.start, c.end, "extensions");
    let ext = c.start;
    while (ext < extensionsEnd) {
      const extEnd = c.expect(TAG_SEQUENCE, ext, extensionsEnd, "extension");
      ext = extEnd;
      const afterOid = c.expect(TAG_OID, c.start, extEnd, "extension ID");
      if (
        c.end - c.start !== AKI_OID.length ||
        certDer[c.start] !== AKI_OID[0] ||
        certDer[c.start + 1] !== AKI_OID[1] ||
        certDer[c.start + 2] !== AKI_OID[2]
      ) {
        continue;
      }
      let valueEnd = c.read(afterOid, extEnd);
      if (c.tag === TAG_BOOLEAN) valueEnd = c.read(valueEnd, extEnd); // critical flag
      if (c.tag !== TAG_OCTET_STRING) {
        throw malformed("authorityKeyIdentifier is not an OCTET STRING");
      }
      const akiEnd = c.expect(TAG_SEQUENCE, c.start, valueEnd, "authorityKeyIdentifier");
      let part = c.start;
      while (part < akiEnd) {
        part = c.read(part, akiEnd);
        if (c.tag === TAG_KEY_IDENTIFIER) {
          return { notBeforeMs, notAfterMs, authorityId: keyIdHex(certDer, c.start, c.end) };
        }
      }
      throw malformed("authorityKeyIdentifier has no keyIdentifier");
    }
  }
  throw malformed("certificate has no authorityKeyIdentifier");
}
