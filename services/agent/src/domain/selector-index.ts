/** Items indexed by selector key (`type:value`), to find candidates without scanning all. */
export interface SelectorIndex<T> {
  /** Indexes `item` under each of `keys`. */
  add(item: T, keys: readonly string[]): void;
  /** Removes `item` from under each of `keys`. */
  remove(item: T, keys: readonly string[]): void;
  /** The items indexed under `key` (an empty set when none). Do not mutate. */
  get(key: string): ReadonlySet<T>;
  /**
   * The smallest bucket among `keys`: every item holding all of `keys` is in it, so it is the
   * cheapest superset of the items matching a subset test. Empty when `keys` is empty.
   */
  smallest(keys: readonly string[]): ReadonlySet<T>;
}

const EMPTY: ReadonlySet<never> = new Set<never>();

/** Creates an empty {@link SelectorIndex}. Empty buckets are dropped to keep memory small. */
export function createSelectorIndex<T>(): SelectorIndex<T> {
  const buckets = new Map<string, Set<T>>();
  return {
    add(item, keys) {
      for (const key of keys) {
        let bucket = buckets.get(key);
        if (bucket === undefined) {
          bucket = new Set();
          buckets.set(key, bucket);
        }
        bucket.add(item);
      }
    },
    remove(item, keys) {
      for (const key of keys) {
        const bucket = buckets.get(key);
        if (bucket === undefined) continue;
        bucket.delete(item);
        if (bucket.size === 0) buckets.delete(key);
      }
    },
    get: (key) => buckets.get(key) ?? EMPTY,
    smallest(keys) {
      let best: ReadonlySet<T> | undefined;
      for (const key of keys) {
        const bucket = buckets.get(key);
        if (bucket === undefined) return EMPTY;
        if (best === undefined || bucket.size < best.size) best = bucket;
      }
      return best ?? EMPTY;
    },
  };
}
