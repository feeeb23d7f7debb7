import { MeshidError } from "@meshid/errors";

/** Encodes DER bytes as one PEM block with the given label (64-column base64). */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Encodes DER certificates as concatenated PEM `CERTIFICATE` blocks, in order. */
export function certificatesToPem(certsDer: readonly Uint8Array[]): string {
  return certsDer.map((der) => encodePem("CERTIFICATE", der)).join("");
}

/**
 * Decodes every PEM block with the given label from `pem`, in order. Throws `pki.pem.malformed`
 * (invalid_argument) when there is none or one is not valid base64.
 */
export function decodePem(pem: string, label: string): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, "g");
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(re)) {
    const body = (m[1] ?? "").replace(/\s+/g, "");
    const der = Buffer.from(body, "base64");
    if (
      body.length === 0 ||
      der.toString("base64").replace(/=+$/, "") !== body.replace(/=+$/, "")
    ) {
      throw new MeshidError(
        "invalid_argument",
        "pki.pem.malformed",
        `malformed PEM ${label} block`,
      );
    }
    out.push(new Uint8Array(der));
  }
  if (out.length === 0) {
    throw new MeshidError("invalid_argument", "pki.pem.malformed", `no PEM ${label} block found`);
  }
  return out;
}

/** Decodes concatenated PEM `CERTIFICATE` blocks to DER, in order. */
export function pemToCertificates(pem: string): Uint8Array[] {
  return decodePem(pem, "CERTIFICATE");
}
