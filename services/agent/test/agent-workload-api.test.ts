// Whole agent: real CA process, real nats-server, the agent in-process, workloads as child
// processes of other uids on the Workload API socket. See test/README.md.
import { status } from "@grpc/grpc-js";
import {
  EVENT_TIMEOUT_MS,
  OTHER_UID,
  WORKLOAD_UID,
  fetchOnce,
  leafSerial,
  startAgentSuite,
  startWorkload,
  verifyDeliveredSvid,
  type AgentSuite,
  type ReceivedSvid,
  type TestWorkload,
} from "./agent-harness";

jest.setTimeout(180_000);

describe("agent – Workload API end to end", () => {
  let suite: AgentSuite;
  const workloads: TestWorkload[] = [];

  beforeAll(async () => {
    suite = await startAgentSuite();
  });

  afterEach(async () => {
    await Promise.all(workloads.splice(0).map((w) => w.stop()));
  });

  afterAll(async () => {
    await suite?.stop();
  });

  async function openWorkload(uid: number): Promise<TestWorkload> {
    const w = await startWorkload(suite.socketPath, uid);
    workloads.push(w);
    return w;
  }

  const ids = (svids: readonly ReceivedSvid[]): string[] => svids.map((s) => s.spiffeId).sort();
  const td = (): string => suite.ca.trustDomain;

  async function expectValid(svids: readonly ReceivedSvid[]): Promise<void> {
    for (const svid of svids) {
      expect(await verifyDeliveredSvid(svid, td(), suite.dir.path)).toBe(svid.spiffeId);
    }
  }

  /** Reads messages until one satisfies `done` (bounded by EVENT_TIMEOUT_MS each). */
  async function messageUntil(
    w: TestWorkload,
    done: (svids: ReceivedSvid[]) => boolean,
  ): Promise<ReceivedSvid[]> {
    for (;;) {
      const svids = await w.nextMessage();
      if (done(svids)) return svids;
    }
  }

  it("agent – an unregistered uid is refused, then its new entry is served on retry", async () => {
    expect(suite.agent().ready()).toBe(true);
    const refused = await fetchOnce(suite.socketPath, WORKLOAD_UID);
    expect(refused).toMatchObject({ event: "end", code: status.PERMISSION_DENIED });

    const entryId = await suite.createEntry({
      path: "/w/nobody-one",
      selectors: [`unix:uid:${WORKLOAD_UID}`],
    });
    // The client retries as a SPIFFE library does, until the entry reached the agent.
    const deadline = Date.now() + EVENT_TIMEOUT_MS;
    let served: ReceivedSvid[] | undefined;
    while (served === undefined) {
      const event = await fetchOnce(suite.socketPath, WORKLOAD_UID);
      if (event.event === "message") served = event.svids;
      else if (Date.now() > deadline) throw new Error(`still refused: ${event.details}`);
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(ids(served)).toEqual([`spiffe://${td()}/w/nobody-one`]);
    await expectValid(served);
    await suite.deleteEntry(entryId);
  });

  it("agent – the open stream gets a second entry, rotations, withdrawals, then PERMISSION_DENIED", async () => {
    const one = await suite.createEntry({
      path: "/w/stream-one",
      selectors: [`unix:uid:${WORKLOAD_UID}`],
    });
    const w = await openWorkload(WORKLOAD_UID);
    // The first message may precede the entry's arrival at the agent only as a refusal; the
    // fixture then has ended, so restart it until served.
    let first = await w.next();
    let stream = w;
    while (first.event === "end") {
      await stream.stop();
      stream = await openWorkload(WORKLOAD_UID);
      first = await stream.next();
    }
    expect(first.event === "message" && ids(first.svids)).toEqual([
      `spiffe://${td()}/w/stream-one`,
    ]);

    // A second matching entry, with a short TTL so the agent rotates it while we watch.
    const two = await suite.createEntry({
      path: "/w/stream-two",
      selectors: [`unix:uid:${WORKLOAD_UID}`],
      x509SvidTtlSeconds: 20,
    });
    const both = await messageUntil(stream, (s) => s.length === 2);
    expect(ids(both)).toEqual([`spiffe://${td()}/w/stream-one`, `spiffe://${td()}/w/stream-two`]);
    await expectValid(both);

    // Rotation: a later message carries a new certificate for the short-lived entry.
    const twoOf = (s: ReceivedSvid[]): ReceivedSvid | undefined =>
      s.find((x) => x.spiffeId.endsWith("/w/stream-two"));
    const firstSerial = leafSerial(twoOf(both) as ReceivedSvid);
    const rotated = await messageUntil(stream, (s) => {
      const t = twoOf(s);
      return t !== undefined && leafSerial(t) !== firstSerial;
    });
    await expectValid(rotated);

    // Another uid gets none of 65534's SVIDs.
    const other = await fetchOnce(suite.socketPath, OTHER_UID);
    expect(other).toMatchObject({ event: "end", code: status.PERMISSION_DENIED });

    // Withdrawals: one entry deleted → withdrawn from the stream; the last → PERMISSION_DENIED.
    await suite.deleteEntry(two);
    const left = await messageUntil(stream, (s) => s.length === 1);
    expect(ids(left)).toEqual([`spiffe://${td()}/w/stream-one`]);
    await suite.deleteEntry(one);
    for (;;) {
      const event = await stream.next();
      if (event.event === "end") {
        expect(event.code).toBe(status.PERMISSION_DENIED);
        break;
      }
    }
  });
});
