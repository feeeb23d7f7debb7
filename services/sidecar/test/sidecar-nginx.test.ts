// NGINX rejecting a configuration, NGINX dying, and the agent restarting, against the real
// agent, CA, nats-server and nginx.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { spawnManaged, type ManagedProcess } from "@meshid/testkit";
import type { WorkloadX509Svid } from "@meshid/workload-api";
import {
  eventually,
  startSidecarStack,
  startTestSidecar,
  strictTemplate,
  tlsPeer,
  type SidecarStack,
  type TestSidecar,
} from "./sidecar-harness";

jest.setTimeout(300_000);

const SERVER_ID = "spiffe://example.org/nginx/server";
const CLIENT_ID = "spiffe://example.org/nginx/client";

describe("sidecar – NGINX and agent failures", () => {
  let stack: SidecarStack;
  let sidecar: TestSidecar;
  let serverEntry: string;
  let client: WorkloadX509Svid;

  beforeAll(async () => {
    stack = await startSidecarStack();
    serverEntry = await stack.createEntry("/nginx/server");
    await stack.createEntry("/nginx/client");
    client = await stack.fetchSvid(CLIENT_ID);
    sidecar = await startTestSidecar({ stack, name: "failures", config: { spiffeId: SERVER_ID } });
    await eventually("sidecar ready", () => (sidecar.sidecar.ready() ? true : undefined));
  });

  afterAll(async () => {
    await sidecar?.stop();
    await stack?.stop();
  });

  /** Waits until NGINX serves the SVID the sidecar last wrote, and checks with a handshake. */
  async function servesCurrentSvid(what: string): Promise<string> {
    const serial = await eventually(what, () => {
      const st = sidecar.sidecar.status();
      return st.servedSerialNumber !== undefined &&
        st.servedSerialNumber === st.svid?.serialNumber &&
        st.nginxRunning
        ? st.servedSerialNumber
        : undefined;
    });
    const peer = await tlsPeer(sidecar.port, client);
    expect(peer.serialNumber).toBe(serial.toUpperCase());
    return serial;
  }

  it("sidecar config – NGINX rejecting a configuration keeps the last good one and degrades health until a good one arrives", async () => {
    const before = sidecar.sidecar.status();
    expect(before.config.appliedGeneration).toBe(1);
    const mark = sidecar.events.length;

    await writeFile(sidecar.templateFile, strictTemplate(sidecar.port, "no_such_directive on;"));
    const rejected = await sidecar.waitForEvent(
      "config rejected",
      (e): e is Extract<typeof e, { type: "config_rejected" }> => e.type === "config_rejected",
      mark,
    );
    expect(rejected.generation).toBe(2);
    expect(rejected.reason).toMatch(/unknown directive "no_such_directive"/);
    const degraded = sidecar.sidecar.status();
    expect(degraded.degraded).toBe(true);
    expect(degraded.degradedReasons).toContain("config_rejected");
    expect(sidecar.sidecar.health()).toEqual({
      status: "degraded",
      reasons: degraded.degradedReasons,
    });
    expect(degraded.config.appliedGeneration).toBe(1);
    expect(degraded.config.rejected?.generation).toBe(2);
    // The live file is the last good one and NGINX still serves with it.
    expect(await readFile(sidecar.config.nginx.configFile, "utf8")).not.toMatch(
      /no_such_directive/,
    );
    await servesCurrentSvid("NGINX still serving after the rejection");
    expect(sidecar.sidecar.ready()).toBe(true);
    expect(sidecar.memory.text()).toMatch(
      /NGINX rejected the configuration; keeping the last good one/,
    );

    // A good configuration clears the degradation and is applied with a reload.
    await writeFile(sidecar.templateFile, strictTemplate(sidecar.port, "server_tokens off;"));
    await eventually("good config applied", () =>
      sidecar.sidecar.status().config.appliedGeneration === 3 ? true : undefined,
    );
    await eventually("health back", () => (sidecar.sidecar.status().degraded ? undefined : true));
    expect(await readFile(sidecar.config.nginx.configFile, "utf8")).toMatch(/server_tokens off;/);
    await servesCurrentSvid("NGINX serving the new configuration");
  });

  it("sidecar nginx – a killed NGINX master is restarted and serves the current SVID", async () => {
    const pid = Number(
      (await readFile(join(sidecar.config.nginx.prefix, "nginx.pid"), "utf8")).trim(),
    );
    process.kill(pid, "SIGKILL");
    await eventually("NGINX restarted", () =>
      sidecar.sidecar.status().nginxRestarts >= 1 && sidecar.sidecar.ready() ? true : undefined,
    );
    const newPid = Number(
      (await readFile(join(sidecar.config.nginx.prefix, "nginx.pid"), "utf8")).trim(),
    );
    expect(newPid).not.toBe(pid);
    await servesCurrentSvid("restarted NGINX serving");
    expect(sidecar.memory.text()).toMatch(/NGINX exited; restarting/);
  });

  it("sidecar agent – an agent restart makes the sidecar reconnect and follow later rotations", async () => {
    const before = await servesCurrentSvid("serving before the agent restart");
    await stack.agent.restart();
    await stack.forceRotation(serverEntry);
    await eventually("new SVID after the agent restart", () => {
      const st = sidecar.sidecar.status();
      return st.svid !== undefined && st.svid.serialNumber !== before ? true : undefined;
    });
    const after = await servesCurrentSvid("serving after the agent restart");
    expect(after).not.toBe(before);
    expect(sidecar.memory.text()).toMatch(/Workload API watch failed; retrying/);
    expect(sidecar.sidecar.status().degraded).toBe(false);
    expect(sidecar.sidecar.health()).toEqual({ status: "ok" });
  });

  it("sidecar signal – with an NGINX run by someone else it only writes and reloads, and is ready once that NGINX runs", async () => {
    const external = await startTestSidecar({
      stack,
      name: "external",
      config: { spiffeId: SERVER_ID },
      nginx: { manage: "signal" },
    });
    let nginx: ManagedProcess | undefined;
    try {
      // The sidecar installs its checked configuration, but there is no master to reload yet.
      await external.until("configuration installed", () =>
        existsSync(external.config.nginx.configFile) ? true : undefined,
      );
      expect(external.sidecar.ready()).toBe(false);
      nginx = await spawnManaged(
        "nginx",
        [
          "-p",
          external.config.nginx.prefix,
          "-c",
          external.config.nginx.configFile,
          "-g",
          "daemon off;",
        ],
        { name: "external-nginx", orphanSignal: "SIGTERM" },
      );
      await external.until("ready through the external NGINX", () =>
        external.sidecar.ready() ? true : undefined,
      );
      const before = external.sidecar.status().servedSerialNumber;
      expect((await tlsPeer(external.port, client)).serialNumber).toBe(before?.toUpperCase());

      await stack.forceRotation(serverEntry);
      const after = await external.until("rotation served by the external NGINX", () => {
        const st = external.sidecar.status();
        return st.servedSerialNumber !== before && st.servedSerialNumber === st.svid?.serialNumber
          ? st.servedSerialNumber
          : undefined;
      });
      expect((await tlsPeer(external.port, client)).serialNumber).toBe(after.toUpperCase());
      expect(external.sidecar.status().nginxRestarts).toBe(0);
    } finally {
      await external.stop();
      // The sidecar never stops an NGINX it did not start.
      expect(nginx?.exitStatus()).toBeUndefined();
      await nginx?.stop();
    }
  });
});
