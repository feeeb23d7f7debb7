// pod.registered / pod.deregistered on a real nats-server, published after the CA accepted
// each write: creation, an update (a new Service adds a DNS name) and deletion.
import { startNatsServer, type NatsServer } from "@meshid/testkit";
import type { NatsConnection, Subscription } from "nats";
import { startRegistrarWorld, waitFor, type RegistrarWorld } from "./registrar-harness";

interface SeenEvent {
  readonly type: string;
  readonly subject: string;
  readonly body: Record<string, unknown>;
}

jest.setTimeout(120_000);

let world: RegistrarWorld;
let nats: NatsServer;
let nc: NatsConnection;
let sub: Subscription;
const seen: SeenEvent[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  world = await startRegistrarWorld();
  nc = await nats.connect();
  sub = nc.subscribe("meshid.v1.pod.>", {
    callback: (_err, msg) => {
      seen.push({
        type: msg.headers?.get("ce-type") ?? "",
        subject: msg.headers?.get("ce-subject") ?? "",
        body: JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>,
      });
    },
  });
  await nc.flush();
}, 120_000);
afterAll(async () => {
  sub?.unsubscribe();
  await world?.stop();
  await nats?.stop();
});

describe("registrar – registration events", () => {
  it("registrar – pod.registered on create and update, pod.deregistered on delete", async () => {
    world.addNode("node-e");
    const { registrar } = await world.startRegistrar({ natsUrl: nats.url });
    await waitFor(
      "ready and connected",
      () => registrar.ready() && registrar.status().natsConnected,
    );

    const pod = await world.createPod({
      namespace: "ev",
      name: "api-1",
      node: "node-e",
      serviceAccount: "api",
      labels: { app: "api", "meshid.io/inject": "true" },
    });
    const uid = pod.metadata?.uid ?? "";
    const [entry] = await waitFor("the entry", async () => {
      const e = (await world.entries()).filter((x) => x.spiffeId.includes("/ns/ev/"));
      return e.length === 1 ? e : undefined;
    });
    const registered = await waitFor("pod.registered", () =>
      seen.find((e) => e.type === "io.meshid.pod.registered.v1"),
    );
    expect(registered.body).toEqual({
      namespace: "ev",
      podName: "api-1",
      podUid: uid,
      spiffeId: { trustDomain: "example.org", path: "/ns/ev/sa/api" },
      entryId: entry?.id,
    });
    expect(registered.subject).toBe(entry?.id);

    // A Service selecting the pod adds its DNS name: the entry is updated in place.
    world.kube.apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "frontdoor", namespace: "ev" },
      spec: { selector: { app: "api" } },
    });
    await waitFor("the updated entry", async () =>
      (await world.entries()).some(
        (e) => e.id === entry?.id && e.dnsNames.includes("frontdoor.ev.svc"),
      ),
    );
    await waitFor(
      "a second pod.registered",
      () => seen.filter((e) => e.type === "io.meshid.pod.registered.v1").length === 2,
    );
    expect(registrar.status().reconciler.updated).toBeGreaterThanOrEqual(1);

    await world.deletePod("ev", "api-1");
    const deregistered = await waitFor("pod.deregistered", () =>
      seen.find((e) => e.type === "io.meshid.pod.deregistered.v1"),
    );
    expect(deregistered.body).toEqual({
      namespace: "ev",
      podName: "api-1",
      podUid: uid,
      spiffeId: { trustDomain: "example.org", path: "/ns/ev/sa/api" },
      entryId: entry?.id,
    });
    expect((await world.entries()).some((e) => e.id === entry?.id)).toBe(false);
  });
});
