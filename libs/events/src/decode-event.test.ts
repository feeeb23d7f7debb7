import { headers, type MsgHdrs } from "nats";
import { agentWakeupSubject } from "./subjects";
import { decodeEventMessage, type MalformedReason } from "./decode-event";

const enc = new TextEncoder();

/** Builds valid headers for `ceType`, with overrides ("" deletes). */
function ceHeaders(ceType: string, overrides: Record<string, string> = {}): MsgHdrs {
  const values: Record<string, string> = {
    "ce-specversion": "1.0",
    "ce-id": "2f1e0b7c-2c8e-4a4f-9d3e-0d1c2b3a4f5e",
    "ce-type": ceType,
    "ce-source": "meshid/ca/ca-0",
    "ce-time": "2026-11-22T13:00:00.000Z",
    "content-type": "application/json",
    ...overrides,
  };
  const h = headers();
  for (const [k, v] of Object.entries(values)) if (v !== "") h.set(k, v);
  return h;
}

const body = enc.encode(JSON.stringify({ entryId: "e1", revision: 7 }));

describe("decodeEventMessage", () => {
  it("decode – accepts a valid event and types its payload", () => {
    const result = decodeEventMessage({
      subject: "meshid.v1.entry.created",
      headers: ceHeaders("io.meshid.entry.created.v1", { "ce-subject": "e1" }),
      data: body,
    });
    expect(result.ok).toBe(true);
    if (!result.ok || result.event.type !== "entry.created") throw new Error("not decoded");
    expect(result.event.data.entryId).toBe("e1");
    expect(result.event.data.revision).toBe(7);
    expect(result.event.subject).toBe("e1");
    expect(result.event.time.toISOString()).toBe("2026-11-22T13:00:00.000Z");
  });

  it("decode – accepts wake-ups only on per-agent subjects", () => {
    const h = ceHeaders("io.meshid.agent.wakeup.v1");
    const data = enc.encode('{"revision":3}');
    expect(decodeEventMessage({ subject: agentWakeupSubject("a"), headers: h, data }).ok).toBe(
      true,
    );
    const wrong = decodeEventMessage({ subject: "meshid.v1.agent.wakeup", headers: h, data });
    expect(wrong.ok ? "ok" : wrong.reason).toBe("subject_mismatch");
  });

  const cases: [string, MalformedReason, () => Parameters<typeof decodeEventMessage>[0]][] = [
    ["no headers", "missing_headers", () => ({ subject: "meshid.v1.entry.created", data: body })],
    ...(
      [
        ["spec version 0.3", { "ce-specversion": "0.3" }, "bad_specversion"],
        ["no id", { "ce-id": "" }, "missing_id"],
        ["unknown type", { "ce-type": "io.meshid.entry.exploded.v1" }, "unknown_type"],
        ["no source", { "ce-source": "" }, "missing_source"],
        ["bad time", { "ce-time": "yesterday" }, "bad_time"],
        ["time without zone", { "ce-time": "2026-11-22T13:00:00" }, "bad_time"],
        ["xml", { "content-type": "application/xml" }, "bad_content_type"],
        ["type on wrong subject", { "ce-type": "io.meshid.entry.deleted.v1" }, "subject_mismatch"],
      ] as const
    ).map(
      ([name, overrides, reason]) =>
        [
          name,
          reason,
          () => ({
            subject: "meshid.v1.entry.created",
            headers: ceHeaders("io.meshid.entry.created.v1", overrides),
            data: body,
          }),
        ] as [string, MalformedReason, () => Parameters<typeof decodeEventMessage>[0]],
    ),
    ...(["not json", "[1,2]", "null", '"s"', "\u00ff"] as const).map(
      (text) =>
        [
          `body ${text}`,
          "bad_body",
          () => ({
            subject: "meshid.v1.entry.created",
            headers: ceHeaders("io.meshid.entry.created.v1"),
            data: text === "\u00ff" ? Uint8Array.of(0xff, 0xfe) : enc.encode(text),
          }),
        ] as [string, MalformedReason, () => Parameters<typeof decodeEventMessage>[0]],
    ),
  ];

  it.each(cases)("decode – rejects %s", (_name, reason, msg) => {
    const result = decodeEventMessage(msg());
    expect(result.ok ? "ok" : result.reason).toBe(reason);
  });

  it("decode – rejects an invalid timestamp in the payload", () => {
    const result = decodeEventMessage({
      subject: "meshid.v1.svid.issued",
      headers: ceHeaders("io.meshid.svid.issued.v1"),
      data: enc.encode('{"expiresAt":"not a date"}'),
    });
    expect(result.ok ? "ok" : result.reason).toBe("bad_body");
  });
});
