import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isMeshidError } from "@meshid/errors";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { z } from "zod";
import { logLevelSchema, listenAddressSchema } from "./common-schemas";
import { CONFIG_ERROR_CODE, CONFIG_ERROR_EXIT_CODE, ConfigError } from "./config-error";
import { durationSchema } from "./duration";
import { configFileEnvVar, envVarName, loadConfig } from "./load-config";

const DEFAULT_WORKERS = 4;

const schema = z
  .object({
    logLevel: logLevelSchema.default("info"),
    svidTtl: durationSchema({ min: 60 }).default("1h"),
    maxSvidTtl: durationSchema().default("24h"),
    listen: listenAddressSchema().default("0.0.0.0:8443"),
    workers: z.number().int().min(1).default(DEFAULT_WORKERS),
    debug: z.boolean().default(false),
    adminIds: z.array(z.string()).default([]),
    ports: z.array(z.number()).default([]),
    datastore: z.object({
      url: z.string(),
      poolSize: z.number().int().default(5),
    }),
    labels: z.record(z.string(), z.string()).default({}),
    x509SvidKeyType: z.enum(["ec-p256", "rsa-2048"]).default("ec-p256"),
  })
  .superRefine((config, ctx) => {
    if (config.svidTtl > config.maxSvidTtl) {
      ctx.addIssue({ code: "custom", path: ["svidTtl"], message: "must not exceed maxSvidTtl" });
    }
  });

const MIN_ENV = { MESHID_CA_DATASTORE__URL: "sqlite:///tmp/ca.db" };

function captureConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  let dir: TempDir;
  let file: string;

  beforeEach(async () => {
    dir = await createTempDir("config");
    file = join(dir.path, "ca.yaml");
  });

  afterEach(async () => {
    await dir.cleanup();
  });

  it("config – env only, with defaults", () => {
    const config = loadConfig({ service: "ca", schema, env: MIN_ENV });
    expect(config).toEqual({
      logLevel: "info",
      svidTtl: 3600,
      maxSvidTtl: 86400,
      listen: { host: "0.0.0.0", port: 8443 },
      workers: DEFAULT_WORKERS,
      debug: false,
      adminIds: [],
      ports: [],
      datastore: { url: "sqlite:///tmp/ca.db", poolSize: 5 },
      labels: {},
      x509SvidKeyType: "ec-p256",
    });
  });

  it("config – file only", async () => {
    await writeFile(
      file,
      [
        "logLevel: debug",
        "svidTtl: 30m",
        "listen: 127.0.0.1:0",
        "adminIds:",
        "  - spiffe://example.org/admin",
        "datastore:",
        "  url: postgres://db/meshid",
        "  poolSize: 10",
        "x509SvidKeyType: rsa-2048",
      ].join("\n"),
    );
    const config = loadConfig({ service: "ca", schema, file, env: {} });
    expect(config.logLevel).toBe("debug");
    expect(config.svidTtl).toBe(1800);
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 0 });
    expect(config.adminIds).toEqual(["spiffe://example.org/admin"]);
    expect(config.datastore).toEqual({ url: "postgres://db/meshid", poolSize: 10 });
    expect(config.x509SvidKeyType).toBe("rsa-2048");
  });

  it("config – MESHID_<SERVICE>_CONFIG_FILE names the file and is not a setting", async () => {
    await writeFile(file, "workers: 9\n");
    const env: Record<string, string> = { ...MIN_ENV, [configFileEnvVar("ca")]: file };
    expect(configFileEnvVar("ca")).toBe("MESHID_CA_CONFIG_FILE");
    const config = loadConfig({ service: "ca", schema, file: env.MESHID_CA_CONFIG_FILE, env });
    expect(config.workers).toBe(9);
  });

  it("config – env overrides file, file overrides defaults", async () => {
    await writeFile(
      file,
      "logLevel: debug\nworkers: 8\ndatastore:\n  url: from-file\n  poolSize: 2\n",
    );
    const config = loadConfig({
      service: "ca",
      schema,
      file,
      env: { MESHID_CA_WORKERS: "16", MESHID_CA_DATASTORE__URL: "from-env" },
    });
    expect(config.logLevel).toBe("debug");
    expect(config.workers).toBe(16);
    expect(config.datastore).toEqual({ url: "from-env", poolSize: 2 });
    expect(config.svidTtl).toBe(3600);
  });

  it("config – nested keys and multi-word names map by the schema's key names", () => {
    const config = loadConfig({
      service: "ca",
      schema,
      env: {
        ...MIN_ENV,
        MESHID_CA_DATASTORE__POOL_SIZE: "7",
        MESHID_CA_SVID_TTL: "2h",
        MESHID_CA_X509_SVID_KEY_TYPE: "rsa-2048",
        MESHID_CA_LABELS__TEAM: "identity",
      },
    });
    expect(config.datastore.poolSize).toBe(7);
    expect(config.svidTtl).toBe(7200);
    expect(config.x509SvidKeyType).toBe("rsa-2048");
    expect(config.labels).toEqual({ team: "identity" });
    expect(envVarName("bundle-notifier", ["datastore", "poolSize"])).toBe(
      "MESHID_BUNDLE_NOTIFIER_DATASTORE__POOL_SIZE",
    );
  });

  it("config – coerces env strings by schema type", () => {
    const config = loadConfig({
      service: "ca",
      schema,
      env: {
        MESHID_CA_DATASTORE: '{"url":"json-url","poolSize":3}',
        MESHID_CA_DEBUG: "true",
        MESHID_CA_WORKERS: " 12 ",
        MESHID_CA_ADMIN_IDS: "spiffe://a/x, spiffe://a/y,",
        MESHID_CA_PORTS: "80,443",
        MESHID_CA_LABELS: '{"a":"b"}',
        MESHID_CA_SVID_TTL: "90s",
      },
    });
    expect(config.datastore).toEqual({ url: "json-url", poolSize: 3 });
    expect(config.debug).toBe(true);
    expect(config.workers).toBe(12);
    expect(config.adminIds).toEqual(["spiffe://a/x", "spiffe://a/y"]);
    expect(config.ports).toEqual([80, 443]);
    expect(config.labels).toEqual({ a: "b" });
    expect(config.svidTtl).toBe(90);

    const json = loadConfig({
      service: "ca",
      schema,
      env: { ...MIN_ENV, MESHID_CA_PORTS: "[1, 2]", MESHID_CA_DEBUG: "FALSE" },
    });
    expect(json.ports).toEqual([1, 2]);
    expect(json.debug).toBe(false);
  });

  it("config – rejects unknown keys in the file, naming file and key path", async () => {
    await writeFile(file, "datastore:\n  url: x\n  urll: y\nlogLevl: debug\n");
    const err = captureConfigError(() => loadConfig({ service: "ca", schema, file, env: {} }));
    expect(err.problems).toEqual([
      { source: file, path: "datastore.urll", message: "unknown key" },
      { source: file, path: "logLevl", message: "unknown key" },
    ]);
  });

  it("config – rejects env vars that match no key, naming the variable", () => {
    const err = captureConfigError(() =>
      loadConfig({
        service: "ca",
        schema,
        env: {
          ...MIN_ENV,
          MESHID_CA_SVID_TLL: "1h",
          MESHID_CA_DATASTORE__HOST: "db",
          MESHID_CA_DEBUG__X: "1",
          MESHID_AGENT_FOO: "ignored: other service",
          PATH: "/usr/bin",
        },
      }),
    );
    expect(err.problems.map((p) => [p.source, p.path])).toEqual([
      ["MESHID_CA_DATASTORE__HOST", "datastore.host"],
      ["MESHID_CA_DEBUG__X", "debug.x"],
      ["MESHID_CA_SVID_TLL", "svidTll"],
    ]);
    expect(err.problems[2]?.message).toBe('does not match any setting of service "ca"');
  });

  it("config – reports every problem at once", async () => {
    await writeFile(file, "workers: 0\nunknownKey: 1\nlisten: nowhere\n");
    const err = captureConfigError(() =>
      loadConfig({
        service: "ca",
        schema,
        file,
        env: {
          MESHID_CA_SVID_TTL: "soon",
          MESHID_CA_DEBUG: "maybe",
          MESHID_CA_NOPE: "x",
          MESHID_CA_LOG_LEVEL: "loud",
        },
      }),
    );
    expect(isMeshidError(err, CONFIG_ERROR_CODE)).toBe(true);
    expect(err.kind).toBe("invalid_argument");
    expect(CONFIG_ERROR_EXIT_CODE).toBe(2);
    const byPath = Object.fromEntries(err.problems.map((p) => [p.path, p]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        "datastore",
        "debug",
        "listen",
        "logLevel",
        "nope",
        "svidTtl",
        "unknownKey",
        "workers",
      ].sort(),
    );
    expect(byPath.unknownKey?.source).toBe(file);
    expect(byPath.nope?.source).toBe("MESHID_CA_NOPE");
    expect(byPath.svidTtl?.source).toBe("MESHID_CA_SVID_TTL");
    expect(byPath.svidTtl?.message).toMatch(/invalid duration "soon"/);
    expect(byPath.debug?.source).toBe("MESHID_CA_DEBUG");
    expect(byPath.logLevel?.source).toBe("MESHID_CA_LOG_LEVEL");
    expect(byPath.workers?.source).toBe(file);
    expect(byPath.listen?.source).toBe(file);
    expect(byPath.datastore).toEqual({
      source: "(not set)",
      path: "datastore",
      message: `is required: set datastore in ${file} or MESHID_CA_DATASTORE`,
    });
    const lines = err.message.split("\n");
    expect(lines[0]).toBe('invalid configuration for service "ca" (8 problems):');
    expect(lines).toHaveLength(9);
    for (const p of err.problems) {
      expect(err.message).toContain(`  - ${p.source}: ${p.path}: ${p.message}`);
    }
  });

  it("config – cross-field checks run and name their source", () => {
    const err = captureConfigError(() =>
      loadConfig({
        service: "ca",
        schema,
        env: { ...MIN_ENV, MESHID_CA_SVID_TTL: "48h" },
      }),
    );
    expect(err.problems).toEqual([
      { source: "MESHID_CA_SVID_TTL", path: "svidTtl", message: "must not exceed maxSvidTtl" },
    ]);
  });

  it("config – result is deeply frozen", () => {
    const config = loadConfig({
      service: "ca",
      schema,
      env: { ...MIN_ENV, MESHID_CA_ADMIN_IDS: "a,b" },
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.datastore)).toBe(true);
    expect(Object.isFrozen(config.adminIds)).toBe(true);
    expect(Object.isFrozen(config.listen)).toBe(true);
    expect(() => {
      config.datastore.url = "changed";
    }).toThrow(TypeError);
    expect(() => config.adminIds.push("c")).toThrow(TypeError);
  });

  it("config – invalid YAML is a problem with file position, without quoting the file", async () => {
    await writeFile(file, "datastore:\n  url: x\n password: hunter2: [\n");
    const err = captureConfigError(() => loadConfig({ service: "ca", schema, file, env: MIN_ENV }));
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) {
      expect(p.source).toMatch(
        new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+$`),
      );
      expect(p.message).toMatch(/^invalid YAML: /);
    }
    expect(err.message).not.toContain("hunter2");
  });

  it("config – unreadable file and non-mapping YAML are problems", async () => {
    const missing = join(dir.path, "missing.yaml");
    const err = captureConfigError(() =>
      loadConfig({ service: "ca", schema, file: missing, env: MIN_ENV }),
    );
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]?.source).toBe(missing);
    expect(err.problems[0]?.message).toMatch(/^cannot read file: ENOENT/);

    await writeFile(file, "- a\n- b\n");
    const list = captureConfigError(() =>
      loadConfig({ service: "ca", schema, file, env: MIN_ENV }),
    );
    expect(list.problems).toEqual([
      { source: file, path: "", message: "the top level must be a mapping of settings" },
    ]);
    expect(list.message).toContain("(root)");
  });

  it("config – empty file means all defaults", async () => {
    await writeFile(file, "# nothing here\n");
    const config = loadConfig({ service: "ca", schema, file, env: MIN_ENV });
    expect(config.workers).toBe(DEFAULT_WORKERS);
  });

  it("config – invalid JSON in an env var is reported without echoing it", () => {
    const err = captureConfigError(() =>
      loadConfig({
        service: "ca",
        schema,
        env: { ...MIN_ENV, MESHID_CA_LABELS: '{"token": s3cr3t' },
      }),
    );
    expect(err.problems).toEqual([
      { source: "MESHID_CA_LABELS", path: "labels", message: "is not valid JSON" },
    ]);
    expect(err.message).not.toContain("s3cr3t");
  });
});
