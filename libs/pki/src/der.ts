// A tiny DER writer and reader: just enough ASN.1 for certificates, CSRs and SPKIs on the hot
// issuance path, without allocating an object tree per certificate.

/** ASN.1 universal tags used by meshid. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Encodes one TLV with a definite, minimal length. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const len = content.length;
  let header: Buffer;
  if (len < 0x80) {
    header = Buffer.from([tag, len]);
  } else if (len < 0x100) {
    header = Buffer.from([tag, 0x81, len]);
  } else if (len < 0x10000) {
    header = Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  } else if (len < 0x1000000) {
    header = Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  } else {
    throw new RangeError("DER value too long");
  }
  return Buffer.concat([header, content]);
}

/** Encodes a SEQUENCE of already-encoded parts. */
export function seq(...parts: Uint8Array[]): Buffer {
  return tlv(TAG.SEQUENCE, Buffer.concat(parts));
}

/** Encodes a context-specific tag number `n` (constructed when `constructed`). */
export function ctx(n: number, content: Uint8Array, constructed: boolean): Buffer {
  return tlv((constructed ? 0xa0 : 0x80) | n, content);
}

/** Encodes a dotted OBJECT IDENTIFIER. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map((a) => Number(a));
  const first = arcs[0] ?? 0;
  const second = arcs[1] ?? 0;
  const bytes: number[] = [first * 40 + second];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    let rest = Math.floor(arc / 128);
    while (rest > 0) {
      chunk.unshift((rest & 0x7f) | 0x80);
      rest = Math.floor(rest / 128);
    }
    bytes.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(bytes));
}

/** Encodes a non-negative INTEGER from big-endian magnitude bytes (minimal, sign-safe). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  if (trimmed.length === 0) return Buffer.from([TAG.INTEGER, 1, 0]);
  if ((trimmed[0] ?? 0) & 0x80) return tlv(TAG.INTEGER, Buffer.concat([Buffer.from([0]), trimmed]));
  return tlv(TAG.INTEGER, trimmed);
}

/** Encodes a small non-negative INTEGER. */
export function smallInteger(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  return unsignedInteger(Buffer.from(bytes));
}

/** Encodes a BIT STRING with zero unused bits. */
export function bitString(content: Uint8Array): Buffer {
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), content]));
}

/** Encodes an OCTET STRING. */
export function octetString(content: Uint8Array): Buffer {
  return tlv(TAG.OCTET_STRING, content);
}

/** Encodes BOOLEAN TRUE (DER only ever writes TRUE for defaulted-FALSE fields). */
export const BOOLEAN_TRUE: Buffer = Buffer.from([TAG.BOOLEAN, 1, 0xff]);

/** Encodes NULL. */
export const NULL: Buffer = Buffer.from([TAG.NULL, 0]);

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * Encodes an X.509 Time: UTCTime for years 1950–2049, GeneralizedTime otherwise (RFC 5280
 * 4.1.2.5). Milliseconds are dropped.
 */
export function x509Time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  const rest =
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds()) +
    "Z";
  if (y >= 1950 && y < 2050) {
    return tlv(TAG.UTC_TIME, Buffer.from(pad2(y % 100) + rest, "latin1"));
  }
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(y).padStart(4, "0") + rest, "latin1"));
}

/** One decoded TLV: where its header and content are in the source buffer. */
export interface Tlv {
  /** The identifier octet (single-byte tags only). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

/** Thrown by the reader on any structural problem; callers map it to their own error code. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** Reads the TLV starting at `offset`, never past `limit`. */
export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError("truncated DER header");
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte DER tags are not supported");
  let lenByte = buf[offset + 1] as number;
  let contentStart = offset + 2;
  let len: number;
  if (lenByte < 0x80) {
    len = lenByte;
  } else {
    lenByte &= 0x7f;
    if (lenByte === 0 || lenByte > 4) throw new DerError("unsupported DER length");
    if (contentStart + lenByte > limit) throw new DerError("truncated DER length");
    len = 0;
    for (let i = 0; i < lenByte; i++) len = len * 256 + (buf[contentStart + i] as number);
    contentStart += lenByte;
  }
  const end = contentStart + len;
  if (end > limit) throw new DerError("truncated DER value");
  return { tag, start: offset, contentStart, end };
}

/** Reads the TLV at `offset` and checks its tag. */
export function expectTlv(buf: Uint8Array, offset: number, tag: number, limit?: number): Tlv {
  const t = readTlv(buf, offset, limit);
  if (t.tag !== tag) {
    throw new DerError(`expected DER tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  }
  return t;
}

/** Lists the direct children of a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let at = parent.contentStart;
  while (at < parent.end) {
    const t = readTlv(buf, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** Returns the whole encoding (header + content) of a TLV. */
export function raw(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.start, t.end);
}

/** Returns the content of a TLV. */
export function content(buf: Uint8Array, t: Tlv): Uint8Array {
  return buf.subarray(t.contentStart, t.end);
}

/** Decodes an OBJECT IDENTIFIER's content to dotted form. */
export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new DerError("empty OID");
  const first = bytes[0] as number;
  const arcs: number[] = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  let value = 0;
  for (let i = 1; i < bytes.length; i++) {
    const b = bytes[i] as number;
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join(".");
}

/** Decodes a UTCTime or GeneralizedTime TLV to a Date. */
export function decodeTime(buf: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(content(buf, t)).toString("latin1");
  let m: RegExpExecArray | null;
  if (t.tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (m === null) throw new DerError("bad UTCTime");
    const yy = Number(m[1]);
    const year = yy >= 50 ? 1900 + yy : 2000 + yy;
    return new Date(
      Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])),
    );
  }
  if (t.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (m === null) throw new DerError("bad GeneralizedTime");
    return new Date(
      Date.UTC(
        Number(m[1]),
        Number(m[2]) - 1,
        Number(m[3]),
        Number(m[4]),
        Number(m[5]),
        Number(m[6]),
      ),
    );
  }
  throw new DerError("expected a Time");
}

/** Returns the content bytes of a dotted OID, for comparisons without decoding. */
export function oidContent(dotted: string): Uint8Array {
  return oid(dotted).subarray(2);
}

/** Reports whether the TLV `t` of `buf` holds exactly the OID content `expected`. */
export function oidEquals(buf: Uint8Array, t: Tlv, expected: Uint8Array): boolean {
  const len = t.end - t.contentStart;
  if (len !== expected.length) return false;
  for (let i = 0; i < len; i++) if (buf[t.contentStart + i] !== expected[i]) return false;
  return true;
}
