import { isMeshidError } from "@meshid/errors";
import { ENDPOINT_INVALID_CODE, parseSpiffeEndpointSocket, socketPathFromEnv } from "./endpoint";

describe("parseSpiffeEndpointSocket", () => {
  it.each([
    ["unix:///run/spire/agent.sock", "/run/spire/agent.sock"],
    ["unix:/run/spire/agent.sock", "/run/spire/agent.sock"],
    ["UNIX:///tmp/a%20b.sock", "/tmp/a b.sock"],
    ["  unix:///tmp/x.sock\n", "/tmp/x.sock"],
  ])("endpoint – accepts %j", (value, path) => {
    expect(parseSpiffeEndpointSocket(value)).toBe(path);
  });

  it.each([
    "tcp://127.0.0.1:8081",
    "/run/agent.sock",
    "unix://host/run/agent.sock",
    "unix:relative.sock",
    "unix://",
    "unix:///",
    "unix:///tmp/x.sock?query=1",
    "unix:///tmp/x.sock#frag",
    "unix:///tmp/%zz",
  ])("endpoint – refuses %j", (value) => {
    let caught: unknown;
    try {
      parseSpiffeEndpointSocket(value);
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, ENDPOINT_INVALID_CODE)).toBe(true);
  });

  it("endpoint – reads SPIFFE_ENDPOINT_SOCKET, unset or empty is undefined", () => {
    expect(socketPathFromEnv({ SPIFFE_ENDPOINT_SOCKET: "unix:///a/b.sock" })).toBe("/a/b.sock");
    expect(socketPathFromEnv({})).toBeUndefined();
    expect(socketPathFromEnv({ SPIFFE_ENDPOINT_SOCKET: "" })).toBeUndefined();
    expect(() => socketPathFromEnv({ SPIFFE_ENDPOINT_SOCKET: "tcp://x:1" })).toThrow(
      /not a unix: address/,
    );
  });
});
