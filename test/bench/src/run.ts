// CLI: `node test/bench/dist/run.js [name…]` runs every benchmark in ./benchmarks (or only the
// named ones) one after another and prints one JSON object per benchmark on its own stdout
// line. Progress goes to stderr.
import { runBenchmarks } from "./runner";

runBenchmarks({
  names: process.argv.slice(2),
  output: (line) => console.log(line),
  progress: (line) => console.error(line),
}).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
