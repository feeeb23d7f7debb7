// Shared jest settings for every workspace package: swc transform (no type-check; `tsc` does
// that), @meshid/* resolved to sources so tests never need a build, and the ESM-only
// Kubernetes client transformed to CJS.
const path = require("node:path");

const root = __dirname;

/** Returns the jest project config for the package in `dir`. */
module.exports = function preset(dir, overrides = {}) {
  return {
    displayName: path.relative(root, dir),
    rootDir: dir,
    testEnvironment: "node",
    testMatch: ["<rootDir>/src/**/*.test.ts", "<rootDir>/test/**/*.test.ts"],
    transform: {
      "^.+\\.(t|j|mj)sx?$": [
        "@swc/jest",
        {
          jsc: { parser: { syntax: "typescript" }, target: "es2022" },
          module: { type: "commonjs" },
        },
      ],
    },
    // ESM-only packages are turned into CJS by swc. The OTLP exporter base loads node:http
    // with import() at export time, which jest's CJS runtime cannot run. A path stays
    // untransformed when its last node_modules segment is not in the list.
    transformIgnorePatterns: [
      "/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose|@opentelemetry/otlp-exporter-base)/)(?!.*/node_modules/)",
    ],
    moduleNameMapper: {
      "^@meshid/([a-z-]+)$": path.join(root, "libs/$1/src/index.ts"),
    },
    setupFiles: ["reflect-metadata"],
    testTimeout: 30_000,
    ...overrides,
  };
};
