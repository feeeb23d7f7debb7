import { parseRegistrarCommand } from "./main";

describe("parseRegistrarCommand", () => {
  it("command line – --config, the env file variable, --help and usage errors", () => {
    expect(parseRegistrarCommand(["--config", "/etc/r.yaml"], {})).toEqual({
      kind: "run",
      configFile: "/etc/r.yaml",
    });
    expect(parseRegistrarCommand([], { MESHID_REGISTRAR_CONFIG_FILE: "/etc/e.yaml" })).toEqual({
      kind: "run",
      configFile: "/etc/e.yaml",
    });
    expect(parseRegistrarCommand([], {})).toEqual({ kind: "run" });
    expect(parseRegistrarCommand(["-h"], {})).toEqual({ kind: "help" });
    expect(parseRegistrarCommand(["--config", ""], {}).kind).toBe("usage_error");
    expect(parseRegistrarCommand(["--nope"], {}).kind).toBe("usage_error");
  });
});
