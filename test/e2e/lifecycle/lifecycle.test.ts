// Identity lifecycle on a Kubernetes node, every service its own OS process (see README.md).
import type { ManagedProcess } from "@meshid/testkit";
import { startK8sMesh, waitFor, type K8sMesh, type MeshPod } from "../support/k8s-mesh";
import {
  POD_WORKLOAD_JS,
  pemFingerprints,
  svidUpdates,
  waitForSvidUpdate,
} from "../support/pod-stream";

jest.setTimeout(300_000);

const count = (text: string, pattern: RegExp): number => (text.match(pattern) ?? []).length;

describe("lifecycle (k8s)", () => {
  let mesh: K8sMesh;
  let podA: MeshPod;
  let podB: MeshPod;
  let streamA: ManagedProcess;
  let streamB: ManagedProcess;

  beforeAll(async () => {
    mesh = await startK8sMesh({
      // Short SVIDs so a rotation is seen within the suite (rotation at about half of 60 s).
      caConfig: { svidTtl: "60s" },
      agentConfig: { reconcileInterval: "3s" },
    });
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  const streamFor = (pod: MeshPod): Promise<ManagedProcess> =>
    mesh.spawnInPod(pod, process.execPath, [POD_WORKLOAD_JS, mesh.workloadSocket], {
      outputLimitChars: 400_000,
    });

  it("lifecycle – injected pods get entries from the registrar and SVIDs on their Workload API streams", async () => {
    podA = await mesh.createPod({ namespace: "shop", name: "web-a", serviceAccount: "web" });
    podB = await mesh.createPod({ namespace: "shop", name: "api-b", serviceAccount: "api" });
    await mesh.waitForEntry(podA);
    await mesh.waitForEntry(podB);
    streamA = await streamFor(podA);
    streamB = await streamFor(podB);
    const a = await waitForSvidUpdate(streamA, "A's SVID", (u) =>
      u.spiffeIds.includes(podA.spiffeId),
    );
    const b = await waitForSvidUpdate(streamB, "B's SVID", (u) =>
      u.spiffeIds.includes(podB.spiffeId),
    );
    expect(a.spiffeIds).toEqual([podA.spiffeId]);
    expect(b.spiffeIds).toEqual([podB.spiffeId]);
    // The bundle they got is the one the bundle-notifier published in the ConfigMap.
    const configMap = await waitFor("the bundle ConfigMap", () => mesh.configMapBundle());
    expect([...a.bundleRoots].sort()).toEqual(pemFingerprints(configMap).sort());
  });

  it("lifecycle – a forced CA rotation puts the new root in the ConfigMap, the bundle file and every pod's stream", async () => {
    const before = pemFingerprints(await mesh.caBundlePem());
    const seenA = svidUpdates(streamA).length;
    const seenB = svidUpdates(streamB).length;
    const prepared = await mesh.admin.authorities.prepareX509Authority({});
    const after = await waitFor("a second root in the CA bundle", async () => {
      const roots = pemFingerprints(await mesh.caBundlePem());
      return roots.length > before.length ? roots : undefined;
    });
    const newRoot = after.find((r) => !before.includes(r))!;
    await waitFor("the new root in the ConfigMap", async () =>
      pemFingerprints((await mesh.configMapBundle()) ?? "").includes(newRoot),
    );
    const { readFile } = await import("node:fs/promises");
    await waitFor("the new root in the bundle file", async () =>
      pemFingerprints(await readFile(mesh.bundleFile, "utf8")).includes(newRoot),
    );
    for (const [stream, seen] of [
      [streamA, seenA],
      [streamB, seenB],
    ] as const) {
      await waitForSvidUpdate(stream, "the new root", (u) => u.bundleRoots.includes(newRoot), seen);
    }
    await mesh.admin.authorities.activateX509Authority({ authorityId: prepared.authorityId });
    // SVIDs minted from now on chain to the new root; the old root stays while its SVIDs live.
    const state = await mesh.admin.authorities.getX509AuthorityState({});
    expect(JSON.stringify(state)).toContain(prepared.authorityId);
    expect(pemFingerprints(await mesh.caBundlePem())).toEqual(expect.arrayContaining(before));
  });

  it("lifecycle – a killed agent is restarted and serves again without attesting its node again", async () => {
    const attested = count(mesh.ca.output(), /"msg":"agent attested"/g);
    expect(attested).toBe(1);
    const seenA = svidUpdates(streamA).length;
    await mesh.agent.kill9();
    await mesh.agent.restart();
    await waitForSvidUpdate(
      streamA,
      "A's SVID after the agent restart",
      (u) => u.spiffeIds.includes(podA.spiffeId),
      seenA,
    );
    expect(count(mesh.ca.output(), /"msg":"agent attested"/g)).toBe(attested);
  });

  it("lifecycle – with the CA killed the agent keeps serving cached SVIDs, and rotates again once it is back", async () => {
    await mesh.ca.kill9();
    // A new caller of an existing pod is served from the agent's cache.
    const again = await streamFor(podA);
    try {
      await waitForSvidUpdate(again, "A's cached SVID while the CA is down", (u) =>
        u.spiffeIds.includes(podA.spiffeId),
      );
    } finally {
      await again.stop();
    }
    const lastB = svidUpdates(streamB).at(-1)!;
    const seenB = svidUpdates(streamB).length;
    await mesh.ca.restart();
    const rotated = await waitForSvidUpdate(
      streamB,
      "a rotated SVID for B after the CA came back",
      (u) => u.serial !== lastB.serial,
      seenB,
    );
    expect(Date.parse(rotated.notAfter)).toBeGreaterThan(Date.parse(lastB.notAfter));
  });

  it("lifecycle – entries created while nats-server was down reach the agent once it is back", async () => {
    let podC: MeshPod | undefined;
    await mesh.nats.restart(async () => {
      podC = await mesh.createPod({ namespace: "shop", name: "cart-c", serviceAccount: "cart" });
      await mesh.waitForEntry(podC);
    });
    const streamC = await streamFor(podC!);
    try {
      await waitForSvidUpdate(streamC, "C's SVID", (u) => u.spiffeIds.includes(podC!.spiffeId));
    } finally {
      await streamC.stop();
    }
  });
});
