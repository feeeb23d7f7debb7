/**
 * Freezes `value` and every object and array reachable from it, in place, and returns it.
 * Typed arrays and other ArrayBuffer views are left as they are (they cannot be frozen);
 * cycles are handled.
 */
export function deepFreeze<T>(value: T): T {
  const seen = new Set<object>();
  const visit = (v: unknown): void => {
    if (typeof v !== "object" || v === null || seen.has(v) || ArrayBuffer.isView(v)) return;
    seen.add(v);
    for (const key of Reflect.ownKeys(v)) {
      visit((v as Record<PropertyKey, unknown>)[key]);
    }
    Object.freeze(v);
  };
  visit(value);
  return value;
}
