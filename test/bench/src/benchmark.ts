/** What a benchmark may use while it runs. */
export interface BenchmarkContext {
  /** Writes a progress line to stderr (stdout is reserved for the result JSON). */
  progress(message: string): void;
}

/** One benchmark: `run` returns the flat metrics printed as one JSON line. */
export interface Benchmark {
  /** Name printed as `"benchmark"` and used to select it on the command line. */
  readonly name: string;
  /** Runs the benchmark and returns its metrics (numbers, strings, booleans). */
  run(ctx: BenchmarkContext): Promise<Record<string, number | string | boolean>>;
}
