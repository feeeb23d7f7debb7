import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { getFreePort } from "../src/ports";
import { isProcessAlive } from "../src/process";
import { createTempDir, type TempDir } from "../src/temp-dir";
import {
  meshidServiceMain,
  startMeshidService,
  type MeshidServiceProcess,
} from "../src/meshid-service-process";

jest.setTimeout(90_000);

describe("startMeshidService", () => {
  let dir: TempDir;
  let service: MeshidServiceProcess | undefined;

  beforeAll(async () => {
    dir = await createTempDir("service-process");
  });

  afterEach(async () => {
    if (service?.running() === true) await service.kill9();
    service = undefined;
  });

  afterAll(async () => {
    await dir.cleanup();
  });

  const caConfig = async (workDir: string): Promise<Record<string, unknown>> => ({
    trustDomain: "td.test",
    listen: `127.0.0.1:${await getFreePort()}`,
    dataDir: join(workDir, "data"),
    keyManager: "memory",
  });

  it("startMeshidService – waits for /readyz, serves ops, kill9 and restart keep the files, stop cleans up", async () => {
    const workDir = join(dir.path, "ca");
    service = await startMeshidService({ service: "ca", workDir, config: await caConfig(workDir) });
    expect(service.opsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await service.ops("/readyz")).status).toBe(200);
    expect((await service.ops("/metrics")).body.length).toBeGreaterThan(0);
    const written = await readFile(service.configFile, "utf8");
    expect(written).toContain("trustDomain: td.test");
    expect(written).toContain(`listen: ${service.opsUrl!.replace("http://", "")}`);

    const firstPid = service.pid();
    const killed = await service.kill9();
    expect(killed.signal).toBe("SIGKILL");
    expect(service.running()).toBe(false);
    await service.restart();
    expect(service.pid()).not.toBe(firstPid);
    expect(isProcessAlive(firstPid)).toBe(false);
    expect((await service.ops("/readyz")).status).toBe(200);

    const pid = service.pid();
    const exit = await service.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(isProcessAlive(pid)).toBe(false);
    // A given workDir is the caller's: it stays.
    expect(existsSync(service.configFile)).toBe(true);
  });

  it("startMeshidService – a service that exits at start fails with its output; a temp workDir is removed", async () => {
    await expect(
      startMeshidService({ service: "ca", config: { trustDomain: "not a trust domain!" } }),
    ).rejects.toThrow(/meshid-ca exited \(code 2[\s\S]*trustDomain/);
  });

  it("startMeshidService – an unbuilt service is refused with the build command", async () => {
    expect(meshidServiceMain("ca")).toMatch(/services\/ca\/dist\/main\.js$/);
    await expect(startMeshidService({ service: "no-such-service", config: {} })).rejects.toThrow(
      /npx turbo run build --filter=@meshid\/no-such-service/,
    );
  });
});
