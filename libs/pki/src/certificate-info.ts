import { MeshidError } from "@meshid/errors";
import {
  children,
  content,
  decodeOid,
  decodeTime,
  DerError,
  expectTlv,
  raw,
  TAG,
  type Tlv,
} from "./der";
import { keyIdentifier, OID } from "./spki";

/** The parts of an X.509 certificate meshid's issuers and checks need, read from DER. */
export interface CertificateInfo {
  /** DER of the subject Name, byte for byte (becomes the issuer Name of what it signs). */
  readonly subjectNameDer: Uint8Array;
  /** DER of the SubjectPublicKeyInfo. */
  readonly spkiDer: Uint8Array;
  /** Start of validity (second precision). */
  readonly notBefore: Date;
  /** End of validity (second precision). */
  readonly notAfter: Date;
  /** basicConstraints, or undefined when the extension is absent. */
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLen?: number };
  /** The subjectKeyIdentifier, or the RFC 5280 method-1 identifier when absent. */
  readonly subjectKeyId: Uint8Array;
  /** URI SANs (for a SPIRE-style CA: its trust-domain ID, `spiffe://<td>`). */
  readonly uris: readonly string[];
}

function malformed(message: string, cause?: unknown): MeshidError {
  return new MeshidError("invalid_argument", "pki.certificate.malformed", message, { cause });
}

function readBasicConstraints(buf: Uint8Array, value: Tlv): { ca: boolean; pathLen?: number } {
  const s = expectTlv(buf, value.contentStart, TAG.SEQUENCE, value.end);
  let ca = false;
  let pathLen: number | undefined;
  for (const f of children(buf, s)) {
    if (f.tag === TAG.BOOLEAN) ca = buf[f.contentStart] !== 0;
    else if (f.tag === TAG.INTEGER) {
      let n = 0;
      for (let i = f.contentStart; i < f.end; i++) n = n * 256 + (buf[i] as number);
      pathLen = n;
    }
  }
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

/**
 * Reads subject, key, validity, basicConstraints and key identifier from certificate DER.
 * Throws `pki.certificate.malformed` (invalid_argument) for anything that is not an X.509 v3
 * certificate.
 */
export function readCertificateInfo(certDer: Uint8Array): CertificateInfo {
  try {
    const cert = expectTlv(certDer, 0, TAG.SEQUENCE);
    if (cert.end !== certDer.length) throw new DerError("trailing bytes after certificate");
    const tbs = expectTlv(certDer, cert.contentStart, TAG.SEQUENCE, cert.end);
    const f = children(certDer, tbs);
    let i = 0;
    if (f[i]?.tag === 0xa0) i++; // version
    const serial = f[i++];
    const sigAlg = f[i++];
    const issuer = f[i++];
    const validity = f[i++];
    const subject = f[i++];
    const spki = f[i++];
    if (
      serial?.tag !== TAG.INTEGER ||
      sigAlg?.tag !== TAG.SEQUENCE ||
      issuer?.tag !== TAG.SEQUENCE ||
      validity?.tag !== TAG.SEQUENCE ||
      subject?.tag !== TAG.SEQUENCE ||
      spki?.tag !== TAG.SEQUENCE
    ) {
      throw new DerError("unexpected TBSCertificate layout");
    }
    const times = children(certDer, validity);
    if (times.length !== 2) throw new DerError("bad Validity");
    const spkiDer = raw(certDer, spki);
    let basicConstraints: { ca: boolean; pathLen?: number } | undefined;
    let subjectKeyId: Uint8Array | undefined;
    const uris: string[] = [];
    for (; i < f.length; i++) {
      const t = f[i] as Tlv;
      if (t.tag !== 0xa3) continue;
      const exts = expectTlv(certDer, t.contentStart, TAG.SEQUENCE, t.end);
      for (const ext of children(certDer, exts)) {
        const parts = children(certDer, ext);
        const id = parts[0];
        const value = parts[parts.length - 1];
        if (id?.tag !== TAG.OID || value?.tag !== TAG.OCTET_STRING) {
          throw new DerError("bad Extension");
        }
        const name = decodeOid(content(certDer, id));
        if (name === OID.basicConstraints) basicConstraints = readBasicConstraints(certDer, value);
        if (name === OID.subjectKeyIdentifier) {
          const ki = expectTlv(certDer, value.contentStart, TAG.OCTET_STRING, value.end);
          subjectKeyId = content(certDer, ki);
        }
        if (name === OID.subjectAltName) {
          const names = expectTlv(certDer, value.contentStart, TAG.SEQUENCE, value.end);
          for (const gn of children(certDer, names)) {
            if (gn.tag === 0x86) uris.push(Buffer.from(content(certDer, gn)).toString("latin1"));
          }
        }
      }
    }
    return {
      subjectNameDer: raw(certDer, subject),
      spkiDer,
      notBefore: decodeTime(certDer, times[0] as Tlv),
      notAfter: decodeTime(certDer, times[1] as Tlv),
      ...(basicConstraints === undefined ? {} : { basicConstraints }),
      subjectKeyId: subjectKeyId ?? keyIdentifier(spkiDer),
      uris,
    };
  } catch (err) {
    if (err instanceof MeshidError) throw err;
    throw malformed("certificate is not valid X.509 DER", err);
  }
}
