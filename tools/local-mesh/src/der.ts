// DER helpers for the Workload API's wire format: concatenated certificates and PKCS#8 keys
// turned into the PEM files NGINX reads.
import { X509Certificate } from "node:crypto";

/**
 * Splits concatenated DER certificates (the Workload API's `x509_svid` and `bundle` fields)
 * into one buffer per certificate by reading each outer SEQUENCE's length.
 *
 * @throws Error when the bytes are not a sequence of DER SEQUENCEs.
 */
export function splitDerCertificates(der: Uint8Array): Buffer[] {
  const buf = Buffer.from(der);
  const certs: Buffer[] = [];
  let offset = 0;
  while (offset < buf.length) {
    if (buf[offset] !== 0x30 || offset + 2 > buf.length) {
      throw new Error(`not a DER SEQUENCE at byte ${offset}`);
    }
    const first = buf[offset + 1]!;
    let length: number;
    let header: number;
    if (first < 0x80) {
      length = first;
      header = 2;
    } else {
      const count = first & 0x7f;
      if (count === 0 || count > 4 || offset + 2 + count > buf.length) {
        throw new Error(`bad DER length at byte ${offset}`);
      }
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + buf[offset + 2 + i]!;
      header = 2 + count;
    }
    const end = offset + header + length;
    if (end > buf.length) throw new Error(`truncated DER certificate at byte ${offset}`);
    certs.push(buf.subarray(offset, end));
    offset = end;
  }
  return certs;
}

function pemBlock(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Concatenated DER certificates as concatenated PEM blocks. */
export function derCertificatesToPem(der: Uint8Array): string {
  return splitDerCertificates(der)
    .map((cert) => pemBlock("CERTIFICATE", cert))
    .join("");
}

/** A PKCS#8 DER private key as a PEM block. */
export function pkcs8DerToPem(der: Uint8Array): string {
  return pemBlock("PRIVATE KEY", der);
}

/** What the summary shows of a certificate. */
export interface CertificateFacts {
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** URI SANs (`spiffe://…`). */
  readonly uris: readonly string[];
}

/** Reads serial, validity and URI SANs of the first certificate of `pem`. */
export function certificateFacts(pem: string): CertificateFacts {
  const cert = new X509Certificate(pem);
  const uris = (cert.subjectAltName ?? "")
    .split(", ")
    .filter((san) => san.startsWith("URI:"))
    .map((san) => san.slice("URI:".length));
  return {
    serial: cert.serialNumber,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    uris,
  };
}
