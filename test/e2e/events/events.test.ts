// An outside tool's view of the mesh: a JetStream durable consumer of MESHID_EVENTS sees a pod's
// whole lifecycle in order, and resumes / replays it after reconnecting (see README.md).
import {
  consumeEventsDurable,
  type DurableEvent,
  type DurableEventConsumer,
  type EventType,
} from "@meshid/events";
import { connect, type NatsConnection } from "nats";
import { startK8sMesh, waitFor, type K8sMesh, type MeshPod } from "../support/k8s-mesh";
import { POD_WORKLOAD_JS, waitForSvidUpdate } from "../support/pod-stream";

jest.setTimeout(240_000);

/** One event as the audit tool keeps it. */
interface Seen {
  readonly seq: number;
  readonly type: EventType;
  readonly id: string;
  /** The SPIFFE ID, entry ID or pod UID the event is about (whatever it carries). */
  readonly about: string;
}

function aboutOf(event: DurableEvent): string {
  const data = event.data as unknown as Record<string, unknown>;
  const id = data.spiffeId as { trustDomain?: string; path?: string } | undefined;
  const parts = [
    typeof data.podUid === "string" ? `pod:${data.podUid}` : "",
    typeof data.entryId === "string" ? `entry:${data.entryId}` : "",
    id?.path === undefined ? "" : `spiffe://${id.trustDomain ?? ""}${id.path}`,
  ];
  return parts.filter((p) => p !== "").join(" ");
}

/** Pulls events from `consumer` into `into` (acknowledging each) until `stop` aborts. */
function collect(consumer: DurableEventConsumer<EventType>, into: Seen[]): Promise<void> {
  return (async () => {
    for await (const event of consumer) {
      into.push({
        seq: event.streamSequence,
        type: event.type,
        id: event.id,
        about: aboutOf(event),
      });
      await event.ack();
    }
  })();
}

describe("events (JetStream, outside subscriber)", () => {
  let mesh: K8sMesh;
  let nc: NatsConnection | undefined;
  let pod: MeshPod;

  beforeAll(async () => {
    mesh = await startK8sMesh();
  });

  afterAll(async () => {
    await nc?.close();
    await mesh?.stop();
  });

  const indexOf = (seen: readonly Seen[], type: EventType, about: string): number =>
    seen.findIndex((s) => s.type === type && s.about.includes(about));

  it("events – a durable consumer sees a pod's lifecycle in order and resumes after reconnecting without losing or repeating events", async () => {
    nc = await connect({ servers: mesh.nats.url, name: "e2e-audit" });
    const seen: Seen[] = [];
    let consumer = await consumeEventsDurable({ nc, durableName: "e2e-audit", types: "all" });
    let pulling = collect(consumer, seen);

    pod = await mesh.createPod({ namespace: "shop", name: "audit-me", serviceAccount: "audit" });
    const stream = await mesh.spawnInPod(pod, process.execPath, [
      POD_WORKLOAD_JS,
      mesh.workloadSocket,
    ]);
    await waitForSvidUpdate(stream, "the pod's SVID", (u) => u.spiffeIds.includes(pod.spiffeId));
    await waitFor("entry.created, pod.registered and svid.issued", () =>
      ["entry.created", "pod.registered", "svid.issued"].every(
        (t) => indexOf(seen, t as EventType, t === "pod.registered" ? pod.uid : pod.spiffeId) >= 0,
      ),
    );
    await stream.stop();

    // The tool goes away; the pod is deleted meanwhile.
    await consumer.close();
    await pulling;
    await nc.close();
    const before = seen.length;
    await mesh.deletePod(pod);
    await waitFor("the entry to be deleted", async () => {
      const listed = await mesh.admin.entries.listEntries({
        bySelectors: [{ type: "k8s", value: `pod-uid:${pod.uid}` }],
      });
      return listed.entries.length === 0;
    });

    // It comes back with the same durable name: it gets what it missed, and nothing twice.
    nc = await connect({ servers: mesh.nats.url, name: "e2e-audit" });
    consumer = await consumeEventsDurable({ nc, durableName: "e2e-audit", types: "all" });
    pulling = collect(consumer, seen);
    await waitFor(
      "entry.deleted and pod.deregistered after reconnecting",
      () =>
        indexOf(seen, "entry.deleted", pod.spiffeId) >= 0 &&
        indexOf(seen, "pod.deregistered", pod.uid) >= 0,
    );
    await consumer.close();
    await pulling;
    expect(seen.length).toBeGreaterThan(before);

    const seqs = seen.map((s) => s.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(new Set(seen.map((s) => s.id)).size).toBe(seen.length);
    // The stream starts at the mesh's start: the agent's attestation is the first lifecycle event.
    expect(indexOf(seen, "agent.attested", "")).toBeGreaterThanOrEqual(0);

    // Causal order of the pod's lifecycle.
    const created = indexOf(seen, "entry.created", pod.spiffeId);
    const registered = indexOf(seen, "pod.registered", pod.uid);
    const issued = indexOf(seen, "svid.issued", pod.spiffeId);
    const deleted = indexOf(seen, "entry.deleted", pod.spiffeId);
    const deregistered = indexOf(seen, "pod.deregistered", pod.uid);
    expect(created).toBeLessThan(registered);
    expect(created).toBeLessThan(issued);
    expect(issued).toBeLessThan(deleted);
    expect(registered).toBeLessThan(deregistered);
    expect(deleted).toBeGreaterThanOrEqual(before);
  });

  it("events – a new durable consumer replays the whole history in the same order", async () => {
    const replay = await consumeEventsDurable({
      nc: nc!,
      durableName: "e2e-replay",
      types: "all",
      deliverPolicy: "all",
    });
    const seen: Seen[] = [];
    const pulling = collect(replay, seen);
    const jsm = await nc!.jetstreamManager();
    const last = (await jsm.streams.info("MESHID_EVENTS")).state.last_seq;
    await waitFor(
      "every stored event",
      () => seen.at(-1)?.seq === last || seen.some((s) => s.seq >= last),
    );
    await replay.close();
    await pulling;
    const seqs = seen.map((s) => s.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const created = indexOf(seen, "entry.created", pod.spiffeId);
    const deleted = indexOf(seen, "entry.deleted", pod.spiffeId);
    const deregistered = indexOf(seen, "pod.deregistered", pod.uid);
    expect(created).toBeGreaterThanOrEqual(0);
    expect(created).toBeLessThan(deleted);
    expect(deleted).toBeLessThanOrEqual(deregistered);
  });
});
