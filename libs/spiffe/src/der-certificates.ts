import { SpiffeErrorCode, invalid } from "./errors";

const SEQUENCE_TAG = 0x30;

/**
 * Splits a buffer of concatenated DER certificates (the Workload API form) into one buffer per
 * certificate by walking the outer ASN.1 SEQUENCE lengths. Returns copies; an empty buffer gives
 * an empty list. Does not parse the certificates themselves.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.der.invalid` with `details.rule`
 *   `der-tag` (not a SEQUENCE), `der-length` (indefinite or oversized length) or
 *   `der-truncated` (length runs past the end, including trailing garbage), and
 *   `details.offset`.
 */
export function splitDerCertificates(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const fail = (rule: string, reason: string) =>
      invalid(
        SpiffeErrorCode.derInvalid,
        rule,
        `invalid DER certificates at byte ${pos}: ${reason}`,
        { offset: pos },
      );
    if (buf[pos] !== SEQUENCE_TAG) {
      throw fail("der-tag", "expected an ASN.1 SEQUENCE (0x30)");
    }
    if (pos + 1 >= buf.length) {
      throw fail("der-truncated", "length is missing");
    }
    const first = buf[pos + 1] ?? 0;
    let header = 2;
    let length: number;
    if (first < 0x80) {
      length = first;
    } else {
      const octets = first & 0x7f;
      if (octets === 0) throw fail("der-length", "indefinite length is not DER");
      if (octets > 4) throw fail("der-length", `length of ${octets} octets is too large`);
      if (pos + 2 + octets > buf.length) throw fail("der-truncated", "length is cut short");
      length = 0;
      for (let i = 0; i < octets; i++) {
        length = length * 256 + (buf[pos + 2 + i] ?? 0);
      }
      header += octets;
    }
    const end = pos + header + length;
    if (end > buf.length) {
      throw fail(
        "der-truncated",
        `SEQUENCE of ${length} bytes runs past the end of the ${buf.length}-byte buffer`,
      );
    }
    out.push(buf.slice(pos, end));
    pos = end;
  }
  return out;
}

/** Concatenates DER buffers into one (the Workload API's certificate list form). */
export function concatDer(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}
