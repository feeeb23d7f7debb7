import { loadAgentConfig } from "./config";
import { configEnvForCommand, parseAgentCommand } from "./main";

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

describe("--join-token", () => {
  it("agent command – --join-token is parsed and must not be empty", () => {
    expect(parseAgentCommand(["--join-token", "abc123"], {})).toEqual({
      kind: "run",
      joinToken: "abc123",
    });
    expect(parseAgentCommand(["--join-token="], {})).toEqual({
      kind: "usage_error",
      message: "--join-token needs a token",
    });
  });

  it("agent command – the flag sets join_token attestation over the environment's settings", () => {
    const env = {
      MESHID_AGENT_CA_ADDRESS: "ca.meshid:8443",
      MESHID_AGENT_BUNDLE_FILE: "/run/meshid/bundle.crt",
      MESHID_AGENT_ATTESTATION__TYPE: "join_token",
      MESHID_AGENT_ATTESTATION__JOIN_TOKEN: "from-env",
    };
    const config = loadAgentConfig({ env: configEnvForCommand({ joinToken: "from-flag" }, env) });
    expect(config.attestation).toEqual({ type: "join_token", joinToken: "from-flag" });
    expect(configEnvForCommand({}, env)).toBe(env);
  });
});
