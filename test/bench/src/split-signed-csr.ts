// The raw crypto limit the pki and ca benchmarks compare against verifies each CSR's own
// signature with node:crypto directly; this pulls the signed bytes and the signature out of the
// DER so that loop does no parsing of its own.

/** The signed part of a CSR and its signature, as `node:crypto` `verify` takes them. */
export interface SignedCsrParts {
  /** The DER of the certificationRequestInfo (the bytes the signature covers). */
  readonly signed: Buffer;
  /** The signature value (the BIT STRING contents without the unused-bits byte). */
  readonly signature: Buffer;
}

/**
 * Reads the certificationRequestInfo and signature out of a DER CSR for the raw-limit loops.
 * Assumes well-formed DER (as `@meshid/pki` `createCsr` writes) and does no checking.
 */
export function splitSignedCsr(der: Uint8Array): SignedCsrParts {
  // SEQUENCE { info SEQUENCE, alg SEQUENCE, BIT STRING }; lengths here are < 64 KiB.
  const headerLen = (b: Uint8Array, at: number): [number, number] => {
    const l = b[at + 1]!;
    if (l < 0x80) return [2, l];
    const n = l & 0x7f;
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[at + 2 + i]!;
    return [2 + n, len];
  };
  const [oh] = headerLen(der, 0);
  const [ih, il] = headerLen(der, oh);
  const infoEnd = oh + ih + il;
  const [ah, al] = headerLen(der, infoEnd);
  const sigAt = infoEnd + ah + al;
  const [sh, sl] = headerLen(der, sigAt);
  return {
    signed: Buffer.from(der.subarray(oh, infoEnd)),
    signature: Buffer.from(der.subarray(sigAt + sh + 1, sigAt + sh + sl)),
  };
}
