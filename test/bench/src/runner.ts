import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Benchmark } from "./benchmark";

/** Default directory holding one module per benchmark (each exports `benchmark`). */
export const BENCHMARKS_DIR = join(__dirname, "benchmarks");

/** Loads every benchmark module in `dir` (compiled `.js`, or `.ts` under jest), by file name. */
export function loadBenchmarks(dir: string = BENCHMARKS_DIR): Benchmark[] {
  const files = readdirSync(dir)
    .filter((f) => /\.(js|ts)$/.test(f) && !f.endsWith(".d.ts") && !f.endsWith(".test.ts"))
    .sort();
  const found: Benchmark[] = [];
  for (const file of files) {
    // Benchmarks are discovered at run time, so a static import cannot name them.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(join(dir, file)) as { benchmark?: Benchmark };
    if (mod.benchmark !== undefined) found.push(mod.benchmark);
  }
  return found;
}

/** Parameters of {@link runBenchmarks}. */
export interface RunBenchmarksParams {
  /** Benchmark names to run; empty = all, in file-name order. */
  readonly names: readonly string[];
  /** Receives one JSON line per benchmark (stdout in the CLI). */
  readonly output: (line: string) => void;
  /** Receives progress lines (stderr in the CLI). */
  readonly progress: (line: string) => void;
  /** Smoke-test mode, passed to every benchmark. Default false. */
  readonly quick?: boolean;
  /** Where the benchmark modules are. Default {@link BENCHMARKS_DIR}. */
  readonly dir?: string;
}

/**
 * Runs the selected benchmarks one after another and writes one JSON object per benchmark
 * (`{"benchmark":"<name>",...metrics}`). Throws when a name is unknown, before running any.
 */
export async function runBenchmarks(params: RunBenchmarksParams): Promise<void> {
  const all = loadBenchmarks(params.dir);
  const unknown = params.names.filter((name) => !all.some((b) => b.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `unknown benchmark(s): ${unknown.join(", ")}; known: ${all.map((b) => b.name).join(", ")}`,
    );
  }
  const wanted = params.names.length === 0 ? all : all.filter((b) => params.names.includes(b.name));
  for (const b of wanted) {
    params.progress(`[bench] ${b.name}: starting`);
    const result = await b.run({
      quick: params.quick ?? false,
      progress: (m) => params.progress(`[bench] ${b.name}: ${m}`),
    });
    params.output(JSON.stringify({ benchmark: b.name, ...result }));
  }
}

/**
 * Runs the benchmark `name` from `dir` in quick (smoke-test) mode, progress discarded, and
 * returns the JSON lines it printed: what each benchmark's own test checks.
 */
export async function runQuickBenchmark(name: string, dir: string): Promise<string[]> {
  const lines: string[] = [];
  await runBenchmarks({
    names: [name],
    output: (l) => lines.push(l),
    progress: () => {},
    quick: true,
    dir,
  });
  return lines;
}
