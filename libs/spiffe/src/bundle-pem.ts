import { type Bundle, type BundleFromCertificatesOptions, createBundle } from "./bundle";
import { SpiffeErrorCode, invalid } from "./errors";
import { type TrustDomain } from "./trust-domain";

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/** Encodes DER bytes as one PEM block with the given label, 64-column base64, trailing newline. */
export function derToPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}${lines.length > 0 ? "\n" : ""}-----END ${label}-----\n`;
}

/** Returns the bundle's X.509 authorities as concatenated PEM `CERTIFICATE` blocks. */
export function bundleToPem(b: Bundle): string {
  return b.x509Authorities.map((der) => derToPem("CERTIFICATE", der)).join("");
}

function pemError(rule: string, reason: string, extra: Record<string, number> = {}) {
  return invalid(SpiffeErrorCode.bundleInvalid, rule, `invalid PEM trust bundle: ${reason}`, extra);
}

/**
 * Parses PEM text holding only `CERTIFICATE` blocks (whitespace between them allowed) into a
 * bundle. Empty or whitespace-only text gives a bundle without X.509 authorities.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.bundle.invalid` with `details.rule`
 *   `pem-garbage` (text outside blocks or an unterminated block), `pem-label` (a block other
 *   than CERTIFICATE, e.g. a private key), `pem-encoding` (bad base64), `certificate`
 *   (not exactly one valid certificate per block), and those of `createBundle`.
 */
export function bundleFromPem(
  trustDomain: TrustDomain | string,
  pem: string,
  opts: BundleFromCertificatesOptions = {},
): Bundle {
  const certs: Uint8Array[] = [];
  let last = 0;
  let index = 0;
  for (const m of pem.matchAll(PEM_BLOCK)) {
    const start = m.index;
    if (pem.slice(last, start).trim() !== "") {
      throw pemError("pem-garbage", `unexpected text before block ${index}`, { index });
    }
    const [whole, label = "", body = "", endLabel = ""] = m;
    if (label !== endLabel) {
      throw pemError("pem-garbage", `block ${index} begins "${label}" but ends "${endLabel}"`, {
        index,
      });
    }
    if (label !== "CERTIFICATE") {
      throw pemError(
        "pem-label",
        `block ${index} is "${label}", only CERTIFICATE blocks are allowed`,
        { index },
      );
    }
    const compact = body.replace(/\s+/g, "");
    if (!BASE64_BODY.test(compact) || compact.length % 4 !== 0 || compact.length === 0) {
      throw pemError("pem-encoding", `block ${index} is not valid base64`, { index });
    }
    certs.push(new Uint8Array(Buffer.from(compact, "base64")));
    last = start + whole.length;
    index++;
  }
  if (pem.slice(last).trim() !== "") {
    throw pemError(
      "pem-garbage",
      index === 0 ? "no PEM block found" : `unexpected text after block ${index - 1}`,
      { index },
    );
  }
  return createBundle({ trustDomain, x509Authorities: certs, ...opts });
}
