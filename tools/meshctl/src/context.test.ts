import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMeshidError } from "@meshid/errors";
import { loadContext } from "./context";

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "meshctl-context-"));
  mkdirSync(join(dir, ".meshid"));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function usageErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isMeshidError(err, "meshctl.usage")) return err.message;
    throw err;
  }
  throw new Error("expected a usage error");
}

describe("loadContext", () => {
  test("context – default file in cwd; relative paths resolve against the file's directory", () => {
    writeFileSync(
      join(dir, ".meshid", "meshctl.yaml"),
      [
        "trustDomain: example.org",
        "ca: { adminSocket: ca/admin.sock, address: localhost:8081 }",
        "proxyConfig: { address: localhost:8082, certFile: /abs/cert.pem, keyFile: k.pem, bundleFile: b.pem }",
        "workloadSocket: agent/workload.sock",
        "natsUrl: nats://127.0.0.1:4222",
        "services: { ca: 'http://127.0.0.1:9090' }",
      ].join("\n"),
    );
    const c = loadContext({ flag: undefined, env: {}, cwd: dir });
    expect(c.file).toBe(join(dir, ".meshid", "meshctl.yaml"));
    expect(c.ca).toEqual({
      adminSocket: join(dir, ".meshid", "ca", "admin.sock"),
      address: "localhost:8081",
    });
    expect(c.proxyConfig).toEqual({
      address: "localhost:8082",
      certFile: "/abs/cert.pem",
      keyFile: join(dir, ".meshid", "k.pem"),
      bundleFile: join(dir, ".meshid", "b.pem"),
    });
    expect(c.workloadSocket).toBe(join(dir, ".meshid", "agent", "workload.sock"));
    expect(c.services).toEqual({ ca: "http://127.0.0.1:9090" });
  });

  test("context – --context wins over MESHCTL_CONTEXT, which wins over the default", () => {
    writeFileSync(join(dir, "a.yaml"), "natsUrl: nats://a:1\n");
    writeFileSync(join(dir, "b.yaml"), "natsUrl: nats://b:1\n");
    writeFileSync(join(dir, ".meshid", "meshctl.yaml"), "natsUrl: nats://default:1\n");
    const env = { MESHCTL_CONTEXT: join(dir, "b.yaml") };
    expect(loadContext({ flag: "a.yaml", env, cwd: dir }).natsUrl).toBe("nats://a:1");
    expect(loadContext({ flag: undefined, env, cwd: dir }).natsUrl).toBe("nats://b:1");
    expect(loadContext({ flag: undefined, env: {}, cwd: dir }).natsUrl).toBe("nats://default:1");
  });

  test("context – a missing default file is an empty context; a missing named file is a usage error", () => {
    rmSync(join(dir, ".meshid"), { recursive: true });
    expect(loadContext({ flag: undefined, env: {}, cwd: dir })).toEqual({
      file: undefined,
      services: {},
    });
    expect(usageErrorOf(() => loadContext({ flag: "nope.yaml", env: {}, cwd: dir }))).toContain(
      "does not exist",
    );
  });

  test("context – unknown keys, wrong types and bad YAML are usage errors naming the problem", () => {
    const file = join(dir, "c.yaml");
    writeFileSync(file, "ca: { adminSocket: x, port: 1 }\nservices: { ca: 9090 }\n");
    const message = usageErrorOf(() => loadContext({ flag: file, env: {}, cwd: dir }));
    expect(message).toContain("ca");
    expect(message).toContain("port");
    expect(message).toContain("services.ca");
    writeFileSync(file, "ca: [unclosed\n");
    expect(usageErrorOf(() => loadContext({ flag: file, env: {}, cwd: dir }))).toContain(
      "not valid YAML",
    );
  });
});
