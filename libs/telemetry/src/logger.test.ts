import { generateKeyPairSync } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { LogKeys } from "./log-keys";
import {
  REDACTED,
  REDACTED_PRIVATE_KEY,
  createLogger,
  createNoopLogger,
  redactPrivateKeys,
  type Logger,
} from "./logger";

function captureLogger(level = "trace"): {
  logger: Logger;
  lines: () => Record<string, unknown>[];
  raw: () => string;
} {
  const chunks: string[] = [];
  const logger = createLogger({
    service: "ca",
    level,
    destination: { write: (s: string) => void chunks.push(s) },
  });
  return {
    logger,
    raw: () => chunks.join(""),
    lines: () => chunks.map((c) => JSON.parse(c) as Record<string, unknown>),
  };
}

describe("createLogger", () => {
  const ecKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
    type: "pkcs8",
    format: "pem",
  }) as string;
  const rsaKey = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({
    type: "pkcs1",
    format: "pem",
  }) as string;
  const keyBody = (pem: string): string => (pem.split("\n")[1] ?? "").slice(0, 40);

  beforeAll(() => {
    expect(ecKey).toContain("-----BEGIN PRIVATE KEY-----");
    expect(rsaKey).toContain("-----BEGIN RSA PRIVATE KEY-----");
  });

  it("logger – writes JSON with service, level label and message", () => {
    const { logger, lines } = captureLogger();
    logger.info({ [LogKeys.spiffeId]: "spiffe://example.org/ns/a/sa/b" }, "svid signed");
    logger.warn("plain message");
    const [first, second] = lines();
    expect(first).toMatchObject({
      service: "ca",
      level: "info",
      msg: "svid signed",
      spiffeId: "spiffe://example.org/ns/a/sa/b",
    });
    expect(second).toMatchObject({ service: "ca", level: "warn", msg: "plain message" });
  });

  it("logger – respects the level", () => {
    const { logger, lines } = captureLogger("warn");
    logger.info("hidden");
    logger.error("shown");
    expect(lines().map((l) => l.msg)).toEqual(["shown"]);
  });

  it("logger – rejects an unknown level", () => {
    expect(() => createLogger({ service: "ca", level: "loud" })).toThrow(MeshidError);
  });

  it("logger – child loggers keep service and add bindings", () => {
    const { logger, lines } = captureLogger();
    logger.child({ component: "rotator" }).child({ entryId: "e1" }).info("rotated");
    expect(lines()[0]).toMatchObject({ service: "ca", component: "rotator", entryId: "e1" });
  });

  it("logger – redacts key-material fields by name", () => {
    const { logger, lines, raw } = captureLogger();
    logger.info(
      {
        privateKey: "pk-value",
        key: "k-value",
        token: "t-value",
        password: "p-value",
        secretAccessKey: "s-value",
        svid: { keyPem: "kp-value", x509SvidKey: "xk-value", secret: "s2-value", certPem: "cert" },
      },
      "fields",
    );
    const line = lines()[0];
    expect(line).toMatchObject({
      privateKey: REDACTED,
      key: REDACTED,
      token: REDACTED,
      password: REDACTED,
      secretAccessKey: REDACTED,
      svid: { keyPem: REDACTED, x509SvidKey: REDACTED, secret: REDACTED, certPem: "cert" },
    });
    expect(raw()).not.toMatch(/-value/);
  });

  it("logger – removes PEM private keys from the message", () => {
    const { logger, lines, raw } = captureLogger();
    logger.error(`loaded ${ecKey} from disk`);
    expect(raw()).not.toContain(keyBody(ecKey));
    expect(raw()).not.toContain("BEGIN PRIVATE KEY");
    expect(lines()[0]?.msg).toBe(`loaded ${REDACTED_PRIVATE_KEY}\n from disk`);
  });

  it("logger – removes PEM private keys from any field", () => {
    const { logger, lines, raw } = captureLogger();
    logger.info({ material: rsaKey, nested: { deep: { pem: `x${ecKey}y` } }, list: [ecKey] }, "m");
    expect(raw()).not.toContain(keyBody(rsaKey));
    expect(raw()).not.toContain(keyBody(ecKey));
    const line = lines()[0];
    expect(line?.material).toBe(`${REDACTED_PRIVATE_KEY}\n`);
    expect(line?.nested).toEqual({ deep: { pem: `x${REDACTED_PRIVATE_KEY}\ny` } });
  });

  it("logger – removes PEM private keys from errors (message and stack) and bindings", () => {
    const { logger, lines, raw } = captureLogger();
    const err = new Error(`cannot parse ${ecKey}`);
    logger.error({ err }, "failed");
    logger.error(new Error(`second ${rsaKey}`));
    logger.child({ leaked: ecKey }).info("child");
    expect(raw()).not.toContain(keyBody(ecKey));
    expect(raw()).not.toContain(keyBody(rsaKey));
    expect(raw()).not.toContain("PRIVATE KEY-----");
    const [first, second, third] = lines();
    const firstErr = first?.err as { message: string; stack: string };
    expect(firstErr.message).toBe(`cannot parse ${REDACTED_PRIVATE_KEY}\n`);
    expect(firstErr.stack).toContain(REDACTED_PRIVATE_KEY);
    expect((second?.err as { message: string }).message).toContain(REDACTED_PRIVATE_KEY);
    expect(third?.leaked).toBe(`${REDACTED_PRIVATE_KEY}\n`);
  });

  it("logger – redactPrivateKeys cuts truncated keys to the end of the string, keeps JSON valid", () => {
    const truncated = JSON.stringify({ m: `${ecKey.slice(0, 80)}"q"` });
    // Without an END line everything up to the end of the JSON string goes; the JSON stays valid.
    expect(JSON.parse(redactPrivateKeys(truncated))).toEqual({ m: REDACTED_PRIVATE_KEY });
    expect(redactPrivateKeys("no keys here")).toBe("no keys here");
    expect(redactPrivateKeys("-----BEGIN CERTIFICATE-----abc-----END CERTIFICATE-----")).toBe(
      "-----BEGIN CERTIFICATE-----abc-----END CERTIFICATE-----",
    );
  });

  it("logger – noop logger accepts every call", () => {
    const logger = createNoopLogger();
    logger.info({ a: 1 }, "x");
    logger.child({ b: 2 }).error("y");
    expect(logger.child({})).toBe(logger);
  });
});
