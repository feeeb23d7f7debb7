import type { PodDirectory, PodInfo } from "../ports";
import { startAnnotationReporter } from "./annotation-reporter";
import type { MeshConfig } from "./mesh-config";
import { inboundFromPod, type PodProxyConfigRequest } from "./pod-proxy-config";
import { createProxyConfigHub, type ProxyConfigResult } from "./proxy-config-hub";

function meshConfigFake(mode: MeshConfig["mtlsMode"]) {
  let current: MeshConfig = {
    mtlsMode: mode,
    caTtlSeconds: 2_592_000,
    svidTtlSeconds: 3600,
    caKeyType: "ec-p256",
    generation: 1,
    updatedAt: new Date(0),
  };
  const listeners = new Set<(c: MeshConfig) => void>();
  return {
    current: () => current,
    subscribe(l: (c: MeshConfig) => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    set(change: Partial<MeshConfig>) {
      current = { ...current, ...change, generation: current.generation + 1 };
      for (const l of listeners) l(current);
    },
  };
}

function podsFake(initial: PodInfo[]) {
  const pods = new Map(initial.map((p) => [`${p.namespace}/${p.name}`, p]));
  const listeners = new Set<(p: PodInfo, c: "upsert" | "delete") => void>();
  const directory: PodDirectory = {
    get: (ns, name) => pods.get(`${ns}/${name}`),
    list: () => [...pods.values()],
    subscribe(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  return {
    directory,
    upsert(p: PodInfo) {
      pods.set(`${p.namespace}/${p.name}`, p);
      for (const l of listeners) l(p, "upsert");
    },
  };
}

const request: PodProxyConfigRequest = {
  namespace: "apps",
  podName: "web",
  inbound: [{ name: "http", listenPort: 8443, appPort: 8080, protocol: "http" }],
  outbound: [],
  layout: { svidDir: "/svid", nginxPrefix: "/nginx" },
};

const pod = (annotation?: string, uid = "u1"): PodInfo => ({
  namespace: "apps",
  name: "web",
  uid,
  ...(annotation === undefined ? {} : { mtlsModeAnnotation: annotation }),
  ports: [],
});

describe("proxy config hub", () => {
  it("proxy config hub – Get is stable until the rendering changes; then the generation grows", () => {
    const mesh = meshConfigFake("permissive");
    const hub = createProxyConfigHub({ meshConfig: mesh });
    const a = hub.get(request);
    expect(hub.get(request)).toEqual(a);
    mesh.set({ svidTtlSeconds: 7200 });
    expect(hub.get(request)).toEqual({ ...a, meshConfigGeneration: 2 });
    mesh.set({ mtlsMode: "strict" });
    expect(hub.get(request)).toMatchObject({
      effectiveMode: "strict",
      generation: a.generation + 1,
    });
  });

  it("proxy config hub – Watch yields at once, on mode and annotation changes, and closes on abort", async () => {
    const mesh = meshConfigFake("permissive");
    const pods = podsFake([pod()]);
    const hub = createProxyConfigHub({ meshConfig: mesh, pods: pods.directory });
    const controller = new AbortController();
    const seen: ProxyConfigResult[] = [];
    const iterator = hub.watch(request, controller.signal)[Symbol.asyncIterator]();
    seen.push((await iterator.next()).value as ProxyConfigResult);
    expect(hub.openStreams()).toBe(1);
    const next = iterator.next();
    pods.upsert(pod("off"));
    seen.push((await next).value as ProxyConfigResult);
    const third = iterator.next();
    pods.upsert({ ...pod("off"), uid: "u1" }); // same rendering: nothing
    mesh.set({ mtlsMode: "strict" });
    seen.push((await third).value as ProxyConfigResult);
    expect(seen.map((s) => [s.effectiveMode, s.modeSource])).toEqual([
      ["permissive", "global"],
      ["off", "annotation"],
      ["strict", "global strict overrides annotation"],
    ]);
    const end = iterator.next();
    controller.abort();
    expect((await end).done).toBe(true);
    expect(hub.openStreams()).toBe(0);
  });

  it("proxy config hub – pod-spec ports are merged, the request winning per listen port", () => {
    const mesh = meshConfigFake("off");
    const withPorts: PodInfo = {
      ...pod(),
      ports: [
        { container: "app", name: "http-web", port: 8080 },
        { container: "app", name: "db", port: 5432 },
        { container: "meshid-sidecar", name: "http-web", port: 18080 },
        { container: "meshid-sidecar", name: "db", port: 15432 },
        { container: "meshid-sidecar", name: "orphan", port: 19999 },
      ],
    };
    expect(inboundFromPod(withPorts)).toEqual([
      { name: "http-web", listenPort: 18080, appPort: 8080, protocol: "http" },
      { name: "db", listenPort: 15432, appPort: 5432, protocol: "tcp" },
    ]);
    const pods = podsFake([withPorts]);
    const hub = createProxyConfigHub({ meshConfig: mesh, pods: pods.directory });
    const conf = hub.get({
      ...request,
      inbound: [{ name: "db2", listenPort: 15432, appPort: 6543, protocol: "tcp" }],
    }).nginxConf;
    expect(conf).toMatch(/listen 15432;\n\s+proxy_pass 127\.0\.0\.1:6543;/);
    expect(conf).toMatch(/listen 18080;/);
  });
});

describe("annotation reporter", () => {
  it("annotation reporter – reports once per pod and value, again after a mode change makes it relevant", async () => {
    const mesh = meshConfigFake("permissive");
    const pods = podsFake([pod("permissive"), { ...pod("bad"), name: "other", uid: "u2" }]);
    const records: string[] = [];
    const reporter = startAnnotationReporter({
      pods: pods.directory,
      meshConfig: mesh,
      recorder: {
        record(p, r) {
          records.push(`${p.name}:${r.reason}:${r.value}`);
          return Promise.resolve();
        },
      },
    });
    expect(records).toEqual(["other:MtlsModeAnnotationInvalid:bad"]);
    pods.upsert({ ...pod("bad"), name: "other", uid: "u2" });
    mesh.set({ svidTtlSeconds: 60 });
    expect(records).toHaveLength(1);
    mesh.set({ mtlsMode: "strict" });
    expect(records).toEqual([
      "other:MtlsModeAnnotationInvalid:bad",
      "web:MtlsModeAnnotationIgnored:permissive",
    ]);
    pods.upsert(pod("off"));
    expect(records[2]).toBe("web:MtlsModeAnnotationIgnored:off");
    expect(reporter.recorded()).toBe(3);
    reporter.stop();
    await Promise.resolve();
  });
});
