// Prints one plain closing line ("tests: N passed, N failed") that any CI log reader
// understands, as the very last line of the run (jest's own summary comes before it).
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const counts = `tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed`;
    const line = skipped > 0 ? `${counts}, ${skipped} skipped` : counts;
    process.once("exit", () => process.stdout.write(`${line}\n`));
  }
}
module.exports = SummaryReporter;
