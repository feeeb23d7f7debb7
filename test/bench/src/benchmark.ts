/** What a benchmark may use while it runs. */
export interface BenchmarkContext {
  /** Writes a progress line to stderr (stdout is reserved for the result JSON). */
  progress(message: string): void;
  /** Smoke-test mode: tiny sizes and durations, for tests of the benchmark itself. */
  readonly quick: boolean;
}

/** One benchmark: `run` returns the flat metrics printed as one JSON line. */
export interface Benchmark {
  /** Name printed as `"benchmark"` and used to select it on the command line. */
  readonly name: string;
  /** Runs the benchmark and returns its metrics (numbers, strings, booleans). */
  run(ctx: BenchmarkContext): Promise<Record<string, number | string | boolean>>;
}
