import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import {
  createSelfSignedStandInTls,
  createTempDir,
  startKubeApiServer,
  type KubeApiServer,
  type TempDir,
} from "@meshid/testkit";
import { stringify } from "yaml";
import {
  KubeApiError,
  KubeConfigError,
  TOKEN_FILE_REFRESH_MS,
  createKubeClient,
  createKubeInformer,
  loadKubeConnection,
  type KubeClient,
  type KubeConfigMap,
  type KubeList,
  type KubeWatchEvent,
} from "../src";

jest.setTimeout(60_000);

const WAIT_MS = 20_000;

async function waitFor(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function configMap(name: string, data: Record<string, string>): KubeConfigMap {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "apps" }, data };
}

let dir: TempDir;
let kube: KubeApiServer;
let client: KubeClient;
const cmPath = "/api/v1/namespaces/apps/configmaps";

beforeAll(async () => {
  dir = await createTempDir("kube-client");
  kube = await startKubeApiServer({ bookmarkIntervalMs: 0 });
  kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
  client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
});
afterAll(async () => {
  client.close();
  await kube.stop();
  await dir.cleanup();
});

describe("createKubeClient", () => {
  it("kube client – creates, reads, merge-patches, replaces and deletes; client-node sees the same", async () => {
    const created = await client.request<KubeConfigMap>({
      method: "POST",
      path: cmPath,
      body: configMap("crud", { a: "1" }),
    });
    expect(created.metadata?.uid).toBeTruthy();
    const patched = await client.request<KubeConfigMap>({
      method: "PATCH",
      path: `${cmPath}/crud`,
      body: { data: { b: "2" } },
    });
    expect(patched.data).toEqual({ a: "1", b: "2" });
    const replaced = await client.request<KubeConfigMap>({
      method: "PUT",
      path: `${cmPath}/crud`,
      body: { ...patched, data: { c: "3" } },
    });
    expect(replaced.data).toEqual({ c: "3" });
    const core = kube.kubeConfig().makeApiClient(CoreV1Api);
    expect((await core.readNamespacedConfigMap({ name: "crud", namespace: "apps" })).data).toEqual({
      c: "3",
    });
    await client.request({ method: "DELETE", path: `${cmPath}/crud` });
    await expect(client.request({ path: `${cmPath}/crud` })).rejects.toMatchObject({
      code: 404,
      reason: "NotFound",
    });
  });

  it("kube client – a stale resourceVersion is a 409 Conflict carrying the server's Status", async () => {
    const created = await client.request<KubeConfigMap>({
      method: "POST",
      path: cmPath,
      body: configMap("stale", { a: "1" }),
    });
    await client.request({ method: "PATCH", path: `${cmPath}/stale`, body: { data: { a: "2" } } });
    const err = await client
      .request({ method: "PUT", path: `${cmPath}/stale`, body: created })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).code).toBe(409);
    expect((err as KubeApiError).status.message).toMatch(/modified/);
  });

  it("kube client – label selectors are sent as query parameters", async () => {
    kube.apply({
      ...configMap("labelled", {}),
      metadata: { name: "labelled", namespace: "apps", labels: { team: "x" } },
    });
    const list = await client.request<KubeList<KubeConfigMap>>({
      path: cmPath,
      query: { labelSelector: "team=x", fieldSelector: undefined },
    });
    expect(list.items.map((c) => c.metadata?.name)).toEqual(["labelled"]);
  });

  it("kube client – an unreachable server fails the request instead of hanging", async () => {
    const dead = createKubeClient({
      server: "http://127.0.0.1:1",
      insecureSkipTlsVerify: false,
      token: () => Promise.resolve(undefined),
    });
    await expect(dead.request({ path: "/api" })).rejects.toThrow(/ECONNREFUSED/);
  });

  it("kube client – a server URL that is not http(s) is a configuration error", () => {
    expect(() =>
      createKubeClient({
        server: "ftp://127.0.0.1:1",
        insecureSkipTlsVerify: false,
        token: () => Promise.resolve(undefined),
      }),
    ).toThrow(KubeConfigError);
    expect(() =>
      createKubeClient({
        kubeconfigYaml: stringify({
          clusters: [{ name: "c", cluster: { server: "not a url" } }],
          contexts: [{ name: "x", context: { cluster: "c" } }],
          "current-context": "x",
        }),
      }),
    ).toThrow(/is not a URL/);
  });

  it("kube client – a bad token is a 401 from the server", async () => {
    const bad = createKubeClient({
      server: kube.url,
      insecureSkipTlsVerify: true,
      token: () => Promise.resolve("not-a-token"),
    });
    await expect(bad.request({ path: cmPath })).rejects.toMatchObject({ code: 401 });
  });

  it("kube client – watch streams events from a resourceVersion and ends on abort", async () => {
    const list = await client.request<KubeList>({ path: cmPath });
    const events: KubeWatchEvent[] = [];
    const abort = new AbortController();
    const watching = client.watch(
      {
        path: cmPath,
        query: { resourceVersion: list.metadata?.resourceVersion },
        signal: abort.signal,
      },
      (e) => events.push(e),
    );
    await client.request({ method: "POST", path: cmPath, body: configMap("watched", {}) });
    await client.request({ method: "DELETE", path: `${cmPath}/watched` });
    await waitFor("two events", () => events.length >= 2);
    expect(events.map((e) => [e.type, e.object.metadata?.name])).toEqual([
      ["ADDED", "watched"],
      ["DELETED", "watched"],
    ]);
    abort.abort();
    await expect(watching).resolves.toBeUndefined();
  });

  it("kube client – a watch that goes silent is treated as dead", async () => {
    const list = await client.request<KubeList>({ path: cmPath });
    await expect(
      client.watch(
        {
          path: cmPath,
          query: { resourceVersion: list.metadata?.resourceVersion },
          idleTimeoutMs: 200,
        },
        () => undefined,
      ),
    ).rejects.toThrow(/no data from the API server/);
  });

  it("kube client – a watch from an expired resourceVersion rejects with 410", async () => {
    const list = await client.request<KubeList>({ path: cmPath });
    kube.compactHistory();
    await expect(
      client.watch(
        { path: cmPath, query: { resourceVersion: list.metadata?.resourceVersion } },
        () => undefined,
      ),
    ).rejects.toMatchObject({ code: 410 });
  });
});

describe("loadKubeConnection", () => {
  it("kubeconfig – reads a token file and client material relative to the kubeconfig", async () => {
    await writeFile(join(dir.path, "token"), "tok-1\n");
    await writeFile(join(dir.path, "ca.pem"), "not really a CA");
    const file = join(dir.path, "config");
    await writeFile(
      file,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "c",
            cluster: { server: "https://k.example:6443/", "certificate-authority": "ca.pem" },
          },
        ],
        users: [{ name: "u", user: { tokenFile: "token" } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u", namespace: "meshid" } }],
        "current-context": "x",
      }),
    );
    await chmod(file, 0o600);
    const conn = loadKubeConnection({ kubeconfigFile: file });
    expect(conn.server).toBe("https://k.example:6443");
    expect(conn.ca?.toString()).toBe("not really a CA");
    expect(conn.namespace).toBe("meshid");
    expect(await conn.token()).toBe("tok-1");
  });

  it("kubeconfig – exec plugins, missing contexts and a missing in-cluster host are clear errors", () => {
    const base = {
      clusters: [{ name: "c", cluster: { server: "https://k:6443" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    };
    expect(() =>
      loadKubeConnection({
        kubeconfigYaml: stringify({
          ...base,
          users: [{ name: "u", user: { exec: { command: "aws" } } }],
        }),
      }),
    ).toThrow(/exec plugin/);
    expect(() =>
      loadKubeConnection({ kubeconfigYaml: stringify({ ...base, "current-context": "nope" }) }),
    ).toThrow(/no context named "nope"/);
    expect(() => loadKubeConnection({}, { env: {} })).toThrow(KubeConfigError);
    expect(() => loadKubeConnection({}, { env: {} })).toThrow(/KUBERNETES_SERVICE_HOST/);
  });

  it("in-cluster – the service account's CA, namespace and token; the token is re-read as it rotates", async () => {
    const sa = join(dir.path, "serviceaccount");
    await mkdir(sa);
    await writeFile(join(sa, "ca.crt"), "cluster CA");
    await writeFile(join(sa, "namespace"), "meshid\n");
    await writeFile(join(sa, "token"), "first\n");
    let clock = 0;
    const conn = loadKubeConnection(
      {},
      {
        env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "6443" },
        serviceAccountDir: sa,
        now: () => clock,
      },
    );
    expect(conn.server).toBe("https://[fd00::1]:6443");
    expect(conn.ca?.toString()).toBe("cluster CA");
    expect(conn.namespace).toBe("meshid");
    expect(await conn.token()).toBe("first");
    await writeFile(join(sa, "token"), "second\n");
    clock = TOKEN_FILE_REFRESH_MS - 1;
    expect(await conn.token()).toBe("first");
    clock = TOKEN_FILE_REFRESH_MS;
    expect(await conn.token()).toBe("second");
    await rm(join(sa, "ca.crt"));
    expect(() =>
      loadKubeConnection(
        {},
        { env: { KUBERNETES_SERVICE_HOST: "10.0.0.1" }, serviceAccountDir: sa },
      ),
    ).toThrow(/service account CA/);
  });

  it("https – trusts the kubeconfig's CA and verifies the server name", async () => {
    const tls = await createSelfSignedStandInTls();
    const server = await startKubeApiServer({ tls });
    try {
      const secure = createKubeClient({ kubeconfigYaml: server.kubeConfigYaml() });
      const namespaces = await secure.request<KubeList>({ path: "/api/v1/namespaces" });
      expect(namespaces.items.map((n) => n.metadata?.name)).toContain("kube-system");
      secure.close();
      const untrusting = createKubeClient({
        server: server.url,
        insecureSkipTlsVerify: false,
        token: () => Promise.resolve(server.adminToken),
      });
      await expect(untrusting.request({ path: "/api/v1/namespaces" })).rejects.toThrow(
        /certificate/,
      );
    } finally {
      await server.stop();
    }
  });
});

describe("createKubeInformer", () => {
  it("informer – lists, follows changes, re-lists after 410 reporting what changed meanwhile", async () => {
    kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "inf" } });
    const path = "/api/v1/namespaces/inf/configmaps";
    kube.apply({ ...configMap("one", { v: "1" }), metadata: { name: "one", namespace: "inf" } });
    const seen: string[] = [];
    const current = new Map<string, KubeConfigMap>();
    const informer = createKubeInformer<KubeConfigMap>({
      client,
      path,
      onUpsert: (o) => {
        seen.push(`up ${o.metadata?.name} ${o.data?.v ?? ""}`);
        current.set(o.metadata?.name ?? "", o);
      },
      onDelete: (o) => {
        seen.push(`del ${o.metadata?.name}`);
        current.delete(o.metadata?.name ?? "");
      },
      retryInitialMs: 10,
    });
    await informer.start();
    expect(informer.synced()).toBe(true);
    expect(seen).toEqual(["up one 1"]);

    await client.request({
      method: "POST",
      path,
      body: { ...configMap("two", { v: "2" }), metadata: { name: "two", namespace: "inf" } },
    });
    await waitFor("two", () => current.get("two") !== undefined);

    // A gap: history compacted and the watch closed; meanwhile one changes and two goes away.
    kube.compactHistory();
    kube.closeWatches();
    kube.delete({ kind: "ConfigMap", name: "two", namespace: "inf" });
    kube.apply({ ...configMap("one", { v: "9" }), metadata: { name: "one", namespace: "inf" } });
    await waitFor("re-list", () => informer.listCount() >= 2 && current.get("two") === undefined);
    await waitFor("one updated", () => current.get("one")?.data?.v === "9");
    expect(seen).toContain("del two");
    expect(seen).toContain("up one 9");
    expect([...current.keys()]).toEqual(["one"]);
    expect(informer.size()).toBe(1);
    await informer.stop();
  });

  it("informer – a failing list is reported and retried with backoff until it works", async () => {
    kube.failNext({ verb: "list", resource: "configmaps", status: 500, times: 2 });
    const errors: number[] = [];
    const informer = createKubeInformer<KubeConfigMap>({
      client,
      path: "/api/v1/namespaces/apps/configmaps",
      onUpsert: () => undefined,
      onDelete: () => undefined,
      onError: (_err, retryInMs) => errors.push(retryInMs),
      retryInitialMs: 10,
    });
    await informer.start();
    await waitFor("synced", () => informer.synced());
    expect(errors).toEqual([10, 20]);
    await informer.stop();
  });

  it("informer – stop ends an open watch promptly and start can run it again", async () => {
    const informer = createKubeInformer({
      client,
      path: cmPath,
      onUpsert: () => undefined,
      onDelete: () => undefined,
    });
    await informer.start();
    await waitFor("watch open", () => kube.openWatchCount() > 0);
    await informer.stop();
    await waitFor("watch closed", () => kube.openWatchCount() === 0);
    await informer.start();
    expect(informer.listCount()).toBe(2);
    await informer.stop();
  });
});
