import { z } from "zod";
import {
  formatListenAddress,
  listenAddressSchema,
  logLevelSchema,
  opsSchema,
  parseListenAddress,
  pathSchema,
} from "./common-schemas";

describe("common schemas", () => {
  it("log level – accepts pino levels only", () => {
    expect(logLevelSchema.parse("debug")).toBe("debug");
    expect(logLevelSchema.safeParse("verbose").success).toBe(false);
  });

  it.each([
    ["0.0.0.0:8443", { host: "0.0.0.0", port: 8443 }],
    ["localhost:0", { host: "localhost", port: 0 }],
    ["[::1]:9090", { host: "::1", port: 9090 }],
    ["ca.meshid.svc:443", { host: "ca.meshid.svc", port: 443 }],
  ])("listen address – parses %s", (text, expected) => {
    expect(listenAddressSchema().parse(text)).toEqual(expected);
    expect(formatListenAddress(expected)).toBe(text);
  });

  it.each(["8443", ":8443", "host:70000", "::1:80", "[host]:80", "bad_host:80", "host:"])(
    "listen address – rejects %s",
    (text) => {
      expect("error" in parseListenAddress(text)).toBe(true);
      expect(listenAddressSchema().safeParse(text).success).toBe(false);
    },
  );

  it("listen address – .default takes the string form", () => {
    const schema = z.object({ listen: listenAddressSchema().default("127.0.0.1:9090") });
    expect(schema.parse({})).toEqual({ listen: { host: "127.0.0.1", port: 9090 } });
  });

  it("ops – listen defaults when the section or the key is left out; unknown keys refused", () => {
    const schema = z.object({ ops: opsSchema("0.0.0.0:9091") }).strict();
    const port9091 = { ops: { listen: { host: "0.0.0.0", port: 9091 } } };
    expect(schema.parse({})).toEqual(port9091);
    expect(schema.parse({ ops: {} })).toEqual(port9091);
    expect(schema.parse({ ops: { listen: "127.0.0.1:0" } })).toEqual({
      ops: { listen: { host: "127.0.0.1", port: 0 } },
    });
    expect(schema.safeParse({ ops: { listen: "nope" } }).success).toBe(false);
    expect(schema.safeParse({ ops: { port: 1 } }).success).toBe(false);
  });

  it("path – requires an absolute path", () => {
    expect(pathSchema.parse("/var/lib/meshid")).toBe("/var/lib/meshid");
    expect(pathSchema.safeParse("var/lib").error?.issues[0]?.message).toBe(
      "must be an absolute path",
    );
    expect(pathSchema.safeParse("").success).toBe(false);
  });
});
