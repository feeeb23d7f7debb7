// A cached EC workload key without the bytes its certificate already holds. An EC PKCS#8 key
// (RFC 5208 / 5915) is a fixed prefix for its curve, the private scalar, a fixed middle and
// the public point, and the leaf's subjectPublicKey is that same point. So the cache keeps the
// scalar only (32 bytes for P-256 instead of 138) and puts the key back together, byte for
// byte, when a workload is sent it.
import { DerCursor } from "./leaf-fields";

/** The bytes around the scalar of one curve's PKCS#8 keys (shared by all keys of the curve). */
export interface KeyForm {
  /** From the start of the key to the scalar, one Latin-1 character per byte. */
  readonly prefix: string;
  /** From the scalar to the public point (the `[1] BIT STRING` header), Latin-1. */
  readonly middle: string;
}

const TAG_SEQUENCE: number = 0x30;
const TAG_INTEGER: number = 0x02;
const TAG_OCTET_STRING: number = 0x04;

/** Distinct forms kept (one per curve in practice); keys of any other form are kept whole. */
const MAX_FORMS = 8;
const forms = new Map<string, KeyForm>();

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("latin1");
}

/** The shared form with these bytes, or undefined when {@link MAX_FORMS} other forms exist. */
function internForm(prefix: string, middle: string): KeyForm | undefined {
  const id = `${prefix.length}:${prefix}${middle}`;
  let form = forms.get(id);
  if (form === undefined) {
    if (forms.size >= MAX_FORMS) return undefined;
    form = Object.freeze({ prefix, middle });
    forms.set(id, form);
  }
  return form;
}

/** Offsets of the private scalar in an EC PKCS#8 key, or undefined when it is not one. */
function findScalar(key: Uint8Array): { start: number; end: number } | undefined {
  const c = new DerCursor(key);
  try {
    if (c.read(0, key.length) !== key.length || c.tag !== TAG_SEQUENCE) return undefined;
    let offset = c.read(c.start, c.end); // version
    if (c.tag !== TAG_INTEGER) return undefined;
    offset = c.read(offset, key.length); // privateKeyAlgorithm
    if (c.tag !== TAG_SEQUENCE) return undefined;
    c.read(offset, key.length); // privateKey
    if (c.tag !== TAG_OCTET_STRING) return undefined;
    const ecKeyEnd = c.read(c.start, c.end); // ECPrivateKey
    if (c.tag !== TAG_SEQUENCE) return undefined;
    offset = c.read(c.start, ecKeyEnd); // version 1
    if (c.tag !== TAG_INTEGER) return undefined;
    c.read(offset, ecKeyEnd); // privateKey (the scalar)
    if (c.tag !== TAG_OCTET_STRING) return undefined;
    return { start: c.start, end: c.end };
  } catch {
    return undefined;
  }
}

/** A key as the cache stores it: the scalar and its form, or the whole key. */
export interface StoredKey {
  /** The scalar (with a form) or the whole PKCS#8 DER (without), one Latin-1 character per byte. */
  readonly bytes: string;
  readonly form: KeyForm | undefined;
}

/**
 * Splits `keyDer` into its shared form and its scalar when it is an EC PKCS#8 key ending with
 * the point at `pointStart`..`pointEnd` of `leafDer`; any other key (RSA, no public point in
 * the key, a point that is not the leaf's) is kept whole.
 */
export function storeKey(
  keyDer: Uint8Array,
  leafDer: Uint8Array,
  pointStart: number,
  pointEnd: number,
): StoredKey {
  const pointLength = pointEnd - pointStart;
  const middleEnd = keyDer.length - pointLength;
  let matches = pointLength > 0 && middleEnd > 0;
  for (let i = 0; matches && i < pointLength; i++) {
    matches = keyDer[middleEnd + i] === leafDer[pointStart + i];
  }
  const scalar = matches ? findScalar(keyDer) : undefined;
  const form =
    scalar !== undefined && scalar.end <= middleEnd
      ? internForm(latin1(keyDer, 0, scalar.start), latin1(keyDer, scalar.end, middleEnd))
      : undefined;
  if (scalar === undefined || form === undefined) {
    return { bytes: latin1(keyDer, 0, keyDer.length), form: undefined };
  }
  return { bytes: latin1(keyDer, scalar.start, scalar.end), form };
}

/**
 * The PKCS#8 DER of a stored key (a fresh buffer): `form.prefix`, the scalar in `bytes`,
 * `form.middle`, then the point at `pointStart`..`pointEnd` of `leafDer`; the whole key in
 * `bytes` when there is no form.
 */
export function loadKey(
  { bytes, form }: StoredKey,
  leafDer: Uint8Array,
  pointStart: number,
  pointEnd: number,
): Buffer {
  if (form === undefined) return Buffer.from(bytes, "latin1");
  const { prefix, middle } = form;
  const key = Buffer.allocUnsafe(
    prefix.length + bytes.length + middle.length + pointEnd - pointStart,
  );
  let at = key.write(prefix, 0, "latin1");
  at += key.write(bytes, at, "latin1");
  at += key.write(middle, at, "latin1");
  key.set(leafDer.subarray(pointStart, pointEnd), at);
  return key;
}
