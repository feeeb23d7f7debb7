// The CA hot path: X509-SVIDs issued from CSRs (parse + proof-of-possession verify + build +
// sign) on one core, compared with the raw crypto limit (one ECDSA verify + one ECDSA sign per
// certificate with the same keys and data sizes).
import { X509Certificate, createPublicKey, sign, verify } from "node:crypto";
import {
  createCsr,
  createSelfSignedCa,
  createX509SvidIssuer,
  generateKeyPair,
  issueX509SvidGeneric,
  parseCsr,
  verifyCsr,
} from "@meshid/pki";
import type { Benchmark } from "../benchmark";
import { splitSignedCsr } from "../split-signed-csr";

/** Number of distinct pre-made CSRs the issuance loop cycles through. */
export const CSR_COUNT = 512;
/** Length of each measured phase, in milliseconds. */
export const PHASE_MS = 5_000;
/** Warm-up before each measured phase, in milliseconds. */
export const WARMUP_MS = 500;
/** Length of the (informational) generic-path phase, in milliseconds. */
export const GENERIC_PHASE_MS = 2_000;

/** Length of one interleaved slice, in milliseconds. */
export const SLICE_MS = 250;

/** Runs `step(i)` repeatedly for `ms` milliseconds; returns [operations, elapsed ms]. */
function runFor(ms: number, step: (i: number) => void, first: number): [number, number] {
  const start = performance.now();
  const deadline = start + ms;
  let n = 0;
  let now = start;
  while (now < deadline) {
    step(first + n++);
    now = performance.now();
  }
  return [n, now - start];
}

/**
 * Measures several loops for `ms` milliseconds each, interleaved in short slices so that
 * load from other processes on the machine hits all of them alike. Returns ops per second.
 */
function measureInterleaved(ms: number, steps: ((i: number) => void)[]): number[] {
  const ops = steps.map(() => 0);
  const elapsed = steps.map(() => 0);
  for (let t = 0; t < ms; t += SLICE_MS) {
    steps.forEach((step, k) => {
      const [n, e] = runFor(SLICE_MS, step, ops[k]!);
      ops[k]! += n;
      elapsed[k]! += e;
    });
  }
  return ops.map((n, k) => n / (elapsed[k]! / 1000));
}

async function measureAsync(ms: number, step: (i: number) => Promise<void>): Promise<number> {
  const start = performance.now();
  const deadline = start + ms;
  let n = 0;
  let now = start;
  while (now < deadline) {
    await step(n++);
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

/** The pki benchmark: fast X509-SVID issuance vs. the raw verify+sign limit. */
export const benchmark: Benchmark = {
  name: "pki",
  async run(ctx) {
    const now = new Date();
    const caKeys = await generateKeyPair("ec-p256");
    const ca = await createSelfSignedCa({
      keyPair: caKeys,
      trustDomain: "example.org",
      ttlSeconds: 30 * 24 * 3_600,
      now,
    });
    const issuer = createX509SvidIssuer({
      issuerCertDer: ca.certDer,
      issuerPrivateKey: caKeys.privateKey,
    });

    const csrCount = ctx.quick ? 8 : CSR_COUNT;
    const phaseMs = ctx.quick ? 3 * SLICE_MS : PHASE_MS;
    const warmupMs = ctx.quick ? SLICE_MS : WARMUP_MS;
    const genericMs = ctx.quick ? 50 : GENERIC_PHASE_MS;
    ctx.progress(`making ${csrCount} ec-p256 CSRs`);
    const csrs: Uint8Array[] = [];
    const ids: string[] = [];
    for (let i = 0; i < csrCount; i++) {
      const keys = await generateKeyPair("ec-p256");
      const spiffeId = `spiffe://example.org/ns/bench/sa/workload-${i}`;
      csrs.push(await createCsr({ ...keys, spiffeId }));
      ids.push(spiffeId);
    }

    // Sanity: what we measure produces certificates that verify under the CA.
    const sample = issuer.issueFromCsr(csrs[0]!, { spiffeId: ids[0]!, ttlSeconds: 3_600, now });
    const sampleCert = new X509Certificate(Buffer.from(sample.certDer));
    if (!sampleCert.verify(new X509Certificate(Buffer.from(ca.certDer)).publicKey)) {
      throw new Error("pki benchmark: issued certificate does not verify");
    }

    const issue = (i: number): void => {
      const k = i % csrCount;
      issuer.issueFromCsr(csrs[k]!, { spiffeId: ids[k]!, ttlSeconds: 3_600, now: new Date() });
    };

    // Raw limit: one verify of the same CSR signatures with the same keys (pre-imported as
    // KeyObjects, so the limit is generous) and one sign over data the size of a real
    // TBSCertificate with the CA key.
    const raw = csrs.map((der) => ({ ...splitSignedCsr(der), parsed: parseCsr(der) }));
    const tbsSized = Buffer.alloc(sample.certDer.length - 80, 0x5a);
    const rawStep = (i: number): void => {
      const r = raw[i % csrCount]!;
      if (!verify("sha256", r.signed, r.parsed.publicKey, r.signature)) {
        throw new Error("raw verify failed");
      }
      sign("sha256", tbsSized, caKeys.privateKey);
    };
    // The same plus importing each CSR's public key, as any issuer that receives a new key
    // must, by the cheapest route Node 20 offers (JWK: about one verify, because OpenSSL 3
    // validates the point on import; DER import costs about twice that). This is the floor
    // for CSR issuance; the ratio against it shows what our own code costs.
    const jwks = raw.map((r) => r.parsed.publicKey.export({ format: "jwk" }));
    const rawWithImportStep = (i: number): void => {
      const r = raw[i % csrCount]!;
      const key = createPublicKey({ key: jwks[i % csrCount]!, format: "jwk" });
      if (!verify("sha256", r.signed, key, r.signature)) throw new Error("raw verify failed");
      sign("sha256", tbsSized, caKeys.privateKey);
    };
    ctx.progress(`warm-up ${warmupMs} ms`);
    measureInterleaved(warmupMs, [issue, rawStep, rawWithImportStep]);
    ctx.progress(
      `fast issuance from CSRs vs raw limit, ${phaseMs} ms each, interleaved in ${SLICE_MS} ms slices`,
    );
    const [pkiIssuedPerSecond, rawLimitPerSecond, rawLimitWithKeyImportPerSecond] =
      measureInterleaved(phaseMs, [issue, rawStep, rawWithImportStep]) as [number, number, number];

    ctx.progress(`generic (@peculiar/x509) issuance for ${genericMs} ms`);
    const genericIssuedPerSecond = await measureAsync(genericMs, async (i) => {
      const k = i % csrCount;
      verifyCsr(csrs[k]!);
      await issueX509SvidGeneric({
        issuer: { certDer: ca.certDer, privateKey: caKeys.privateKey },
        spiffeId: ids[k]!,
        publicKey: parseCsr(csrs[k]!).spkiDer,
        ttlSeconds: 3_600,
        now: new Date(),
      });
    });

    const round = (n: number): number => Math.round(n);
    const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;
    return {
      keyType: "ec-p256",
      csrs: csrCount,
      seconds: phaseMs / 1000,
      pkiIssuedPerSecond: round(pkiIssuedPerSecond),
      rawLimitPerSecond: round(rawLimitPerSecond),
      pkiIssuanceRatio: ratio(pkiIssuedPerSecond, rawLimitPerSecond),
      rawLimitWithKeyImportPerSecond: round(rawLimitWithKeyImportPerSecond),
      pkiIssuanceRatioWithKeyImport: ratio(pkiIssuedPerSecond, rawLimitWithKeyImportPerSecond),
      genericIssuedPerSecond: round(genericIssuedPerSecond),
      certificateBytes: sample.certDer.length,
    };
  },
};
