import { startKubeApiServer, type KubeApiServer } from "@meshid/testkit";
import { createKubeClient, type KubeClient } from "./client";
import type { KubeLease } from "./types";
import { createLeaderElector, type LeaderElector } from "./leader-election";

jest.setTimeout(120_000);

// Short timings keep the suite quick; every wait below is a generous bound, not a timing check.
const TIMINGS = { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 200 };
const WAIT_MS = 20_000;

let kube: KubeApiServer;

beforeAll(async () => {
  kube = await startKubeApiServer();
  kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "meshid" } });
});
afterAll(async () => {
  await kube.stop();
});

async function waitFor(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Candidate {
  readonly elector: LeaderElector;
  readonly stop: AbortController;
  readonly done: Promise<void>;
  readonly log: string[];
  crashed: boolean;
}

/** A candidate whose API calls all fail once `crashed` is set (a leader that froze or died). */
function startCandidate(leaseName: string, identity: string): Candidate {
  const real = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
  const candidate: Partial<Candidate> & { log: string[]; crashed: boolean } = {
    log: [],
    crashed: false,
  };
  const client: KubeClient = {
    ...real,
    request: (req) =>
      candidate.crashed ? Promise.reject(new Error("crashed")) : real.request(req),
  };
  const elector = createLeaderElector({
    client,
    leaseName,
    leaseNamespace: "meshid",
    identity,
    ...TIMINGS,
    onStartedLeading: () => candidate.log.push("started"),
    onStoppedLeading: () => candidate.log.push("stopped"),
  });
  const stop = new AbortController();
  const started: Candidate = Object.assign(candidate, {
    elector,
    stop,
    done: elector.run(stop.signal),
  });
  return started;
}

function lease(name: string): KubeLease | undefined {
  return kube.get<KubeLease>({ kind: "Lease", name, namespace: "meshid" });
}

describe("createLeaderElector", () => {
  it("leader election – one of two candidates leads; a graceful stop hands over at once", async () => {
    const a = startCandidate("graceful", "a");
    await waitFor("a to lead", () => a.elector.isLeader());
    const b = startCandidate("graceful", "b");
    await waitFor("b to observe a", () => b.elector.status().leader === "a");
    expect(b.elector.isLeader()).toBe(false);
    expect(lease("graceful")?.spec).toMatchObject({
      holderIdentity: "a",
      leaseDurationSeconds: 2,
      leaseTransitions: 0,
    });

    a.stop.abort();
    await a.done;
    expect(a.log).toEqual(["started", "stopped"]);
    await waitFor("b to lead", () => b.elector.isLeader());
    expect(lease("graceful")?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
    expect(a.elector.isLeader()).toBe(false);

    b.stop.abort();
    await b.done;
    expect(lease("graceful")?.spec?.holderIdentity).toBe("");
  });

  it("leader election – a standby takes over once a crashed leader's lease expires", async () => {
    const a = startCandidate("crash", "a");
    await waitFor("a to lead", () => a.elector.isLeader());
    const b = startCandidate("crash", "b");
    await waitFor("b to observe a", () => b.elector.status().leader === "a");

    a.crashed = true; // a can no longer renew (nor release)
    await waitFor("a to give up", () => !a.elector.isLeader());
    await waitFor("b to lead", () => b.elector.isLeader());
    expect(lease("crash")?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
    expect(a.log).toEqual(["started", "stopped"]);

    // a comes back: b keeps the lease, a stays a standby.
    a.crashed = false;
    await waitFor("a to observe b", () => a.elector.status().leader === "b");
    expect(a.elector.isLeader()).toBe(false);
    a.stop.abort();
    b.stop.abort();
    await Promise.all([a.done, b.done]);
  });

  it("leader election – rejects inconsistent timings", () => {
    const client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
    expect(() =>
      createLeaderElector({
        client,
        leaseName: "x",
        leaseNamespace: "meshid",
        identity: "a",
        leaseDurationMs: 1_000,
        renewDeadlineMs: 2_000,
        onStartedLeading: () => undefined,
        onStoppedLeading: () => undefined,
      }),
    ).toThrow(RangeError);
  });
});
