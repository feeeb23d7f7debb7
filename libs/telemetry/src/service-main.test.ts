import { ConfigError } from "@meshid/config";
import { parseServiceCommand, serviceMain, type ServiceMainParams } from "./service-main";

const SPEC = { configFileEnvVar: "MESHID_X_CONFIG_FILE", stringFlags: ["join-token"] };

describe("parseServiceCommand", () => {
  it("service command – --config wins over the env file variable; empty env is none", () => {
    expect(
      parseServiceCommand(["--config", "/a.yaml"], { MESHID_X_CONFIG_FILE: "/b" }, SPEC),
    ).toEqual({ kind: "run", configFile: "/a.yaml" });
    expect(parseServiceCommand(["-c", "/a.yaml"], {}, SPEC)).toEqual({
      kind: "run",
      configFile: "/a.yaml",
    });
    expect(parseServiceCommand([], { MESHID_X_CONFIG_FILE: "/b.yaml" }, SPEC)).toEqual({
      kind: "run",
      configFile: "/b.yaml",
    });
    expect(parseServiceCommand([], { MESHID_X_CONFIG_FILE: "" }, SPEC)).toEqual({ kind: "run" });
  });

  it("service command – extra string flags, help and usage errors", () => {
    expect(parseServiceCommand(["--join-token", "t1"], {}, SPEC)).toEqual({
      kind: "run",
      flags: { "join-token": "t1" },
    });
    expect(parseServiceCommand(["--join-token="], {}, SPEC)).toEqual({
      kind: "usage_error",
      message: "--join-token needs a token",
    });
    expect(parseServiceCommand(["--config="], {}, SPEC)).toEqual({
      kind: "usage_error",
      message: "--config needs a file",
    });
    expect(parseServiceCommand(["-h"], {}, SPEC)).toEqual({ kind: "help" });
    expect(parseServiceCommand(["--nope"], {}, SPEC).kind).toBe("usage_error");
    expect(parseServiceCommand(["extra"], {}, SPEC).kind).toBe("usage_error");
    // A flag of another service is unknown here.
    expect(parseServiceCommand(["--join-token", "t"], {}, { configFileEnvVar: "X" }).kind).toBe(
      "usage_error",
    );
  });
});

describe("serviceMain", () => {
  function harness(overrides: Partial<ServiceMainParams<{ n: number }>> = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const ran: { n: number }[] = [];
    const params: ServiceMainParams<{ n: number }> = {
      binary: "meshid-x",
      usage: "usage: meshid-x [--config <file>]",
      command: SPEC,
      loadConfig: (command) => ({ n: command.configFile === undefined ? 0 : 1 }),
      run: (config) => {
        ran.push(config);
        return Promise.resolve(7);
      },
      ...overrides,
    };
    const main = (argv: string[]) =>
      serviceMain(params, {
        argv,
        env: {},
        stdout: { write: (t: string) => out.push(t) },
        stderr: { write: (t: string) => err.push(t) },
      });
    return { main, out, err, ran };
  }

  it("service main – help prints usage and exits 0 without loading or running", async () => {
    const h = harness();
    await expect(h.main(["--help"])).resolves.toBe(0);
    expect(h.out.join("")).toBe("usage: meshid-x [--config <file>]\n");
    expect(h.ran).toEqual([]);
  });

  it("service main – a usage error names the program and exits 2", async () => {
    const h = harness();
    await expect(h.main(["--bogus"])).resolves.toBe(2);
    expect(h.err.join("")).toMatch(/^meshid-x: Unknown option '--bogus'/);
    expect(h.ran).toEqual([]);
  });

  it("service main – a ConfigError is printed and exits 2; other errors reject", async () => {
    const bad = harness({
      loadConfig: () => {
        throw new ConfigError("x", [
          { source: "MESHID_X_LISTEN", path: "listen", message: "must be host:port" },
        ]);
      },
    });
    await expect(bad.main([])).resolves.toBe(2);
    expect(bad.err.join("")).toMatch(/listen/);
    expect(bad.ran).toEqual([]);

    const bug = harness({
      loadConfig: () => {
        throw new TypeError("bug");
      },
    });
    await expect(bug.main([])).rejects.toThrow("bug");
  });

  it("service main – runs with the loaded config and resolves with run's exit code", async () => {
    const h = harness();
    await expect(h.main(["--config", "/x.yaml"])).resolves.toBe(7);
    expect(h.ran).toEqual([{ n: 1 }]);
  });
});
