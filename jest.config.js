// Root jest: runs every package's suites in one pool so `npm test` prints one summary.
module.exports = {
  projects: ["<rootDir>/libs/*", "<rootDir>/services/*", "<rootDir>/tools/*", "<rootDir>/test/e2e"],
  reporters: ["default", "<rootDir>/scripts/jest-summary-reporter.js"],
};
