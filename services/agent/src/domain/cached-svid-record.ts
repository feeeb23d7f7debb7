import type { CachedSvid } from "./types";

const NO_INTERMEDIATES: readonly Uint8Array[] = Object.freeze([]);

/** Fields of a {@link CachedSvidRecord}: a CachedSvid with its times in epoch milliseconds. */
export interface CachedSvidRecordInit extends Omit<
  CachedSvid,
  "notBefore" | "notAfter" | "rotateAt"
> {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly rotateAtMs: number;
  /**
   * The certificates after the leaf as a shared array (the same for every SVID of an
   * authority); when absent they are taken from `certChainDer`.
   */
  readonly intermediates?: readonly Uint8Array[];
}

/**
 * A cached SVID that keeps its three times as numbers and builds the `Date`s on access: a V8
 * Date costs ~110 bytes, so three per SVID were a fifth of the cache's memory. Getters live on
 * the prototype (no per-instance closures); every access returns a fresh Date. Likewise the
 * leaf and the key live in one allocation (one Uint8Array instead of two, plus the chain array),
 * and `certChainDer` / `privateKeyPkcs8Der` are views built on access; the intermediates are
 * kept as given (pass one shared array for SVIDs of the same authority).
 */
export class CachedSvidRecord implements CachedSvid {
  readonly entryId: string;
  readonly spiffeId: string;
  readonly hint: string;
  /** The leaf DER followed by the PKCS#8 DER key. */
  private readonly leafAndKey: Uint8Array;
  private readonly leafLength: number;
  /** Certificates after the leaf (shared between SVIDs of one authority when possible). */
  private readonly intermediates: readonly Uint8Array[];
  readonly serialHex: string;
  readonly authorityId: string;
  readonly entryRevision: number;
  /** notBefore in epoch ms. */
  readonly notBeforeMs: number;
  /** notAfter in epoch ms. */
  readonly notAfterMs: number;
  /** rotateAt in epoch ms. */
  readonly rotateAtMs: number;

  constructor(init: CachedSvidRecordInit) {
    this.entryId = init.entryId;
    this.spiffeId = init.spiffeId;
    this.hint = init.hint;
    const [leaf, ...rest] = init.certChainDer;
    const key = init.privateKeyPkcs8Der;
    const leafLength = leaf?.byteLength ?? 0;
    this.leafAndKey = new Uint8Array(leafLength + key.byteLength);
    if (leaf !== undefined) this.leafAndKey.set(leaf, 0);
    this.leafAndKey.set(key, leafLength);
    this.leafLength = leafLength;
    this.intermediates =
      init.intermediates ?? (rest.length === 0 ? NO_INTERMEDIATES : Object.freeze(rest));
    this.serialHex = init.serialHex;
    this.authorityId = init.authorityId;
    this.entryRevision = init.entryRevision;
    this.notBeforeMs = init.notBeforeMs;
    this.notAfterMs = init.notAfterMs;
    this.rotateAtMs = init.rotateAtMs;
  }

  /** Leaf first, then the intermediates (fresh array and leaf view on each access). */
  get certChainDer(): readonly Uint8Array[] {
    if (this.leafLength === 0) return this.intermediates;
    return [this.leafAndKey.subarray(0, this.leafLength), ...this.intermediates];
  }

  /** PKCS#8 DER (a view on each access). */
  get privateKeyPkcs8Der(): Uint8Array {
    return this.leafAndKey.subarray(this.leafLength);
  }

  /** Start of validity of the leaf. */
  get notBefore(): Date {
    return new Date(this.notBeforeMs);
  }

  /** End of validity of the leaf. */
  get notAfter(): Date {
    return new Date(this.notAfterMs);
  }

  /** When the agent re-mints it. */
  get rotateAt(): Date {
    return new Date(this.rotateAtMs);
  }

  /** A plain-object form (JSON, logs): the key is left out. */
  toJSON(): Record<string, unknown> {
    return {
      entryId: this.entryId,
      spiffeId: this.spiffeId,
      serialHex: this.serialHex,
      notBefore: this.notBefore.toISOString(),
      notAfter: this.notAfter.toISOString(),
      rotateAt: this.rotateAt.toISOString(),
      authorityId: this.authorityId,
      entryRevision: this.entryRevision,
    };
  }
}
