// One pod's identity as OpenTelemetry traces exported by every service to an OTLP receiver in
// the test (see README.md).
import { startK8sMesh, waitFor, type K8sMesh } from "../support/k8s-mesh";
import {
  SPAN_KIND,
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from "../support/otlp-receiver";
import { POD_WORKLOAD_JS, waitForSvidUpdate } from "../support/pod-stream";

jest.setTimeout(240_000);

describe("trace (OTLP from every service)", () => {
  let otlp: OtlpReceiver;
  let mesh: K8sMesh;

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    mesh = await startK8sMesh({ serviceEnv: otlp.env() });
  });

  afterAll(async () => {
    await mesh?.stop();
    await otlp?.stop();
  });

  /** The one span matching, among `spans`. */
  const one = (
    spans: readonly ReceivedSpan[],
    what: string,
    match: (s: ReceivedSpan) => boolean,
  ): ReceivedSpan => {
    const found = spans.filter(match);
    if (found.length !== 1) {
      throw new Error(
        `expected one ${what}, found ${found.length}; spans:\n` +
          spans
            .map(
              (s) => `${s.service} ${s.kind} ${s.name} ${s.traceId}/${s.spanId}<-${s.parentSpanId}`,
            )
            .join("\n"),
      );
    }
    return found[0]!;
  };

  it("trace – a pod's registration is one trace from the registrar through the ca to the agent, gRPC and NATS spans linked", async () => {
    // Spans of the mesh's own start (attestation, first sync) are not the pod's.
    await waitFor("the start-up spans", () =>
      otlp.spans().some((s) => s.service === "meshid-agent"),
    );
    const seen = new Set(otlp.spans().map((s) => s.spanId));

    const pod = await mesh.createPod({
      namespace: "shop",
      name: "traced",
      serviceAccount: "traced",
    });
    const stream = await mesh.spawnInPod(pod, process.execPath, [
      POD_WORKLOAD_JS,
      mesh.workloadSocket,
    ]);
    await waitForSvidUpdate(stream, "the pod's SVID", (u) => u.spiffeIds.includes(pod.spiffeId));
    await stream.stop();

    const fresh = (): ReceivedSpan[] => otlp.spans().filter((s) => !seen.has(s.spanId));
    const spans = await waitFor("the pod's spans from registrar, ca and agent", () => {
      const now = fresh();
      const has = (service: string, kind: number, name: RegExp): boolean =>
        now.some((s) => s.service === service && s.kind === kind && name.test(s.name));
      return has("meshid-registrar", SPAN_KIND.client, /BatchCreateEntry$/) &&
        has("meshid-agent", SPAN_KIND.consumer, /^process meshid\.v1\.agent\.wakeup\./) &&
        has("meshid-ca", SPAN_KIND.server, /BatchNewX509SVID$/) &&
        has("meshid-ca", SPAN_KIND.producer, /^publish meshid\.v1\.svid\.issued$/)
        ? now
        : undefined;
    });

    // registrar → ca over gRPC (admin socket): client span → server span, same trace.
    const create = one(
      spans,
      "registrar BatchCreateEntry client span",
      (s) =>
        s.service === "meshid-registrar" &&
        s.kind === SPAN_KIND.client &&
        /BatchCreateEntry$/.test(s.name),
    );
    const trace = spans.filter((s) => s.traceId === create.traceId);
    const served = one(
      trace,
      "ca BatchCreateEntry server span",
      (s) =>
        s.service === "meshid-ca" &&
        s.kind === SPAN_KIND.server &&
        /BatchCreateEntry$/.test(s.name),
    );
    expect(served.parentSpanId).toBe(create.spanId);

    // ca → NATS: entry.created and the agent's wake-up are published inside that call.
    const created = one(
      trace,
      "entry.created publish span",
      (s) =>
        s.service === "meshid-ca" &&
        s.kind === SPAN_KIND.producer &&
        s.name === "publish meshid.v1.entry.created",
    );
    expect(created.parentSpanId).toBe(served.spanId);
    const wakeup = one(
      trace,
      "agent wake-up publish span",
      (s) =>
        s.service === "meshid-ca" &&
        s.kind === SPAN_KIND.producer &&
        /^publish meshid\.v1\.agent\.wakeup\./.test(s.name),
    );
    expect(wakeup.parentSpanId).toBe(served.spanId);

    // NATS → agent: the wake-up is processed in the same trace, as a child of its publication.
    const processed = one(
      trace,
      "agent wake-up process span",
      (s) => s.service === "meshid-agent" && s.kind === SPAN_KIND.consumer,
    );
    expect(processed.parentSpanId).toBe(wakeup.spanId);
    expect(processed.name).toBe(wakeup.name.replace(/^publish /, "process "));

    // agent → ca: the signing of the pod's key is a gRPC client/server pair, and the svid.issued
    // event it publishes is a child of the server span.
    const signServer = one(
      spans,
      "ca BatchNewX509SVID server span",
      (s) =>
        s.service === "meshid-ca" &&
        s.kind === SPAN_KIND.server &&
        /BatchNewX509SVID$/.test(s.name),
    );
    const signClient = one(
      spans,
      "agent BatchNewX509SVID client span",
      (s) => s.spanId === signServer.parentSpanId,
    );
    expect(signClient.service).toBe("meshid-agent");
    expect(signClient.kind).toBe(SPAN_KIND.client);
    expect(signClient.traceId).toBe(signServer.traceId);
    const issued = one(
      spans,
      "svid.issued publish span",
      (s) => s.service === "meshid-ca" && s.name === "publish meshid.v1.svid.issued",
    );
    expect(issued.traceId).toBe(signServer.traceId);
    expect(issued.parentSpanId).toBe(signServer.spanId);
  });
});
