// Benchmark runner: `node test/bench/dist/run.js [name…]` runs every benchmark in
// ./benchmarks (or only the named ones) one after another and prints one JSON object per
// benchmark on its own stdout line. Progress goes to stderr.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Benchmark } from "./benchmark";

function loadBenchmarks(): Benchmark[] {
  const dir = join(__dirname, "benchmarks");
  const files = readdirSync(dir)
    .filter((f) => /\.(js|ts)$/.test(f) && !f.endsWith(".d.ts") && !f.endsWith(".test.ts"))
    .sort();
  const found: Benchmark[] = [];
  for (const file of files) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(join(dir, file)) as { benchmark?: Benchmark };
    if (mod.benchmark !== undefined) found.push(mod.benchmark);
  }
  return found;
}

async function main(argv: readonly string[]): Promise<number> {
  const all = loadBenchmarks();
  const wanted = argv.length === 0 ? all : all.filter((b) => argv.includes(b.name));
  const unknown = argv.filter((name) => !all.some((b) => b.name === name));
  if (unknown.length > 0) {
    console.error(
      `unknown benchmark(s): ${unknown.join(", ")}; known: ${all.map((b) => b.name).join(", ")}`,
    );
    return 2;
  }
  for (const b of wanted) {
    console.error(`[bench] ${b.name}: starting`);
    const result = await b.run({ progress: (m) => console.error(`[bench] ${b.name}: ${m}`) });
    console.log(JSON.stringify({ benchmark: b.name, ...result }));
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
