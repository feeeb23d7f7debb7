import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { isProcessAlive } from "../src/process";
import { startMeshidCa, type MeshidCaProcess } from "../src/meshid-ca-process";

jest.setTimeout(60_000);

/** Resolves once a TCP connection to 127.0.0.1:`port` opens (and closes it). */
function connectTo(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.end();
      resolve();
    });
    socket.on("error", reject);
  });
}

describe("startMeshidCa", () => {
  let ca: MeshidCaProcess | undefined;

  afterEach(async () => {
    if (ca !== undefined && isProcessAlive(ca.pid())) await ca.kill9();
    ca = undefined;
  });

  it("startMeshidCa – serves admin calls, writes the bundle, restarts, and leaves no process", async () => {
    ca = await startMeshidCa({ trustDomain: "td.test" });
    // The CA binds its own port (no port picked up front that another process could take).
    expect(ca.port).toBeGreaterThan(0);
    expect(ca.address).toBe(`localhost:${ca.port}`);
    await connectTo(ca.port);
    expect(ca.serverId).toBe("spiffe://td.test/meshid/ca");
    const pem = await readFile(ca.bundleFile, "utf8");
    expect(pem).toContain("-----BEGIN CERTIFICATE-----");
    expect(await ca.bundlePem()).toBe(pem);

    const token = await ca.createJoinToken();
    expect(token.length).toBeGreaterThanOrEqual(8);
    const admin = ca.admin();
    const listed = await admin.agents.listAgents({});
    expect(listed.agents).toEqual([]);

    const firstPid = ca.pid();
    await ca.restart();
    expect(ca.pid()).not.toBe(firstPid);
    expect(isProcessAlive(firstPid)).toBe(false);
    expect(await ca.bundlePem()).toContain("-----BEGIN CERTIFICATE-----");
    // Restarted on the same port: agents and clients keep their address.
    await connectTo(ca.port);

    const pid = ca.pid();
    const workDir = ca.workDir;
    const exit = await ca.stop();
    expect(exit.signal === "SIGTERM" || exit.code === 0).toBe(true);
    expect(isProcessAlive(pid)).toBe(false);
    expect(existsSync(workDir)).toBe(false);
  });
});
