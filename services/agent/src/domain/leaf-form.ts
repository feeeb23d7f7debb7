// A cached leaf certificate without the bytes every leaf of its authority repeats. Of a
// ≈ 490-byte X509-SVID, ≈ 200 bytes are the same in every leaf one authority signs: the
// version, the signature algorithm (twice), the issuer name and the extensions other than the
// subject key identifier and the SAN (basic constraints, key usage, extended key usage,
// authority key identifier). The cache keeps those once per authority (a form) and, per leaf,
// only its own TLVs, and puts the leaf back together byte for byte (DER's lengths are
// canonical, and every stored leaf is checked to come back exactly, else it is kept whole).
import { DerCursor } from "./leaf-fields";

/** Marks where a leaf's own TLV goes in a form. */
const OWN = 0;
/** Marks where the extensions block goes in a form's TBSCertificate. */
const EXTENSIONS = 1;
/** A fixed TLV (Latin-1, one character per byte), or a marker. */
type Token = string | typeof OWN | typeof EXTENSIONS;

/** What the leaves of one authority share, and where each leaf's own TLVs go. */
export interface LeafForm {
  /** The TBSCertificate's TLVs, in order. */
  readonly tbs: readonly Token[];
  /** The extensions (inside `[3] { SEQUENCE { … } }`), in order; empty when there are none. */
  readonly extensions: readonly Token[];
  /** After the TBSCertificate: signatureAlgorithm and signatureValue. */
  readonly tail: readonly Token[];
}

/** A leaf as the cache stores it: its own TLVs and its form, or the whole DER. */
export interface StoredLeaf {
  /** The leaf's own TLVs (with a form) or its whole DER (without), Latin-1. */
  readonly bytes: string;
  readonly form: LeafForm | undefined;
}

const TAG_SEQUENCE: number = 0x30;
const TAG_VERSION: number = 0xa0;
const TAG_EXTENSIONS: number = 0xa3;
/** OID content bytes of the extensions each leaf has its own value of. */
const OWN_EXTENSION_OIDS: readonly string[] = [
  "\x55\x1d\x0e", // subjectKeyIdentifier 2.5.29.14
  "\x55\x1d\x11", // subjectAltName 2.5.29.17
];
/**
 * Positions (0-based, after the optional version) of a leaf's own TBSCertificate fields:
 * serial, validity, subject (empty in our SVIDs, but a CA that names each workload there must
 * not make every leaf a form of its own), SPKI.
 */
const OWN_TBS_FIELDS: ReadonlySet<number> = new Set([0, 3, 4, 5]);

/** Distinct forms kept for sharing (a few per authority); more start the table again. */
const MAX_FORMS = 32;
const forms = new Map<string, LeafForm>();

function latin1(der: Uint8Array, start: number, end: number): string {
  return Buffer.from(der.buffer, der.byteOffset + start, end - start).toString("latin1");
}

/** A DER header (tag and minimal length) as Latin-1. */
function header(tag: number, length: number): string {
  if (length < 0x80) return String.fromCharCode(tag, length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return String.fromCharCode(tag, 0x80 | bytes.length, ...bytes);
}

/** Length of the TLV at `at` of a Latin-1 string (its header and content). */
function tlvLengthAt(s: string, at: number): number {
  const first = s.charCodeAt(at + 1);
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  let length = 0;
  for (let i = 0; i < n; i++) length = length * 256 + s.charCodeAt(at + 2 + i);
  return 2 + n + length;
}

/** One form per distinct content (a key of its tokens). */
function internForm(form: LeafForm): LeafForm {
  let id = "";
  for (const list of [form.tbs, form.extensions, form.tail]) {
    for (const t of list) id += typeof t === "string" ? `F${t.length};${t}` : `M${t};`;
    id += "|";
  }
  const known = forms.get(id);
  if (known !== undefined) return known;
  if (forms.size >= MAX_FORMS) forms.clear();
  forms.set(id, form);
  return form;
}

/** Splits a leaf into its form and its own TLVs (throws on DER it does not follow). */
function split(der: Uint8Array): { form: LeafForm; own: string } {
  const c = new DerCursor(der);
  const certEnd = c.expect(TAG_SEQUENCE, 0, der.length, "");
  const tbsEnd = c.expect(TAG_SEQUENCE, c.start, certEnd, "TBSCertificate");
  let own = "";
  const tbs: Token[] = [];
  const extensions: Token[] = [];
  let field = 0;
  let offset = c.start;
  while (offset < tbsEnd) {
    const start = offset;
    offset = c.read(offset, tbsEnd);
    if (c.tag === TAG_EXTENSIONS) {
      tbs.push(EXTENSIONS);
      const listEnd = c.expect(TAG_SEQUENCE, c.start, c.end, "extensions");
      if (listEnd !== offset) throw new Error("extensions block has trailing bytes");
      let ext = c.start;
      while (ext < listEnd) {
        const extStart = ext;
        ext = c.expect(TAG_SEQUENCE, ext, listEnd, "extension");
        c.read(c.start, ext); // the extension's OID
        const bytes = latin1(der, extStart, ext);
        if (OWN_EXTENSION_OIDS.includes(latin1(der, c.start, c.end))) {
          extensions.push(OWN);
          own += bytes;
        } else {
          extensions.push(bytes);
        }
      }
      continue;
    }
    const bytes = latin1(der, start, offset);
    if (c.tag === TAG_VERSION && tbs.length === 0) {
      // The version is shared, and not counted among the fields.
      tbs.push(bytes);
      continue;
    }
    if (OWN_TBS_FIELDS.has(field)) {
      tbs.push(OWN);
      own += bytes;
    } else {
      tbs.push(bytes);
    }
    field++;
  }
  const tail: Token[] = [];
  offset = tbsEnd;
  const algorithmEnd = c.read(offset, certEnd);
  tail.push(latin1(der, offset, algorithmEnd));
  if (c.read(algorithmEnd, certEnd) !== certEnd) throw new Error("trailing bytes in the leaf");
  tail.push(OWN);
  own += latin1(der, algorithmEnd, certEnd);
  return { form: { tbs, extensions, tail }, own };
}

/**
 * The leaf's DER (a fresh buffer) from its form and its own TLVs, or from the whole DER
 * when there is no form.
 */
export function loadLeaf({ bytes, form }: StoredLeaf): Buffer {
  if (form === undefined) return Buffer.from(bytes, "latin1");
  let at = 0;
  /** The tokens with each OWN replaced by the next stored TLV (markers are sliced out first). */
  const fill = (tokens: readonly Token[]): string => {
    let out = "";
    for (const t of tokens) {
      if (typeof t === "string") {
        out += t;
      } else if (t === OWN) {
        const length = tlvLengthAt(bytes, at);
        out += bytes.slice(at, at + length);
        at += length;
      }
    }
    return out;
  };
  // The stored TLVs are in DER order, so the TBSCertificate is filled up to the extensions,
  // then the extensions (whose two headers are computed), then the rest.
  const marker = form.tbs.indexOf(EXTENSIONS);
  const before = fill(marker < 0 ? form.tbs : form.tbs.slice(0, marker));
  let extensionsBlock = "";
  if (marker >= 0) {
    const list = fill(form.extensions);
    const sequence = header(TAG_SEQUENCE, list.length) + list;
    extensionsBlock = header(TAG_EXTENSIONS, sequence.length) + sequence;
  }
  const after = marker < 0 ? "" : fill(form.tbs.slice(marker + 1));
  const tbsContent = before + extensionsBlock + after;
  const certContent = header(TAG_SEQUENCE, tbsContent.length) + tbsContent + fill(form.tail);
  return Buffer.from(header(TAG_SEQUENCE, certContent.length) + certContent, "latin1");
}

/**
 * Splits `der` into its shared form and its own TLVs (serial, validity, subject, subject public
 * key info, subject key identifier, SAN, signature), when it comes back byte for byte from them;
 * any other leaf is kept whole.
 */
export function storeLeaf(der: Uint8Array): StoredLeaf {
  try {
    const { form, own } = split(der);
    if (loadLeaf({ bytes: own, form }).equals(der)) return { bytes: own, form: internForm(form) };
  } catch {
    // Not a certificate this splits: kept whole.
  }
  return { bytes: latin1(der, 0, der.length), form: undefined };
}
