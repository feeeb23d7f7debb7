import { MeshidError } from "@meshid/errors";
import { joinFlat } from "./intern";
import { loadKey, storeKey, type KeyForm } from "./key-form";
import { readLeafLayout, readLeafSerialHex } from "./leaf-fields";
import { loadLeaf, storeLeaf, type LeafForm } from "./leaf-form";
import type { CachedSvid } from "./types";

const NO_INTERMEDIATES: readonly Uint8Array[] = Object.freeze([]);

/**
 * Epoch ms (2020-01-01T00:00:00Z) the stored notBefore counts from: seconds since then stay
 * below 2^30 (V8's small-integer range) until 2054. Times outside still work (heap numbers).
 */
export const TIME_BASE_MS = Date.UTC(2020, 0, 1);

/**
 * `n` as a 32-bit integer when it is one, which V8 stores in the object itself: the same value
 * computed in floating point (a difference of epoch milliseconds, a Math.floor) may otherwise
 * be stored as a 16-byte heap number (seen in heap snapshots: two per cached SVID).
 */
function smallInteger(n: number): number {
  return n === (n | 0) ? n | 0 : n;
}

/** Fields of a {@link CachedSvidRecord}: a CachedSvid with its times in epoch milliseconds. */
export interface CachedSvidRecordInit extends Omit<
  CachedSvid,
  "notBefore" | "notAfter" | "rotateAt" | "serialHex"
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
 * leaf and the key are kept together as one Latin-1 string (one byte per byte, in V8's heap:
 * no ArrayBuffer, backing store and malloc block per SVID, and the garbage collector compacts
 * it, where malloc'd blocks of long-lived SVIDs kept the allocator's free pages from being
 * returned); `certChainDer` / `privateKeyPkcs8Der` are fresh Buffers built on access (the
 * Workload API copies them into its response anyway). Of the leaf only the TLVs of its own
 * are kept (see `leaf-form.ts`: the rest is shared by the leaves of its authority), of an EC
 * key only the private scalar (see `key-form.ts`: the rest is its curve's fixed bytes and the
 * leaf's public point), and the serial number is read from the leaf on access. The intermediates are kept as given
 * (pass one shared array for SVIDs of the same authority).
 */
export class CachedSvidRecord implements CachedSvid {
  readonly entryId: string;
  readonly spiffeId: string;
  readonly hint: string;
  /**
   * The stored leaf (its own TLVs, or its whole DER) followed by the stored key (scalar or whole
   * PKCS#8), one character per byte.
   */
  private readonly leafAndKey: string;
  private readonly leafLength: number;
  /** What the leaf shares with the other leaves of its authority (undefined: stored whole). */
  private readonly leafForm: LeafForm | undefined;
  /** How the key is stored (undefined: whole). */
  private readonly keyForm: KeyForm | undefined;
  /** Certificates after the leaf (shared between SVIDs of one authority when possible). */
  private readonly intermediates: readonly Uint8Array[];
  readonly authorityId: string;
  readonly entryRevision: number;
  /**
   * notBefore as seconds after {@link TIME_BASE_MS}, and the other two times as offsets from
   * it: small integers V8 keeps in the object itself, where epoch milliseconds need a 16-byte
   * heap number each.
   */
  private readonly notBeforeSeconds: number;
  /** notAfter − notBefore, in ms. */
  private readonly lifetimeMs: number;
  /** rotateAt − notBefore, in ms. */
  private readonly rotateAfterMs: number;

  /**
   * @throws MeshidError invalid_argument `agent.svid.malformed` when the chain has no leaf or
   *   the leaf's DER is malformed up to its public key.
   */
  constructor(init: CachedSvidRecordInit) {
    this.entryId = init.entryId;
    this.spiffeId = init.spiffeId;
    this.hint = init.hint;
    const [leaf, ...rest] = init.certChainDer;
    if (leaf === undefined) {
      throw new MeshidError("invalid_argument", "agent.svid.malformed", "empty certificate chain");
    }
    const layout = readLeafLayout(leaf);
    const key = storeKey(init.privateKeyPkcs8Der, leaf, layout.publicKeyStart, layout.publicKeyEnd);
    const storedLeaf = storeLeaf(leaf);
    this.leafLength = storedLeaf.bytes.length;
    this.leafForm = storedLeaf.form;
    this.leafAndKey = joinFlat(storedLeaf.bytes, key.bytes);
    this.keyForm = key.form;
    this.intermediates =
      init.intermediates ?? (rest.length === 0 ? NO_INTERMEDIATES : Object.freeze(rest));
    this.authorityId = init.authorityId;
    this.entryRevision = init.entryRevision;
    // Sub-second notBefore (certificates have second precision) moves into the offsets.
    this.notBeforeSeconds = smallInteger(Math.floor((init.notBeforeMs - TIME_BASE_MS) / 1000));
    const notBeforeMs = TIME_BASE_MS + this.notBeforeSeconds * 1000;
    this.lifetimeMs = smallInteger(init.notAfterMs - notBeforeMs);
    this.rotateAfterMs = smallInteger(init.rotateAtMs - notBeforeMs);
  }

  /** notBefore in epoch ms. */
  get notBeforeMs(): number {
    return TIME_BASE_MS + this.notBeforeSeconds * 1000;
  }

  /** notAfter in epoch ms. */
  get notAfterMs(): number {
    return this.notBeforeMs + this.lifetimeMs;
  }

  /** rotateAt in epoch ms. */
  get rotateAtMs(): number {
    return this.notBeforeMs + this.rotateAfterMs;
  }

  /** The leaf DER (a fresh buffer). */
  private leaf(): Buffer {
    return loadLeaf({ bytes: this.leafAndKey.slice(0, this.leafLength), form: this.leafForm });
  }

  /** Leaf first, then the intermediates (fresh array and leaf copy on each access). */
  get certChainDer(): readonly Uint8Array[] {
    return [this.leaf(), ...this.intermediates];
  }

  /** PKCS#8 DER (a fresh copy on each access, byte for byte the key given). */
  get privateKeyPkcs8Der(): Uint8Array {
    const bytes = this.leafAndKey.slice(this.leafLength);
    if (this.keyForm === undefined) return Buffer.from(bytes, "latin1");
    const leaf = this.leaf();
    const { publicKeyStart, publicKeyEnd } = readLeafLayout(leaf);
    return loadKey({ bytes, form: this.keyForm }, leaf, publicKeyStart, publicKeyEnd);
  }

  /** The leaf's serial number, lowercase hex without sign octets (read on each access). */
  get serialHex(): string {
    return readLeafSerialHex(this.leaf());
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
