import { MeshidError } from "@meshid/errors";
import { createMemoryLogger } from "@meshid/telemetry";
import type {
  ClusterView,
  Clock,
  EntryClient,
  EntryItemResult,
  EntryWrite,
  RegistrationEvents,
} from "../ports";
import { DEFAULT_IDENTITY_TEMPLATE } from "./cluster-spiffe-id";
import { createReconciler, entryIdFor, REGISTRAR_OWNER } from "./reconciler";
import type { CurrentEntry, PodInfo } from "./types";

const clock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    }),
};

function podOf(i: number): PodInfo {
  return {
    uid: `uid-${i}`,
    name: `p-${i}`,
    namespace: "ns",
    labels: { "meshid.io/inject": "true" },
    annotations: {},
    serviceAccountName: "sa",
    nodeName: "n",
    terminated: false,
  };
}

/** An in-memory CA entry store with call recording and injectable item failures. */
function memoryEntryClient() {
  const store = new Map<string, CurrentEntry>();
  const calls: { op: string; size: number }[] = [];
  const refuse = new Set<string>();
  let down = false;
  let maxBatch = Infinity;
  const toCurrent = (w: EntryWrite): CurrentEntry => ({
    id: w.id,
    spiffeId: w.spiffeId,
    parentId: w.parentId,
    podUid: w.podUid,
    selectors: [`k8s:pod-uid:${w.podUid}`],
    dnsNames: [...w.dnsNames],
    ttlSeconds: w.ttlSeconds,
    hint: w.hint,
  });
  const write = (op: string, entries: readonly EntryWrite[]): EntryItemResult[] => {
    if (down) throw new Error("unavailable");
    if (entries.length > maxBatch) {
      throw new MeshidError("resource_exhausted", "ca.batch.too_large", "batch too large");
    }
    calls.push({ op, size: entries.length });
    return entries.map((w) => {
      if (refuse.has(w.podUid)) return { ok: false, code: 3, message: "refused", errorCode: "x" };
      store.set(w.id, toCurrent(w));
      return { ok: true, entry: toCurrent(w) };
    });
  };
  const client: EntryClient = {
    listOwnedEntries: (owner) => {
      if (down) return Promise.reject(new Error("unavailable"));
      calls.push({ op: "list", size: 0 });
      expect(owner).toBe(REGISTRAR_OWNER);
      return Promise.resolve([...store.values()]);
    },
    createEntries: (entries) => Promise.resolve(write("create", entries)),
    updateEntries: (entries) => Promise.resolve(write("update", entries)),
    deleteEntries: (ids) => {
      if (down) return Promise.reject(new Error("unavailable"));
      calls.push({ op: "delete", size: ids.length });
      return Promise.resolve(
        ids.map((id) => ({ ok: store.delete(id), id, code: 5, message: "" }) as never),
      );
    },
    close: () => undefined,
  };
  return {
    client,
    store,
    calls,
    refuse,
    setDown: (v: boolean) => (down = v),
    setMaxBatch: (n: number) => (maxBatch = n),
  };
}

function viewOf(pods: Map<string, PodInfo>, synced: { value: boolean }): ClusterView {
  return {
    synced: () => synced.value,
    pods: () => pods.values(),
    pod: (uid) => pods.get(uid),
    node: (name) => (name === "n" ? { name, uid: "node-uid", labels: {} } : undefined),
    namespace: () => undefined,
    services: () => [],
    templates: () => ({ valid: [], invalid: [] }),
  };
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("createReconciler", () => {
  it("reconciler – waits for the first list, batches writes, keeps going past refused items", async () => {
    const pods = new Map([1, 2, 3, 4, 5, 6, 7].map((i) => [`uid-${i}`, podOf(i)] as const));
    const synced = { value: false };
    const ca = memoryEntryClient();
    ca.refuse.add("uid-7");
    const registered: string[] = [];
    const events: RegistrationEvents = {
      registered: (pod) => registered.push(pod.name),
      deregistered: (pod) => registered.push(`-${pod.name}`),
    };
    const { logger } = createMemoryLogger();
    const reconciler = createReconciler({
      cluster: viewOf(pods, synced),
      entries: ca.client,
      events,
      problems: { report: () => undefined },
      selection: {
        injectLabels: [{ key: "meshid.io/inject", value: "true" }],
        injectAnnotations: [],
        ignoredNamespaces: [],
      },
      trustDomain: "example.org",
      clusterName: "c",
      batchSize: 3,
      resyncIntervalMs: 60_000,
      clock,
      logger,
      retryInitialMs: 10,
      retryMaxMs: 20,
    });
    const stop = new AbortController();
    const running = reconciler.run(stop.signal);
    await until(() => reconciler.stats().failures >= 1);
    expect(ca.calls).toEqual([]); // nothing is written while the view is incomplete

    synced.value = true;
    await until(() => reconciler.stats().fullReconciles === 1);
    expect(ca.calls).toEqual([
      { op: "list", size: 0 },
      { op: "create", size: 3 },
      { op: "create", size: 3 },
      { op: "create", size: 1 },
    ]);
    expect(ca.store.size).toBe(6);
    expect(registered.sort()).toEqual(["p-1", "p-2", "p-3", "p-4", "p-5", "p-6"]);
    expect(ca.store.get(entryIdFor("spiffe://example.org/ns/ns/sa/sa", "uid-1"))?.parentId).toBe(
      "spiffe://example.org/meshid/agent/k8s_psat/c/node-uid",
    );

    // A pod event is reconciled alone, from the cache (no new list).
    ca.calls.length = 0;
    pods.delete("uid-2");
    reconciler.podChanged("uid-2", { uid: "uid-2", name: "p-2", namespace: "ns" });
    await until(() => ca.store.size === 5);
    expect(ca.calls).toEqual([{ op: "delete", size: 1 }]);
    expect(registered).toContain("-p-2");

    // The CA going away: failures with backoff; a pod change meanwhile is applied afterwards.
    ca.setDown(true);
    pods.set("uid-8", podOf(8));
    reconciler.podChanged("uid-8");
    await until(() => !reconciler.stats().caReachable);
    ca.setDown(false);
    await until(() => ca.store.size === 6 && reconciler.stats().caReachable);
    stop.abort();
    await running;
    expect(DEFAULT_IDENTITY_TEMPLATE.name).toBe("(default)");
  });

  it("reconciler – entry ids are stable UUIDs per SPIFFE ID and pod", () => {
    const id = entryIdFor("spiffe://example.org/ns/a/sa/b", "uid-1");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(entryIdFor("spiffe://example.org/ns/a/sa/b", "uid-1")).toBe(id);
    expect(entryIdFor("spiffe://example.org/ns/a/sa/b", "uid-2")).not.toBe(id);
  });

  it("reconciler – a batch the CA refuses as too large is halved, and stays halved", async () => {
    const pods = new Map(Array.from({ length: 10 }, (_, i) => [`uid-${i}`, podOf(i)] as const));
    const ca = memoryEntryClient();
    ca.setMaxBatch(3);
    const { logger } = createMemoryLogger();
    const reconciler = createReconciler({
      cluster: viewOf(pods, { value: true }),
      entries: ca.client,
      events: { registered: () => undefined, deregistered: () => undefined },
      problems: { report: () => undefined },
      selection: {
        injectLabels: [{ key: "meshid.io/inject", value: "true" }],
        injectAnnotations: [],
        ignoredNamespaces: [],
      },
      trustDomain: "example.org",
      clusterName: "c",
      batchSize: 10,
      resyncIntervalMs: 60_000,
      clock,
      logger,
    });
    const stop = new AbortController();
    const running = reconciler.run(stop.signal);
    await until(() => ca.store.size === 10);
    // 10 refused → 5 refused → 2, 2, 2, 2, 2.
    expect(ca.calls.filter((c) => c.op === "create").map((c) => c.size)).toEqual([2, 2, 2, 2, 2]);
    expect(reconciler.stats().failures).toBe(0);
    stop.abort();
    await running;
  });
});
