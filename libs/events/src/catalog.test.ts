import { EVENT_CATALOG, EVENT_TYPES, eventTypeFromCeType, isEventType } from "./catalog";

describe("EVENT_CATALOG", () => {
  it("catalog – every DESIGN.md event plus the agent wake-up is present", () => {
    expect([...EVENT_TYPES].sort()).toEqual(
      [
        "entry.created",
        "entry.updated",
        "entry.deleted",
        "svid.issued",
        "svid.rotated",
        "bundle.updated",
        "bundle.published",
        "authority.prepared",
        "authority.activated",
        "authority.tainted",
        "authority.revoked",
        "agent.attested",
        "agent.banned",
        "agent.deleted",
        "pod.registered",
        "pod.deregistered",
        "config.updated",
        "agent.wakeup",
      ].sort(),
    );
  });

  it.each(EVENT_TYPES)("catalog – %s has subject, ce-type and message by convention", (type) => {
    const def = EVENT_CATALOG[type];
    expect(def.type).toBe(type);
    expect(def.ceType).toBe(`io.meshid.${type}.v1`);
    expect(def.subject).toBe(`meshid.v1.${type}`);
    expect(def.messageName).toMatch(/^meshid\.events\.v1\.[A-Z][A-Za-z]+$/);
    expect(eventTypeFromCeType(def.ceType)).toBe(type);
    expect(isEventType(type)).toBe(true);
  });

  it("catalog – only agent.wakeup is per-agent", () => {
    expect(EVENT_TYPES.filter((t) => EVENT_CATALOG[t].perAgent)).toEqual(["agent.wakeup"]);
  });

  it("catalog – codecs round-trip protobuf JSON", () => {
    const codec = EVENT_CATALOG["svid.issued"].codec;
    const payload = {
      entryId: "e1",
      spiffeId: { trustDomain: "example.org", path: "/ns/a/sa/b" },
      serial: "0a1b",
      expiresAt: new Date("2026-01-01T00:00:00.000Z"),
      agentId: "spiffe://example.org/spire/agent/x",
    };
    const json = codec.toJSON(payload);
    expect(json).toEqual({ ...payload, expiresAt: "2026-01-01T00:00:00.000Z" });
    expect(codec.fromJSON(json)).toEqual(payload);
  });

  it("catalog – unknown keys and ce-types are not events", () => {
    expect(isEventType("entry.exploded")).toBe(false);
    expect(isEventType("toString")).toBe(false);
    expect(eventTypeFromCeType("io.meshid.entry.created.v2")).toBeUndefined();
  });
});
