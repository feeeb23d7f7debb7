// Each suite lives in its own directory (test/e2e/<suite>/*.test.ts) with a README.
module.exports = require("../../jest.preset.js")(__dirname, {
  testMatch: ["<rootDir>/*/**/*.test.ts"],
  testTimeout: 180_000,
});
