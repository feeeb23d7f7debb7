import type { CachedSvid } from "./types";

/** Fields of a {@link CachedSvidRecord}: a CachedSvid with its times in epoch milliseconds. */
export interface CachedSvidRecordInit extends Omit<
  CachedSvid,
  "notBefore" | "notAfter" | "rotateAt"
> {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly rotateAtMs: number;
}

/**
 * A cached SVID that keeps its three times as numbers and builds the `Date`s on access: a V8
 * Date costs ~110 bytes, so three per SVID were a fifth of the cache's memory. Getters live on
 * the prototype (no per-instance closures); every access returns a fresh Date.
 */
export class CachedSvidRecord implements CachedSvid {
  readonly entryId: string;
  readonly spiffeId: string;
  readonly hint: string;
  readonly certChainDer: readonly Uint8Array[];
  readonly privateKeyPkcs8Der: Uint8Array;
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
    this.certChainDer = init.certChainDer;
    this.privateKeyPkcs8Der = init.privateKeyPkcs8Der;
    this.serialHex = init.serialHex;
    this.authorityId = init.authorityId;
    this.entryRevision = init.entryRevision;
    this.notBeforeMs = init.notBeforeMs;
    this.notAfterMs = init.notAfterMs;
    this.rotateAtMs = init.rotateAtMs;
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
