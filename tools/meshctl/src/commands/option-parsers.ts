import { InvalidArgumentError } from "commander";

/** Commander option parser that collects a repeated flag into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Commander option parser for a whole number ≥ 1. */
export function parsePositiveInt(value: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(value)) {
    throw new InvalidArgumentError("must be a whole number of at least 1");
  }
  return Number(value);
}
