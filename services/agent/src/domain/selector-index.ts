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

/**
 * Creates an empty {@link SelectorIndex}. A key held by one item stores the item itself (most
 * selector keys are held by one entry or one workload: a Set each would cost ~200 bytes);
 * empty buckets are dropped.
 */
export function createSelectorIndex<T extends object>(): SelectorIndex<T> {
  const buckets = new Map<string, T | Set<T>>();
  const bucketOf = (key: string): ReadonlySet<T> | undefined => {
    const bucket = buckets.get(key);
    return bucket === undefined ? undefined : bucket instanceof Set ? bucket : new Set([bucket]);
  };
  return {
    add(item, keys) {
      for (const key of keys) {
        const bucket = buckets.get(key);
        if (bucket === undefined) buckets.set(key, item);
        else if (bucket instanceof Set) bucket.add(item);
        else if (bucket !== item) buckets.set(key, new Set([bucket, item]));
      }
    },
    remove(item, keys) {
      for (const key of keys) {
        const bucket = buckets.get(key);
        if (bucket === item) {
          buckets.delete(key);
        } else if (bucket instanceof Set) {
          bucket.delete(item);
          if (bucket.size === 1) buckets.set(key, bucket.values().next().value as T);
        }
      }
    },
    get: (key) => bucketOf(key) ?? EMPTY,
    smallest(keys) {
      let best: T | Set<T> | undefined;
      for (const key of keys) {
        const bucket = buckets.get(key);
        if (bucket === undefined) return EMPTY;
        if (!(bucket instanceof Set)) return new Set([bucket]);
        if (best === undefined || (best instanceof Set && bucket.size < best.size)) best = bucket;
      }
      return best === undefined ? EMPTY : best instanceof Set ? best : new Set([best]);
    },
  };
}
