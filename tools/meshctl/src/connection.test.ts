import { isMeshidError } from "@meshid/errors";
import type { CliIo } from "./cli-io";
import { resolveCaEndpoint, resolveProxyConfigEndpoint } from "./connection";
import type { MeshctlContext } from "./context";

const io = (env: Record<string, string> = {}): CliIo => ({
  stdout: { write: () => true },
  stderr: { write: () => true },
  env,
  cwd: "/work",
});

const context: MeshctlContext = {
  file: "/ctx/meshctl.yaml",
  trustDomain: "example.org",
  ca: { adminSocket: "/ctx/ca/admin.sock", address: "localhost:8081" },
  workloadSocket: "/ctx/agent/workload.sock",
  services: {},
};

describe("endpoint resolution", () => {
  test("resolveCaEndpoint – flag, then env, then the context's admin socket", () => {
    expect(resolveCaEndpoint({ caSocket: "rel/admin.sock" }, context, io())).toEqual({
      kind: "unix",
      socketPath: "/work/rel/admin.sock",
    });
    expect(resolveCaEndpoint({}, context, io({ MESHCTL_CA_SOCKET: "/env.sock" }))).toEqual({
      kind: "unix",
      socketPath: "/env.sock",
    });
    expect(resolveCaEndpoint({}, context, io())).toEqual({
      kind: "unix",
      socketPath: "/ctx/ca/admin.sock",
    });
  });

  test("resolveCaEndpoint – an address uses mTLS: files, else the Workload API; server ID from the trust domain", () => {
    expect(
      resolveCaEndpoint(
        { caAddress: "localhost:9", cert: "c.pem", key: "k.pem", bundle: "b.pem" },
        context,
        io(),
      ),
    ).toEqual({
      kind: "tls",
      address: "localhost:9",
      serverId: "spiffe://example.org/meshid/ca",
      credentials: {
        kind: "files",
        certFile: "/work/c.pem",
        keyFile: "/work/k.pem",
        bundleFile: "/work/b.pem",
      },
    });
    expect(resolveCaEndpoint({ caAddress: "localhost:9" }, context, io())).toEqual({
      kind: "tls",
      address: "localhost:9",
      serverId: "spiffe://example.org/meshid/ca",
      credentials: { kind: "workload", socket: "/ctx/agent/workload.sock" },
    });
  });

  test("resolveCaEndpoint – incomplete files, no SVID source, nothing configured: usage errors", () => {
    const usage = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        if (isMeshidError(err, "meshctl.usage")) return err.message;
        throw err;
      }
      throw new Error("expected a usage error");
    };
    expect(
      usage(() => resolveCaEndpoint({ caAddress: "localhost:9", cert: "c" }, context, io())),
    ).toContain("go together");
    expect(
      usage(() =>
        resolveCaEndpoint({ caAddress: "localhost:9" }, { services: {}, file: undefined }, io()),
      ),
    ).toContain("needs an X509-SVID");
    expect(usage(() => resolveProxyConfigEndpoint({}, context, io()))).toContain(
      "--proxy-config-socket",
    );
  });
});
