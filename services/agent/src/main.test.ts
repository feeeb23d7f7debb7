import { parseAgentCommand } from "./main";

describe("parseAgentCommand", () => {
  it("agent command – runs with the --config file, else the MESHID_AGENT_CONFIG_FILE one", () => {
    expect(parseAgentCommand(["--config", "/etc/a.yaml"], {})).toEqual({
      kind: "run",
      configFile: "/etc/a.yaml",
    });
    expect(parseAgentCommand(["-c", "/etc/a.yaml"], { MESHID_AGENT_CONFIG_FILE: "/x" })).toEqual({
      kind: "run",
      configFile: "/etc/a.yaml",
    });
    expect(parseAgentCommand([], { MESHID_AGENT_CONFIG_FILE: "/x.yaml" })).toEqual({
      kind: "run",
      configFile: "/x.yaml",
    });
    expect(parseAgentCommand([], { MESHID_AGENT_CONFIG_FILE: "" })).toEqual({ kind: "run" });
  });

  it("agent command – help and usage errors", () => {
    expect(parseAgentCommand(["--help"], {})).toEqual({ kind: "help" });
    expect(parseAgentCommand(["--nope"], {}).kind).toBe("usage_error");
    expect(parseAgentCommand(["extra"], {}).kind).toBe("usage_error");
    expect(parseAgentCommand(["--config="], {})).toEqual({
      kind: "usage_error",
      message: "--config needs a file",
    });
  });
});
