// Root jest: runs every package's suites in one pool so `npm test` prints one summary.
// A package takes part when it has a jest.config.js (benchmarks under test/bench never do tests).
const { existsSync, readdirSync } = require("node:fs");
const { join } = require("node:path");

const groups = ["libs", "services", "tools", "test"];
const projects = groups.flatMap((group) => {
  const dir = join(__dirname, group);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !(group === "test" && name === "bench"))
    .map((name) => join(dir, name))
    .filter((pkg) => existsSync(join(pkg, "jest.config.js")));
});

module.exports = {
  projects,
  reporters: ["default", "<rootDir>/scripts/jest-summary-reporter.js"],
};
