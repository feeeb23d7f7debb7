import { MeshidError } from "@meshid/errors";

/** DER of the authorityKeyIdentifier extension OID 2.5.29.35 (without tag and length). */
const AKI_OID = [0x55, 0x1d, 0x23];

interface Tlv {
  readonly tag: number;
  /** Offset of the first content byte. */
  readonly start: number;
  /** Offset just past the last content byte. */
  readonly end: number;
}

function malformed(message: string): MeshidError {
  return new MeshidError("invalid_argument", "agent.svid.malformed", message);
}

function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw malformed("certificate DER is truncated");
  const tag = der[offset] as number;
  let length = der[offset + 1] as number;
  let start = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw malformed("certificate DER has a bad length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[start + i] as number);
    start += n;
  }
  const end = start + length;
  if (end > limit) throw malformed("certificate DER is truncated");
  return { tag, start, end };
}

function toHex(der: Uint8Array, start: number, end: number): string {
  return Buffer.from(der.buffer, der.byteOffset + start, end - start).toString("hex");
}

/**
 * Reads the keyIdentifier of a certificate's authorityKeyIdentifier extension (the SKI of the
 * authority that signed it) as lowercase hex, walking the DER without parsing the rest.
 *
 * @throws MeshidError invalid_argument `agent.svid.malformed` when the DER is malformed or the
 *   extension (or its keyIdentifier) is absent.
 */
export function readAuthorityKeyId(certDer: Uint8Array): string {
  const cert = readTlv(certDer, 0, certDer.length);
  const tbs = readTlv(certDer, cert.start, cert.end);
  let offset = tbs.start;
  while (offset < tbs.end) {
    const field = readTlv(certDer, offset, tbs.end);
    offset = field.end;
    if (field.tag !== 0xa3) continue; // [3] EXPLICIT Extensions
    const extensions = readTlv(certDer, field.start, field.end);
    let extOffset = extensions.start;
    while (extOffset < extensions.end) {
      const ext = readTlv(certDer, extOffset, extensions.end);
      extOffset = ext.end;
      const oid = readTlv(certDer, ext.start, ext.end);
      if (oid.tag !== 0x06 || oid.end - oid.start !== AKI_OID.length) continue;
      if (!AKI_OID.every((b, i) => certDer[oid.start + i] === b)) continue;
      let value = readTlv(certDer, oid.end, ext.end);
      if (value.tag === 0x01) value = readTlv(certDer, value.end, ext.end); // critical flag
      if (value.tag !== 0x04) throw malformed("authorityKeyIdentifier is not an OCTET STRING");
      const aki = readTlv(certDer, value.start, value.end);
      let inner = aki.start;
      while (inner < aki.end) {
        const part = readTlv(certDer, inner, aki.end);
        inner = part.end;
        if (part.tag === 0x80) return toHex(certDer, part.start, part.end); // [0] keyIdentifier
      }
      throw malformed("authorityKeyIdentifier has no keyIdentifier");
    }
  }
  throw malformed("certificate has no authorityKeyIdentifier");
}
