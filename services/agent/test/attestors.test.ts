// Workload attestors against real processes (/proc) and a kubelet stand-in; the PID-reuse guard.
import { createHash } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  writeFileSync,
} from "node:fs";
import { readlink } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isMeshidError } from "@meshid/errors";
import { formatSelector, type Selector } from "@meshid/spiffe";
import { getPeerCredentials } from "@meshid/peercred";
import { createNoopLogger } from "@meshid/telemetry";
import {
  createTempDir,
  requireBinary,
  runCommand,
  spawnManaged,
  startKubeletStandIn,
  type KubeletStandIn,
  type ManagedProcess,
  type TempDir,
} from "@meshid/testkit";
import { createK8sAttestor } from "../src/adapters/k8s-attestor";
import { createKubeletClient, type KubeletClient } from "../src/adapters/kubelet-client";
import { createUnixAttestor } from "../src/adapters/unix-attestor";
import { createWorkloadAttestation } from "../src/adapters/workload-attestation";
import type { WorkloadAttestor } from "../src/ports";

type StandInPod = Parameters<KubeletStandIn["setPods"]>[0][number];

const FIXTURES = join(__dirname, "fixtures/cgroup");
const EXPECTED = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as {
  pods: Record<string, { podUid: string; containerId: string }>;
};
const SLEEP = realpathSync(requireBinary("sleep", "coreutils"));
const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

const texts = (selectors: readonly Selector[]): string[] => selectors.map(formatSelector).sort();

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isMeshidError(err, code) ? code : err).toBe(code);
}

/** Waits (bounded) until the process has exec'd `exe` (setpriv execs its command). */
async function waitForExe(child: ManagedProcess, exe: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const now = await readlink(`/proc/${child.pid}/exe`).catch(() => "");
    if (now === exe) return;
    await sleep(20);
  }
  throw new Error(`process ${child.pid} never ran ${exe}`);
}

const sha256Of = (file: string): string =>
  createHash("sha256").update(readFileSync(file)).digest("hex");

async function groupName(gid: number): Promise<string> {
  const res = await runCommand("getent", ["group", String(gid)]);
  return res.stdout.split(":")[0] ?? "";
}

const children: ManagedProcess[] = [];
async function spawnSleep(asNobody: readonly number[] | undefined): Promise<ManagedProcess> {
  const child =
    asNobody === undefined
      ? await spawnManaged(SLEEP, ["300"])
      : await spawnManaged(requireBinary("setpriv", "util-linux"), [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          `--groups=${asNobody.join(",")}`,
          "--",
          SLEEP,
          "300",
        ]);
  children.push(child);
  await waitForExe(child, SLEEP);
  return child;
}

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop({ signal: "SIGKILL" })));
});

describe("unix attestor (real /proc)", () => {
  it("unix attestor – a child of another uid/gid: ids, names, supplementary gids, path, sha256", async () => {
    if (!IS_ROOT) {
      throw new Error(
        "this test requires root: it starts a child as uid 65534 with setpriv (run the agent tests as root)",
      );
    }
    const child = await spawnSleep([100, 4242]);
    const attestor = createUnixAttestor({
      path: true,
      sha256: { enabled: true, maxBytes: 1 << 26 },
    });
    const selectors = await attestor.attest({ pid: child.pid, uid: NOBODY, gid: NOBODY });
    expect(texts(selectors)).toEqual(
      [
        `unix:uid:${NOBODY}`,
        `unix:gid:${NOBODY}`,
        "unix:user:nobody",
        `unix:group:${await groupName(NOBODY)}`,
        "unix:supplementary_gid:100",
        "unix:supplementary_gid:4242",
        `unix:path:${SLEEP}`,
        `unix:sha256:${sha256Of(SLEEP)}`,
      ].sort(),
    );
    expect(attestor.type).toBe("unix");
  });

  it("unix attestor – a child of our own uid: uid/gid from the peer credentials, path and sha256", async () => {
    const child = await spawnSleep(undefined);
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const selectors = await createUnixAttestor({
      path: true,
      sha256: { enabled: true, maxBytes: 1 << 26 },
    }).attest({ pid: child.pid, uid, gid });
    const got = texts(selectors);
    expect(got).toEqual(expect.arrayContaining([`unix:uid:${uid}`, `unix:gid:${gid}`]));
    expect(got).toContain(`unix:path:${SLEEP}`);
    expect(got).toContain(`unix:sha256:${sha256Of(SLEEP)}`);
    const own = readFileSync("/proc/self/status", "utf8").match(/^Groups:(.*)$/m)?.[1] ?? "";
    const groups = own.trim() === "" ? [] : own.trim().split(/\s+/);
    expect(got.filter((s) => s.startsWith("unix:supplementary_gid:"))).toEqual(
      groups.map((g) => `unix:supplementary_gid:${g}`).sort(),
    );
    if (IS_ROOT) expect(got).toEqual(expect.arrayContaining(["unix:user:root", "unix:group:root"]));
  });

  it("unix attestor – end to end with SO_PEERCRED: a uid-65534 process connecting to a Unix socket", async () => {
    if (!IS_ROOT) {
      throw new Error(
        "this test requires root: it starts a client as uid 65534 with setpriv (run the agent tests as root)",
      );
    }
    const dir = await createTempDir("agent-peercred-");
    const server = createServer();
    try {
      chmodSync(dir.path, 0o755);
      const socketPath = join(dir.path, "workload.sock");
      const connected = new Promise<Socket>((resolve) => server.once("connection", resolve));
      await new Promise<void>((resolve) => server.listen(socketPath, resolve));
      chmodSync(socketPath, 0o777);
      const node = realpathSync(process.execPath);
      const client = await spawnManaged(requireBinary("setpriv", "util-linux"), [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        "--groups=4243",
        "--",
        node,
        "-e",
        `require("node:net").connect(${JSON.stringify(socketPath)}); setInterval(() => {}, 1e6);`,
      ]);
      children.push(client);
      const socket = await connected;
      const peer = getPeerCredentials(socket);
      expect(peer).toEqual({ pid: client.pid, uid: NOBODY, gid: NOBODY });
      const selectors = await createUnixAttestor({ path: true }).attest(peer);
      expect(texts(selectors)).toEqual(
        [
          `unix:uid:${NOBODY}`,
          `unix:gid:${NOBODY}`,
          "unix:user:nobody",
          `unix:group:${await groupName(NOBODY)}`,
          "unix:supplementary_gid:4243",
          `unix:path:${node}`,
        ].sort(),
      );
      socket.destroy();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dir.cleanup();
    }
  });

  it("unix attestor – path and sha256 are off by default; names need passwd/group entries", async () => {
    const child = await spawnSleep(undefined);
    const etc = await createTempDir("agent-etc-");
    try {
      writeFileSync(join(etc.path, "passwd"), "alice:x:4711:4712::/home/alice:/bin/sh\n");
      const selectors = await createUnixAttestor({ etcRoot: etc.path }).attest({
        pid: child.pid,
        uid: 4711,
        gid: 4712,
      });
      const got = texts(selectors);
      expect(got).toEqual(
        expect.arrayContaining(["unix:uid:4711", "unix:gid:4712", "unix:user:alice"]),
      );
      expect(got.some((s) => /^unix:(group|path|sha256):/.test(s))).toBe(false);
    } finally {
      await etc.cleanup();
    }
  });

  it("unix attestor – an executable above the hashing limit is refused", async () => {
    const child = await spawnSleep(undefined);
    const attestor = createUnixAttestor({ sha256: { enabled: true, maxBytes: 1024 } });
    await expectCode(
      attestor.attest({ pid: child.pid, uid: 0, gid: 0 }),
      "agent.attestation.binary_too_large",
    );
  });

  it("unix attestor – an exited process is process_gone", async () => {
    const child = await spawnSleep(undefined);
    await child.stop({ signal: "SIGKILL" });
    await expectCode(
      createUnixAttestor().attest({ pid: child.pid, uid: 0, gid: 0 }),
      "agent.attestation.process_gone",
    );
  });
});

describe("k8s attestor (fake /proc, kubelet stand-in)", () => {
  let kubelet: KubeletStandIn;
  let proc: TempDir;
  const fixturePid = new Map<string, number>();

  beforeAll(async () => {
    kubelet = await startKubeletStandIn();
    proc = await createTempDir("agent-proc-");
    let pid = 1000;
    for (const file of readdirSync(FIXTURES)
      .filter((f) => f.endsWith(".txt"))
      .sort()) {
      fixturePid.set(file, ++pid);
      mkdirSync(join(proc.path, String(pid)));
      writeFileSync(join(proc.path, String(pid), "cgroup"), readFileSync(join(FIXTURES, file)));
    }
  });
  afterAll(async () => {
    await kubelet.stop();
    await proc.cleanup();
  });
  beforeEach(() => kubelet.setPods([]));

  const RUNTIME_SCHEME: Record<string, string> = {
    containerd: "containerd",
    crio: "cri-o",
    docker: "docker",
  };
  const podFor = (file: string, overrides: { uid?: string; name?: string } = {}): StandInPod => {
    const want = EXPECTED.pods[file]!;
    const scheme = RUNTIME_SCHEME[file.split("-")[0]!]!;
    const name = overrides.name ?? file.replace(/\.txt$/, "").replace(/[^a-z0-9]+/g, "-");
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: "shop",
        uid: overrides.uid ?? want.podUid,
        labels: { app: "web", "app.kubernetes.io/part-of": "shop" },
        ownerReferences: [
          { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-7d9f", uid: "1" },
        ],
      },
      spec: {
        nodeName: "node-a",
        serviceAccountName: "web-sa",
        initContainers: [{ name: "setup", image: "busybox:1.36" }],
        containers: [
          { name: "app", image: "registry.example/web:1.2" },
          { name: "sidecar", image: "nginx:1.27" },
        ],
      },
      status: {
        initContainerStatuses: [
          {
            name: "setup",
            image: "busybox:1.36",
            imageID: "",
            containerID: `${scheme}://${"0".repeat(64)}`,
            ready: false,
            restartCount: 0,
          },
        ],
        containerStatuses: [
          {
            name: "app",
            image: "registry.example/web:1.2",
            imageID: "registry.example/web@sha256:" + "1".repeat(64),
            containerID: `${scheme}://${want.containerId}`,
            ready: true,
            restartCount: 0,
          },
          {
            name: "sidecar",
            image: "nginx:1.27",
            imageID: "",
            containerID: `${scheme}://${"f".repeat(64)}`,
            ready: true,
            restartCount: 0,
          },
        ],
      },
    };
  };

  const attestorWith = (client: KubeletClient, attempts = 5, nowMs?: () => number) =>
    createK8sAttestor({
      procRoot: proc.path,
      kubelet: client,
      nodeName: "node-a",
      retry: { attempts, delayMs: 10 },
      cacheTtlMs: 1000,
      ...(nowMs === undefined ? {} : { nowMs }),
    });
  const client = (): KubeletClient => createKubeletClient({ url: kubelet.url });
  const pidOf = (file: string): number => fixturePid.get(file)!;
  const attest = (a: WorkloadAttestor, file: string) =>
    a.attest({ pid: pidOf(file), uid: 0, gid: 0 });

  it.each(Object.keys(EXPECTED.pods))(
    "k8s attestor – finds the pod of %s among all fixture pods",
    async (file) => {
      kubelet.setPods(Object.keys(EXPECTED.pods).map((f) => podFor(f)));
      const selectors = await attest(attestorWith(client()), file);
      expect(texts(selectors)).toEqual(
        [
          "k8s:ns:shop",
          "k8s:sa:web-sa",
          `k8s:pod-uid:${EXPECTED.pods[file]!.podUid}`,
          `k8s:pod-name:${podFor(file).metadata!.name!}`,
          "k8s:node-name:node-a",
          "k8s:pod-label:app:web",
          "k8s:pod-label:app.kubernetes.io/part-of:shop",
          "k8s:pod-owner:ReplicaSet:web-7d9f",
          "k8s:pod-image:registry.example/web:1.2",
          `k8s:pod-image:registry.example/web@sha256:${"1".repeat(64)}`,
          "k8s:pod-image:nginx:1.27",
          "k8s:pod-init-image:busybox:1.36",
          "k8s:container-name:app",
          "k8s:container-image:registry.example/web:1.2",
          `k8s:container-image:registry.example/web@sha256:${"1".repeat(64)}`,
        ].sort(),
      );
    },
  );

  it("k8s attestor – a pod not listed yet is found by a retry", async () => {
    const file = "containerd-systemd-v2.txt";
    const real = client();
    let calls = 0;
    const setPodsAfterFirstMiss: KubeletClient = {
      async listPods(signal) {
        const pods = await real.listPods(signal);
        if (++calls === 1) kubelet.setPods([podFor(file)]);
        return pods;
      },
    };
    const before = kubelet.requestCount();
    const selectors = await attest(attestorWith(setPodsAfterFirstMiss), file);
    expect(texts(selectors)).toContain(`k8s:pod-uid:${EXPECTED.pods[file]!.podUid}`);
    expect(kubelet.requestCount() - before).toBe(2);
  });

  it("k8s attestor – a pod that never shows up is pod_not_found after the retries", async () => {
    const before = kubelet.requestCount();
    await expectCode(
      attest(attestorWith(client(), 3), "crio-systemd-v1.txt"),
      "agent.attestation.pod_not_found",
    );
    expect(kubelet.requestCount() - before).toBe(3);
  });

  it("k8s attestor – two pods claiming the same container are refused", async () => {
    const file = "crio-cgroupfs-v1.txt";
    kubelet.setPods([
      podFor(file),
      podFor(file, { uid: "00000000-0000-4000-8000-000000000001", name: "impostor" }),
    ]);
    await expectCode(attest(attestorWith(client()), file), "agent.attestation.ambiguous_container");
  });

  it("k8s attestor – a pod whose UID is not the cgroup's is refused", async () => {
    const file = "docker-systemd-v1.txt";
    kubelet.setPods([podFor(file, { uid: "00000000-0000-4000-8000-000000000002" })]);
    await expectCode(attest(attestorWith(client()), file), "agent.attestation.pod_uid_mismatch");
  });

  it.each([
    "host-systemd-v1.txt",
    "host-systemd-v2.txt",
    "cgroupns-v2.txt",
    "crio-conmon-systemd-v2.txt",
  ])("k8s attestor – %s is not a pod: [] without asking the kubelet", async (file) => {
    const before = kubelet.requestCount();
    await expect(attest(attestorWith(client()), file)).resolves.toEqual([]);
    expect(kubelet.requestCount()).toBe(before);
  });

  it("k8s attestor – the pod list is cached for lookups within the TTL, then fetched again", async () => {
    kubelet.setPods(Object.keys(EXPECTED.pods).map((f) => podFor(f)));
    let nowMs = 0;
    const attestor = attestorWith(client(), 5, () => nowMs);
    const before = kubelet.requestCount();
    await attest(attestor, "containerd-cgroupfs-v1.txt");
    nowMs = 999;
    await attest(attestor, "docker-cgroupfs-v2.txt");
    expect(kubelet.requestCount() - before).toBe(1);
    nowMs = 1000;
    await attest(attestor, "docker-cgroupfs-v2.txt");
    expect(kubelet.requestCount() - before).toBe(2);
  });

  it("k8s attestor – a cache miss fetches at once: a pod added since the last list is found", async () => {
    const attestor = attestorWith(client(), 1, () => 0);
    kubelet.setPods([podFor("crio-systemd-v2.txt")]);
    await attest(attestor, "crio-systemd-v2.txt");
    kubelet.setPods([podFor("crio-systemd-v2.txt"), podFor("docker-systemd-v2.txt")]);
    const selectors = await attest(attestor, "docker-systemd-v2.txt");
    expect(texts(selectors)).toContain(
      `k8s:pod-uid:${EXPECTED.pods["docker-systemd-v2.txt"]!.podUid}`,
    );
  });

  it("k8s attestor – a miss while a request is under way waits for the next request, not the retry delay", async () => {
    const file = "containerd-systemd-v1.txt";
    const real = client();
    let calls = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const gated: KubeletClient = {
      async listPods(signal) {
        calls += 1;
        const pods = await real.listPods(signal);
        if (calls === 1) await gate;
        return pods;
      },
    };
    // A retry after the delay would outlast the test.
    const attestor = createK8sAttestor({
      procRoot: proc.path,
      kubelet: gated,
      nodeName: "node-a",
      retry: { attempts: 2, delayMs: 60_000 },
    });
    // The first caller sends the request and, missing, waits out the retry delay (then leaves).
    const early = new AbortController();
    const first = attestor.attest({ pid: pidOf(file), uid: 0, gid: 0 }, early.signal);
    await sleep(50);
    // The pod is listed after the first request was answered: that answer misses it.
    kubelet.setPods([podFor(file)]);
    const second = attest(attestor, file);
    await sleep(10);
    release();
    const selectors = await second;
    expect(texts(selectors)).toContain(`k8s:pod-uid:${EXPECTED.pods[file]!.podUid}`);
    expect(calls).toBe(2);
    early.abort(new Error("caller went away"));
    await expect(first).rejects.toThrow("caller went away");
  });

  it("k8s attestor – concurrent attestations share one request", async () => {
    kubelet.setPods(Object.keys(EXPECTED.pods).map((f) => podFor(f)));
    const attestor = attestorWith(client());
    const before = kubelet.requestCount();
    const all = await Promise.all(Object.keys(EXPECTED.pods).map((f) => attest(attestor, f)));
    expect(all.every((selectors) => selectors.length > 0)).toBe(true);
    expect(kubelet.requestCount() - before).toBe(1);
  });

  it("k8s attestor – an unreachable kubelet is kubelet_unavailable", async () => {
    const down = await startKubeletStandIn();
    await down.stop();
    await expectCode(
      attest(attestorWith(createKubeletClient({ url: down.url }), 2), "containerd-cgroupfs-v2.txt"),
      "agent.attestation.kubelet_unavailable",
    );
  });

  it("k8s attestor – an abort while waiting for the pod to be listed ends the attestation", async () => {
    const controller = new AbortController();
    const aborting: KubeletClient = {
      async listPods(signal) {
        const pods = await client().listPods(signal);
        controller.abort(new Error("caller went away"));
        return pods;
      },
    };
    await expect(
      attestorWith(aborting, 5).attest(
        { pid: pidOf("containerd-cgroupfs-v1.txt"), uid: 0, gid: 0 },
        controller.signal,
      ),
    ).rejects.toThrow("caller went away");
  });

  it("k8s attestor – a process without /proc entry is process_gone", async () => {
    await expectCode(
      attestorWith(client()).attest({ pid: 999999, uid: 0, gid: 0 }),
      "agent.attestation.process_gone",
    );
  });
});

describe("kubelet client", () => {
  it("kubelet client – sends the bearer token; a refused token is kubelet_unavailable", async () => {
    const kubelet = await startKubeletStandIn({ bearerToken: "s3cret" });
    try {
      await expect(
        createKubeletClient({ url: kubelet.url, token: () => "s3cret" }).listPods(),
      ).resolves.toEqual([]);
      await expectCode(
        createKubeletClient({ url: kubelet.url, token: "wrong" }).listPods(),
        "agent.attestation.kubelet_unavailable",
      );
    } finally {
      await kubelet.stop();
    }
  });

  it("kubelet client – https: trusts caPem, refuses an unknown CA, or skips verification", async () => {
    const dir = await createTempDir("agent-kubelet-tls-");
    try {
      const key = join(dir.path, "key.pem");
      const cert = join(dir.path, "cert.pem");
      const made = await runCommand("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=kubelet",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert,
      ]);
      expect(made.code).toBe(0);
      const certPem = readFileSync(cert, "utf8");
      const kubelet = await startKubeletStandIn({
        tls: { certPem, keyPem: readFileSync(key, "utf8") },
        pods: [{ metadata: { name: "p", namespace: "ns", uid: "u" } }],
      });
      try {
        expect(kubelet.url).toMatch(/^https:/);
        const trusted = await createKubeletClient({ url: kubelet.url, caPem: certPem }).listPods();
        expect(trusted.map((p) => p.metadata?.name)).toEqual(["p"]);
        await expectCode(
          createKubeletClient({ url: kubelet.url }).listPods(),
          "agent.attestation.kubelet_unavailable",
        );
        const skipped = await createKubeletClient({
          url: kubelet.url,
          insecureSkipVerify: true,
        }).listPods();
        expect(skipped).toHaveLength(1);
      } finally {
        await kubelet.stop();
      }
    } finally {
      await dir.cleanup();
    }
  });

  it("kubelet client – a caller's abort ends the request with the signal's reason", async () => {
    const kubelet = await startKubeletStandIn();
    try {
      const controller = new AbortController();
      controller.abort(new Error("caller went away"));
      await expect(
        createKubeletClient({ url: kubelet.url }).listPods(controller.signal),
      ).rejects.toThrow("caller went away");
    } finally {
      await kubelet.stop();
    }
  });

  it("kubelet client – keeps only the attestor's fields; an unchanged pod is the same object in the next list", async () => {
    const pod = (name: string, image: string) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: "ns",
        uid: `uid-${name}`,
        labels: { app: name },
        annotations: { big: "x".repeat(1000) },
        ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "rs", uid: "1" }],
        managedFields: [{ manager: "kubelet", fieldsV1: { "f:status": {} } }],
      },
      spec: {
        nodeName: "node-a",
        serviceAccountName: "sa",
        containers: [{ name: "app", image, env: [{ name: "A", value: "1" }] }],
      },
      status: {
        phase: "Running",
        containerStatuses: [
          {
            name: "app",
            image,
            imageID: "",
            containerID: `containerd://${name}`,
            ready: true,
            restartCount: 0,
          },
        ],
      },
    });
    const kubelet = await startKubeletStandIn({ pods: [pod("a", "img:1"), pod("b", "img:1")] });
    try {
      const client = createKubeletClient({ url: kubelet.url });
      const first = await client.listPods();
      expect(first[0]).toEqual({
        metadata: {
          name: "a",
          namespace: "ns",
          uid: "uid-a",
          labels: { app: "a" },
          ownerReferences: [{ kind: "ReplicaSet", name: "rs" }],
        },
        spec: {
          nodeName: "node-a",
          serviceAccountName: "sa",
          containers: [{ name: "app", image: "img:1" }],
        },
        status: {
          containerStatuses: [
            { name: "app", image: "img:1", imageID: "", containerID: "containerd://a" },
          ],
        },
      });
      kubelet.setPods([pod("a", "img:1"), pod("b", "img:2"), pod("c", "img:1")]);
      const second = await client.listPods();
      expect(second.map((p) => p.metadata?.name)).toEqual(["a", "b", "c"]);
      expect(second[0]).toBe(first[0]);
      expect(second[1]).not.toBe(first[1]);
      expect(second[1]?.spec?.containers?.[0]?.image).toBe("img:2");
    } finally {
      await kubelet.stop();
    }
  });

  it("kubelet client – a list of thousands of pods arrives whole", async () => {
    const pods = Array.from({ length: 3000 }, (_, i) => ({
      metadata: { name: `p${i}`, namespace: "ns", uid: `u${i}`, labels: { "a{b": 'c"}d' } },
    }));
    const kubelet = await startKubeletStandIn({ pods });
    try {
      const got = await createKubeletClient({ url: kubelet.url }).listPods();
      expect(got.map((p) => p.metadata?.name)).toEqual(pods.map((p) => p.metadata.name));
      expect(got[2999]?.metadata?.labels).toEqual({ "a{b": 'c"}d' });
    } finally {
      await kubelet.stop();
    }
  });

  it.each([
    ["no JSON", "<html>"],
    ["a truncated list", '{"kind":"PodList","items":[{"metadata":{}}'],
    ["a broken pod", '{"kind":"PodList","items":[{"metadata":}]}'],
    ["no pod list", '{"kind":"Status","code":500}'],
  ])("kubelet client – an answer with %s is kubelet_unavailable", async (_, body) => {
    const server = createHttpServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await expectCode(
        createKubeletClient({ url }).listPods(),
        "agent.attestation.kubelet_unavailable",
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("kubelet client – a non-http URL is refused", () => {
    expect(() => createKubeletClient({ url: "ftp://127.0.0.1/" })).toThrow(
      expect.objectContaining({ code: "agent.attestation.kubelet_url_invalid" }) as Error,
    );
  });
});

describe("workload attestation (PID-reuse guard)", () => {
  const logger = createNoopLogger();
  const statLine = (pid: number, state: string, start: number) =>
    `${pid} (a) b (c) ${state} 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 0 0 0\n`;

  it("workload attestation – merges and normalises the selectors of every attestor", async () => {
    const child = await spawnSleep(undefined);
    const extra: WorkloadAttestor = {
      type: "test",
      attest: () =>
        Promise.resolve([
          { type: "unix", value: "uid:0" },
          { type: "k8s", value: "ns:a" },
        ]),
    };
    const attestation = createWorkloadAttestation({
      attestors: [createUnixAttestor(), extra],
      logger,
    });
    const selectors = await attestation.attest({ pid: child.pid, uid: 0, gid: 0 });
    const got = selectors.map(formatSelector);
    expect(got).toEqual([...new Set(got)].sort());
    expect(got).toEqual(expect.arrayContaining(["k8s:ns:a", "unix:uid:0", "unix:gid:0"]));
  });

  it("workload attestation – a real child that exits during attestation is process_gone", async () => {
    const child = await spawnSleep(undefined);
    const killer: WorkloadAttestor = {
      type: "test",
      async attest() {
        await child.stop({ signal: "SIGKILL" });
        return [{ type: "test", value: "x" }];
      },
    };
    const attestation = createWorkloadAttestation({ attestors: [killer], logger });
    await expectCode(
      attestation.attest({ pid: child.pid, uid: 0, gid: 0 }),
      "agent.attestation.process_gone",
    );
  });

  it("workload attestation – a start time that changes between the reads is pid_reused", async () => {
    const proc = await createTempDir("agent-proc-");
    try {
      mkdirSync(join(proc.path, "4242"));
      const stat = join(proc.path, "4242", "stat");
      writeFileSync(stat, statLine(4242, "S", 1000));
      const reuse: WorkloadAttestor = {
        type: "test",
        attest() {
          writeFileSync(stat, statLine(4242, "S", 2000));
          return Promise.resolve([{ type: "test", value: "x" }]);
        },
      };
      const attestation = createWorkloadAttestation({
        attestors: [reuse],
        procRoot: proc.path,
        logger,
      });
      await expectCode(
        attestation.attest({ pid: 4242, uid: 0, gid: 0 }),
        "agent.attestation.pid_reused",
      );
    } finally {
      await proc.cleanup();
    }
  });

  it("workload attestation – a zombie or a reused PID beats the attestor's own error", async () => {
    const proc = await createTempDir("agent-proc-");
    try {
      mkdirSync(join(proc.path, "77"));
      const stat = join(proc.path, "77", "stat");
      writeFileSync(stat, statLine(77, "S", 5));
      const failing = (next: string): WorkloadAttestor => ({
        type: "test",
        attest() {
          writeFileSync(stat, next);
          return Promise.reject(new Error("attestor broke"));
        },
      });
      const run = (next: string) =>
        createWorkloadAttestation({
          attestors: [failing(next)],
          procRoot: proc.path,
          logger,
        }).attest({
          pid: 77,
          uid: 0,
          gid: 0,
        });
      await expectCode(run(statLine(77, "Z", 5)), "agent.attestation.process_gone");
      writeFileSync(stat, statLine(77, "S", 5));
      await expectCode(run(statLine(77, "S", 6)), "agent.attestation.pid_reused");
      writeFileSync(stat, statLine(77, "S", 5));
      await expect(run(statLine(77, "S", 5))).rejects.toThrow("attestor broke");
    } finally {
      await proc.cleanup();
    }
  });

  it("workload attestation – an unknown PID is process_gone before any attestor runs", async () => {
    let ran = false;
    const spy: WorkloadAttestor = {
      type: "test",
      attest() {
        ran = true;
        return Promise.resolve([]);
      },
    };
    const proc = await createTempDir("agent-proc-");
    try {
      await expectCode(
        createWorkloadAttestation({ attestors: [spy], procRoot: proc.path, logger }).attest({
          pid: 12,
          uid: 0,
          gid: 0,
        }),
        "agent.attestation.process_gone",
      );
      expect(ran).toBe(false);
    } finally {
      await proc.cleanup();
    }
  });
});
