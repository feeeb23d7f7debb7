// The OTLP HTTP exporter loads node:http with import() at export time, which jest's CommonJS
// runtime cannot execute: let swc turn those into require() for that package (wherever npm
// nested it). A path is left untransformed when its last node_modules segment is not allowed.
module.exports = require("../../jest.preset.js")(__dirname, {
  transformIgnorePatterns: [
    "/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose|@opentelemetry/otlp-exporter-base)/)(?!.*/node_modules/)",
  ],
});
