import type { z } from "zod";

/**
 * A schema whose `.default(value)` takes an *input* value (for example `"720h"`) and parses it,
 * like zod's `.prefault()`. Zod 4's own `.default()` expects an output value and skips parsing,
 * which is wrong for schemas that transform strings into numbers or objects.
 */
export type WithInputDefault<S extends z.ZodType> = S & {
  /** Uses `value` (an input, parsed like any other) when the setting is absent. */
  default(value: z.input<S>): z.ZodPrefault<S>;
};

/**
 * Makes `schema.default(x)` behave like `schema.prefault(x)`, also on clones made by
 * `.describe()`, `.meta()`, `.refine()` and friends (they all go through `clone`).
 */
export function withInputDefault<S extends z.ZodType>(schema: S): WithInputDefault<S> {
  const target = schema as S & {
    clone: (...args: unknown[]) => z.ZodType;
    default: (value: unknown) => unknown;
  };
  const originalClone = target.clone.bind(target);
  Object.defineProperty(target, "clone", {
    value: (...args: unknown[]) => withInputDefault(originalClone(...args)),
    configurable: true,
    writable: true,
  });
  Object.defineProperty(target, "default", {
    value: (value: unknown) => target.prefault(value as z.input<S>),
    configurable: true,
    writable: true,
  });
  return target as unknown as WithInputDefault<S>;
}
