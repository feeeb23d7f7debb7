// Shared copies of the strings and selector lists that thousands of cached entries repeat (the
// parent ID, selector types and values, selector keys, the signing authority's ID), so each is
// held once instead of once per entry.
import type { Selector } from "@meshid/spiffe";

/** Most distinct values a pool keeps; past it the pool starts afresh (sharing, not meaning). */
export const MAX_INTERNED = 65_536;

/**
 * `parts` joined into one flat string: V8 keeps a `+` or template concatenation as a rope (a
 * "concatenated string" node holding both halves), while `Array.prototype.join` of two or
 * more parts builds one sequential string (a single part comes back as it is).
 */
export function joinFlat(...parts: string[]): string {
  return parts.join("");
}

/** A pool of equal values: `intern(v)` returns the first equal value it was given. */
export interface InternPool<T> {
  intern(key: string, make: () => T): T;
  readonly size: number;
}

/** Creates an {@link InternPool} of at most `max` values. */
export function createInternPool<T>(max = MAX_INTERNED): InternPool<T> {
  const pool = new Map<string, T>();
  return {
    intern(key, make) {
      const known = pool.get(key);
      if (known !== undefined) return known;
      if (pool.size >= max) pool.clear();
      const value = make();
      pool.set(key, value);
      return value;
    },
    get size() {
      return pool.size;
    },
  };
}

const strings = createInternPool<string>();
const selectorLists = createInternPool<readonly Selector[]>();
const EMPTY: readonly never[] = Object.freeze([]);

/** The shared copy of `s`. */
export function internString(s: string): string {
  return strings.intern(s, () => s);
}

/** A shared, frozen empty list. */
export function emptyList<T>(): readonly T[] {
  return EMPTY;
}

/**
 * The shared, frozen copy of a selector list (same types and values in the same order), its
 * types and values shared strings.
 */
export function internSelectors(
  selectors: readonly { readonly type: string; readonly value: string }[],
): readonly Selector[] {
  if (selectors.length === 0) return EMPTY;
  let key = "";
  for (const s of selectors) key += `${s.type.length}:${s.type}${s.value.length}:${s.value}`;
  return selectorLists.intern(key, () =>
    Object.freeze(
      selectors.map((s) =>
        Object.freeze({ type: internString(s.type), value: internString(s.value) }),
      ),
    ),
  );
}
