// A JSON document read in chunks, split into the elements of one array of its top-level object
// (the kubelet's `/pods` answer: `{"kind":"PodList",…,"items":[{pod},{pod},…]}`), so each
// element is parsed on its own: a megabyte answer becomes a thousand small, short-lived objects
// instead of one string and one object tree as large as the whole list.

/** How a split document ended: see {@link JsonArraySplitter.end}. */
export type JsonArraySplitResult =
  | { readonly kind: "ok"; readonly elements: number }
  /** Well-formed as far as the splitter looks, but with no such array in the top-level object. */
  | { readonly kind: "missing" }
  /** Not a complete JSON object (truncated, unbalanced, or trailing bytes). */
  | { readonly kind: "malformed" };

/** A splitter of one JSON document; see {@link createJsonArraySplitter}. */
export interface JsonArraySplitter {
  /**
   * Feeds the next bytes of the document. Calls `onElement` with the bytes of each object
   * element of the array completed within them (valid until the call returns).
   *
   * @throws whatever `onElement` throws.
   */
  push(chunk: Buffer): void;
  /** Ends the document and says whether it held the array. */
  end(): JsonArraySplitResult;
}

const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const COMMA = 0x2c; // ,
const COLON = 0x3a; // :

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/**
 * Whether the run of backslashes just before `end` (not reaching before `from`, where no escape
 * is pending) has odd length, i.e. escapes the byte at `end`.
 */
function oddBackslashesBefore(chunk: Buffer, end: number, from: number): boolean {
  let k = end - 1;
  while (k >= from && chunk[k] === BACKSLASH) k -= 1;
  return (end - 1 - k) % 2 === 1;
}

/** Longest top-level key compared with the array's key; longer keys are never it. */
const MAX_KEY_BYTES = 64;

/**
 * Creates a {@link JsonArraySplitter} for the array under `key` in the document's top-level
 * object (`key` written without escapes, as encoders write plain ASCII keys). Only the
 * structure is followed (strings, escapes, nesting); each element's own syntax is left to the
 * caller's parser. Non-object elements are skipped. When the key occurs twice, the elements of
 * both arrays are reported (JSON.parse would keep the last).
 */
export function createJsonArraySplitter(
  key: string,
  onElement: (bytes: Buffer) => void,
): JsonArraySplitter {
  const wanted = Buffer.from(key, "utf8");
  let depth = 0;
  let started = false;
  let finished = false;
  let malformed = false;
  let inString = false;
  let escaped = false;
  /** At depth 1, the next string is a key. */
  let expectKey = false;
  /** Bytes of the top-level key being read (only while it can still equal `key`). */
  let keyBytes: number[] | undefined;
  let keyMatches = false;
  /** Past `"<key>":` at depth 1, before its value starts. */
  let awaitingArray = false;
  /** Inside the array (its elements are at depth 2). */
  let inArray = false;
  let found = false;
  let elements = 0;
  /** Start of the element in the current chunk, or -1. */
  let elementStart = -1;
  /** Earlier chunks' bytes of the element under way. */
  let pieces: Buffer[] = [];

  const emit = (chunk: Buffer, end: number): void => {
    const tail = chunk.subarray(elementStart, end);
    const bytes = pieces.length === 0 ? tail : Buffer.concat([...pieces, tail]);
    pieces = [];
    elementStart = -1;
    elements += 1;
    onElement(bytes);
  };

  return {
    push(chunk) {
      if (malformed) return;
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i]!;
        if (inString) {
          if (escaped) escaped = false;
          else if (keyBytes === undefined) {
            // Most bytes are inside strings: jump to the closing quote (memchr), not byte by byte.
            let quote = chunk.indexOf(QUOTE, i);
            while (quote >= 0 && oddBackslashesBefore(chunk, quote, i)) {
              quote = chunk.indexOf(QUOTE, quote + 1);
            }
            if (quote < 0) {
              escaped = oddBackslashesBefore(chunk, chunk.length, i);
              i = chunk.length - 1;
            } else {
              i = quote;
              inString = false;
            }
          } else if (byte === BACKSLASH) escaped = true;
          else if (byte === QUOTE) {
            inString = false;
            if (keyBytes !== undefined) {
              keyMatches =
                keyBytes.length === wanted.length && keyBytes.every((b, k) => b === wanted[k]);
              keyBytes = undefined;
            }
          } else if (keyBytes !== undefined) {
            if (keyBytes.length < MAX_KEY_BYTES) keyBytes.push(byte);
            else keyBytes = undefined;
          }
          continue;
        }
        if (isWhitespace(byte)) continue;
        if (finished || (!started && byte !== OPEN_OBJECT)) {
          malformed = true;
          return;
        }
        if (depth === 1 && awaitingArray) {
          awaitingArray = false;
          if (byte === OPEN_ARRAY) {
            inArray = true;
            found = true;
          }
        }
        switch (byte) {
          case QUOTE:
            inString = true;
            if (depth === 1 && expectKey) {
              expectKey = false;
              keyBytes = [];
              keyMatches = false;
            }
            break;
          case COLON:
            if (depth === 1 && keyMatches) awaitingArray = true;
            keyMatches = false;
            break;
          case COMMA:
            if (depth === 1) expectKey = true;
            break;
          case OPEN_OBJECT:
          case OPEN_ARRAY:
            if (depth === 2 && inArray && byte === OPEN_OBJECT) elementStart = i;
            depth += 1;
            started = true;
            if (depth === 1) expectKey = true;
            break;
          case CLOSE_OBJECT:
          case CLOSE_ARRAY:
            depth -= 1;
            if (depth < 0) {
              malformed = true;
              return;
            }
            if (depth === 2 && inArray && elementStart >= 0) emit(chunk, i + 1);
            else if (depth === 1 && inArray) inArray = false;
            else if (depth === 0) finished = true;
            break;
          default:
            break;
        }
      }
      if (elementStart >= 0) {
        // Copied: the caller may reuse the chunk's memory.
        pieces.push(Buffer.from(chunk.subarray(elementStart)));
        elementStart = 0;
      }
    },
    end() {
      if (malformed || !finished || inString) return { kind: "malformed" };
      return found ? { kind: "ok", elements } : { kind: "missing" };
    },
  };
}
