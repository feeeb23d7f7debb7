import { readFile, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { LOCAL_MESH_PORT_NAMES, loadOrCreateState, requirePortsFree, stateFile } from "./state";

describe("local mesh state", () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await createTempDir("local-mesh-state");
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it("state – the first load picks distinct ports and saves them 0600; the next load reuses them", async () => {
    const first = await loadOrCreateState(dir.path);
    expect(first.reused).toBe(false);
    const ports = LOCAL_MESH_PORT_NAMES.map((n) => first.state.ports[n]);
    expect(new Set(ports).size).toBe(ports.length);
    expect((await stat(stateFile(dir.path))).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateState(dir.path);
    expect(second.reused).toBe(true);
    expect(second.state.ports).toEqual(first.state.ports);
  });

  it("state – a port added since is picked, the others kept; bad JSON is refused with a hint", async () => {
    const { state } = await loadOrCreateState(dir.path);
    const { sidecarOpsB: _dropped, ...older } = state.ports;
    await writeFile(stateFile(dir.path), JSON.stringify({ ...state, ports: older }));
    const again = await loadOrCreateState(dir.path);
    expect(again.state.ports.nats).toBe(state.ports.nats);
    expect(typeof again.state.ports.sidecarOpsB).toBe("number");
    expect(JSON.parse(await readFile(stateFile(dir.path), "utf8"))).toEqual(again.state);

    await writeFile(stateFile(dir.path), "{not json");
    await expect(loadOrCreateState(dir.path)).rejects.toThrow(/remove .* to start afresh/);
  });

  it("state – a taken port is named", async () => {
    const { state } = await loadOrCreateState(dir.path);
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(state.ports.ca, "127.0.0.1", resolve));
    try {
      await expect(requirePortsFree(dir.path, state)).rejects.toThrow(
        new RegExp(`ca ${state.ports.ca}.*another \`npm start\``),
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
