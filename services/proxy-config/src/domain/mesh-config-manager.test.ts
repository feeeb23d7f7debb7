import { MeshidError } from "@meshid/errors";
import { createNoopLogger } from "@meshid/telemetry";
import type { ConfigUpdatedPublisher } from "../ports";
import { createMemoryMeshConfigStore } from "../testing/memory-mesh-config-store";
import type { MeshConfigSettings } from "./mesh-config";
import { createMeshConfigManager } from "./mesh-config-manager";

interface Published {
  readonly settings: MeshConfigSettings;
  readonly rotateNow: boolean;
  readonly id: string;
}

function setup(options: { failPublish?: boolean } = {}) {
  const store = createMemoryMeshConfigStore();
  const published: Published[] = [];
  const publisher: ConfigUpdatedPublisher = {
    publish(settings, o) {
      if (options.failPublish === true) {
        return Promise.reject(new MeshidError("unavailable", "events.publish.failed", "down"));
      }
      published.push({ settings, ...o });
      return Promise.resolve();
    },
  };
  let clock = Date.parse("2026-11-22T10:00:00Z");
  const manager = createMeshConfigManager({
    store,
    publisher,
    logger: createNoopLogger(),
    now: () => new Date((clock += 1000)),
  });
  return { store, published, manager };
}

describe("mesh config manager", () => {
  it("mesh config manager – an update is written, then published with every setting", async () => {
    const { store, published, manager } = setup();
    await manager.init();
    const seen: number[] = [];
    manager.subscribe((c) => seen.push(c.generation));
    const res = await manager.update({ update: { mtlsMode: "strict" }, rotateNow: false });
    expect(res.config).toMatchObject({ mtlsMode: "strict", generation: 2 });
    expect(store.peek()?.spec.mtlsMode).toBe("strict");
    expect(published).toEqual([
      {
        settings: {
          mtlsMode: "strict",
          caTtlSeconds: 2_592_000,
          svidTtlSeconds: 3600,
          caKeyType: "ec-p256",
        },
        rotateNow: false,
        id: published[0]?.id,
      },
    ]);
    expect(published[0]?.id).toMatch(/^meshconfig-2-/);
    expect(seen).toEqual([2]);
  });

  it("mesh config manager – an invalid update changes and publishes nothing", async () => {
    const { store, published, manager } = setup();
    await manager.init();
    const before = store.peek();
    await expect(
      manager.update({ update: { caTtl: "1h" }, rotateNow: false }),
    ).rejects.toMatchObject({
      kind: "invalid_argument",
    });
    expect(store.peek()).toBe(before);
    expect(published).toEqual([]);
  });

  it("mesh config manager – an update that changes nothing is not written; rotateNow is still published", async () => {
    const { store, published, manager } = setup();
    await manager.init();
    const before = store.peek();
    await manager.update({ update: { mtlsMode: "permissive" }, rotateNow: false });
    expect(store.peek()).toBe(before);
    expect(published).toEqual([]);
    await manager.update({ update: {}, rotateNow: true });
    await manager.update({ update: {}, rotateNow: true });
    expect(published.map((p) => p.rotateNow)).toEqual([true, true]);
    // Two rotation requests are two actions: distinct ids (JetStream would drop a repeat).
    expect(new Set(published.map((p) => p.id)).size).toBe(2);
  });

  it("mesh config manager – a lost write race is retried on the new state; with expectedGeneration it is ABORTED", async () => {
    const { store, manager } = setup();
    await manager.init();
    store.conflictNext(1, { mtlsMode: "off", caTtl: "720h", svidTtl: "1h", caKeyType: "ec-p256" });
    const res = await manager.update({ update: { svidTtl: "2h" }, rotateNow: false });
    // The retry started from the other writer's mtlsMode off.
    expect(res.config).toMatchObject({ mtlsMode: "off", svidTtlSeconds: 7200, generation: 3 });
    store.conflictNext(1, { mtlsMode: "strict" });
    await expect(
      manager.update({ update: { svidTtl: "3h" }, rotateNow: false, expectedGeneration: 3 }),
    ).rejects.toMatchObject({ kind: "aborted" });
    await expect(
      manager.update({ update: { svidTtl: "3h" }, rotateNow: false, expectedGeneration: 1 }),
    ).rejects.toMatchObject({ kind: "aborted", code: "proxy_config.mesh_config.stale_generation" });
  });

  it("mesh config manager – a failed publish keeps the saved change and warns", async () => {
    const { store, manager } = setup({ failPublish: true });
    await manager.init();
    const res = await manager.update({ update: { mtlsMode: "off" }, rotateNow: false });
    expect(store.peek()?.spec.mtlsMode).toBe("off");
    expect(res.warnings).toEqual([expect.stringMatching(/could not be published/)]);
    expect(manager.stats()).toEqual({ published: 0, publishFailures: 1 });
  });

  it("mesh config manager – edits elsewhere are adopted and published; invalid ones reported and ignored", async () => {
    const { store, published, manager } = setup();
    await manager.init();
    const controller = new AbortController();
    const run = manager.run(controller.signal);
    const changed = new Promise<void>((resolve) =>
      manager.subscribe((c) => {
        if (c.mtlsMode === "strict") resolve();
      }),
    );
    store.edit({ mtlsMode: "strict" });
    await changed;
    store.edit({ mtlsMode: "strict", caKeyType: "dsa" });
    // Watches deliver the latest state: let the invalid one be seen before the next edit.
    while (store.reports.length === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(manager.current().mtlsMode).toBe("strict");
    store.edit({ mtlsMode: "off" });
    await new Promise<void>((resolve) =>
      manager.subscribe((c) => {
        if (c.mtlsMode === "off") resolve();
      }),
    );
    controller.abort();
    await run;
    expect(store.reports).toEqual([expect.stringMatching(/caKeyType: must be one of/)]);
    expect(published.map((p) => p.settings.mtlsMode)).toEqual(["strict", "off"]);
  });

  it("mesh config manager – an invalid stored config at start runs on the defaults and is reported", async () => {
    const { store, manager } = setup();
    store.edit({ mtlsMode: "bogus" });
    await manager.init();
    expect(manager.current()).toMatchObject({ mtlsMode: "permissive" });
    expect(store.reports).toHaveLength(1);
  });
});
