import { createMemoryLogger } from "@meshid/telemetry";
import { createTestCa, type TestCa } from "@meshid/testkit";
import { x509ContextFromResponse, type WorkloadX509Svid } from "@meshid/workload-api";
import { concatDer } from "@meshid/spiffe";
import type {
  Clock,
  NginxController,
  NginxExit,
  NginxTestResult,
  ProxyConfigUpdate,
  SvidFileStore,
} from "../ports";
import { createSidecarController, type SidecarEvent } from "./sidecar-controller";
import type { SvidFiles } from "./svid-files";

/** An in-memory NGINX: configs containing "BAD" fail `nginx -t`. */
function fakeNginx(manages = true) {
  let running = false;
  let live: string | undefined;
  let candidate: string | undefined;
  const exits = new Set<(e: NginxExit) => void>();
  const calls: string[] = [];
  let failReloads = 0;
  const nginx: NginxController = {
    manages,
    testConfig(text): Promise<NginxTestResult> {
      calls.push("test");
      candidate = text;
      return Promise.resolve(
        text.includes("BAD")
          ? { ok: false, output: "unknown directive BAD" }
          : { ok: true, output: "ok" },
      );
    },
    installTestedConfig() {
      calls.push("install");
      live = candidate;
      return Promise.resolve();
    },
    start() {
      calls.push("start");
      running = true;
      return Promise.resolve();
    },
    reload() {
      calls.push("reload");
      if (failReloads > 0) {
        failReloads -= 1;
        return Promise.reject(new Error("no new worker"));
      }
      return Promise.resolve();
    },
    running: () => running,
    onExit(listener) {
      exits.add(listener);
      return () => exits.delete(listener);
    },
    stop() {
      running = false;
      return Promise.resolve();
    },
  };
  return {
    nginx,
    calls,
    live: () => live,
    crash() {
      running = false;
      for (const l of exits) l({ code: null, signal: "SIGKILL" });
    },
    failNextReloads(n: number) {
      failReloads = n;
    },
  };
}

function fakeFiles() {
  const written: SvidFiles[] = [];
  const pruned: number[][] = [];
  const store: SvidFileStore = {
    swap(files) {
      written.push(files);
      return Promise.resolve({ version: written.length, dir: `/svid-${written.length}` });
    },
    prune(keep) {
      pruned.push([...keep]);
      return Promise.resolve();
    },
  };
  return { store, written, pruned };
}

const clock: Clock = {
  now: () => new Date(),
  sleep: () => Promise.resolve(),
};

const config = (generation: number, text = `conf ${generation}`): ProxyConfigUpdate => ({
  generation,
  nginxConf: text,
  effectiveMode: "strict",
  modeSource: "global",
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !check(); i += 1) await new Promise((r) => setImmediate(r));
  if (!check()) throw new Error("condition not met");
}

describe("sidecar controller", () => {
  let ca: TestCa;
  let svids: WorkloadX509Svid[];

  beforeAll(async () => {
    ca = await createTestCa();
    svids = [];
    for (let i = 0; i < 3; i += 1) {
      const s = await ca.issueSvid({ spiffeId: "spiffe://example.org/web" });
      const context = x509ContextFromResponse({
        svids: [
          {
            spiffeId: s.spiffeId,
            x509Svid: concatDer(s.certChainDer),
            x509SvidKey: s.keyPkcs8Der,
            bundle: ca.rootCertDer,
            hint: "",
          },
        ],
        federatedBundles: {},
      });
      svids.push(context.svids[0]!);
    }
  });

  function setUp(manages = true) {
    const n = fakeNginx(manages);
    const f = fakeFiles();
    const memory = createMemoryLogger();
    const events: SidecarEvent[] = [];
    const controller = createSidecarController({
      svidFiles: f.store,
      nginx: n.nginx,
      clock,
      logger: memory.logger,
      onEvent: (e) => events.push(e),
    });
    const abort = new AbortController();
    const running = controller.run(abort.signal);
    return {
      n,
      f,
      memory,
      events,
      controller,
      async stop() {
        abort.abort();
        await running;
      },
    };
  }

  it("controller – waits for an SVID before testing a config, then starts NGINX once", async () => {
    const t = setUp();
    t.controller.offerConfig(config(1));
    await new Promise((r) => setImmediate(r));
    expect(t.n.calls).toEqual([]);
    t.controller.offerSvid(svids[0]!);
    await until(() => t.controller.ready());
    expect(t.n.calls).toEqual(["test", "install", "start"]);
    expect(t.f.written).toHaveLength(1);
    expect(t.controller.status()).toMatchObject({
      svid: { serialNumber: svids[0]!.serialNumber, filesVersion: 1 },
      servedSerialNumber: svids[0]!.serialNumber,
      config: { appliedGeneration: 1, effectiveMode: "strict" },
      lastReload: { kind: "start", result: "success", generation: 1 },
      degraded: false,
    });
    await t.stop();
  });

  it("controller – each rotation is written to a new version, reloaded, then older versions pruned", async () => {
    const t = setUp();
    t.controller.offerSvid(svids[0]!);
    t.controller.offerConfig(config(1));
    await until(() => t.controller.ready());
    t.controller.offerSvid(svids[1]!);
    await until(() => t.controller.status().servedSerialNumber === svids[1]!.serialNumber);
    t.controller.offerSvid(svids[2]!);
    await until(() => t.controller.status().servedSerialNumber === svids[2]!.serialNumber);
    expect(t.n.calls).toEqual(["test", "install", "start", "reload", "reload"]);
    expect(t.f.pruned).toEqual([[1], [2, 1], [3, 2]]);
    // The same SVID again changes nothing.
    t.controller.offerSvid(svids[2]!);
    await new Promise((r) => setImmediate(r));
    expect(t.f.written).toHaveLength(3);
    expect(t.f.written[2]).toEqual({
      certPem: svids[2]!.certChainPem,
      keyPem: svids[2]!.keyPem,
      bundlePem: svids[2]!.bundlePem,
    });
    await t.stop();
  });

  it("controller – a rejected config keeps the last good one, degrades health, and a later good one heals it", async () => {
    const t = setUp();
    t.controller.offerSvid(svids[0]!);
    t.controller.offerConfig(config(1));
    await until(() => t.controller.ready());
    t.controller.offerConfig(config(2, "BAD"));
    await until(() => t.controller.status().config.rejected !== undefined);
    expect(t.n.live()).toBe("conf 1");
    expect(t.controller.status()).toMatchObject({
      degraded: true,
      degradedReasons: ["config_rejected"],
      config: {
        appliedGeneration: 1,
        rejected: { generation: 2, reason: "unknown directive BAD" },
      },
    });
    expect(t.controller.ready()).toBe(true);
    expect(t.events.some((e) => e.type === "config_rejected")).toBe(true);
    expect(t.memory.text()).toMatch(/keeping the last good one/);

    t.controller.offerConfig(config(3));
    await until(() => t.controller.status().config.appliedGeneration === 3);
    await until(() => t.controller.status().lastReload?.generation === 3);
    expect(t.controller.status().degraded).toBe(false);
    expect(t.n.live()).toBe("conf 3");
    await t.stop();
  });

  it("controller – a first config NGINX rejects starts nothing (not ready, degraded)", async () => {
    const t = setUp();
    t.controller.offerSvid(svids[0]!);
    t.controller.offerConfig(config(1, "BAD"));
    await until(() => t.controller.status().config.rejected !== undefined);
    expect(t.n.calls).toEqual(["test"]);
    expect(t.controller.ready()).toBe(false);
    expect(t.controller.status().degraded).toBe(true);
    await t.stop();
  });

  it("controller – an NGINX that dies is restarted", async () => {
    const t = setUp();
    t.controller.offerSvid(svids[0]!);
    t.controller.offerConfig(config(1));
    await until(() => t.controller.ready());
    t.n.crash();
    expect(t.controller.ready()).toBe(false);
    await until(() => t.controller.ready());
    expect(t.n.calls.filter((c) => c === "start")).toHaveLength(2);
    expect(t.controller.status().nginxRestarts).toBe(1);
    await t.stop();
  });

  it("controller – a failed reload is retried and reported until it succeeds", async () => {
    const t = setUp();
    t.controller.offerSvid(svids[0]!);
    t.controller.offerConfig(config(1));
    await until(() => t.controller.ready());
    t.n.failNextReloads(2);
    t.controller.offerSvid(svids[1]!);
    await until(() => t.controller.status().servedSerialNumber === svids[1]!.serialNumber);
    expect(t.n.calls.filter((c) => c === "reload")).toHaveLength(3);
    const failed = t.events.filter((e) => e.type === "reloaded" && e.record.result === "failed");
    expect(failed).toHaveLength(2);
    expect(t.controller.status().degraded).toBe(false);
    await t.stop();
  });

  it("controller – with an external NGINX (signal) it only reloads and is ready after a confirmed reload", async () => {
    const t = setUp(false);
    t.controller.offerSvid(svids[0]!);
    t.controller.offerConfig(config(1));
    await until(() => t.controller.ready());
    expect(t.n.calls).toEqual(["test", "install", "reload"]);
    await t.stop();
  });
});
