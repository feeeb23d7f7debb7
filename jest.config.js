// Root jest: runs every package's suites in one pool so `npm test` prints one summary.
// A package takes part when it has a jest.config.js. test/bench takes part with the unit tests
// of its runner (quick mode, no timing assertions); the benchmarks themselves run only in
// `npm run bench`.
const { existsSync, readdirSync } = require("node:fs");
const { join } = require("node:path");

const groups = ["libs", "services", "tools", "test"];
const projects = groups.flatMap((group) => {
  const dir = join(__dirname, group);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((pkg) => existsSync(join(pkg, "jest.config.js")));
});

module.exports = {
  projects,
  // testTimeout is a global option: the presets' value applies only when a package runs alone.
  testTimeout: 30_000,
  reporters: ["default", "<rootDir>/scripts/jest-summary-reporter.js"],
};
