import { isMeshidError } from "@meshid/errors";
import { parseSince, subjectForFilter, summarizeEventData } from "./events";

function usage(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    return isMeshidError(err, "meshctl.usage");
  }
}

describe("events tail filters", () => {
  test("subjectForFilter – nothing, kind, type, wildcard subject", () => {
    expect(subjectForFilter(undefined)).toBe("meshid.v1.>");
    expect(subjectForFilter("entry")).toBe("meshid.v1.entry.>");
    expect(subjectForFilter("svid.rotated")).toBe("meshid.v1.svid.rotated");
    expect(subjectForFilter("agent.wakeup")).toBe("meshid.v1.agent.wakeup.*");
    expect(subjectForFilter("meshid.v1.authority.*")).toBe("meshid.v1.authority.*");
    expect(subjectForFilter("meshid.v1.config.updated")).toBe("meshid.v1.config.updated");
  });

  test("subjectForFilter – unknown kinds and types are usage errors", () => {
    expect(usage(() => subjectForFilter("entries"))).toBe(true);
    expect(usage(() => subjectForFilter("entry.exploded"))).toBe(true);
    expect(usage(() => subjectForFilter("meshid.v1.a b"))).toBe(true);
  });

  test("parseSince – a duration back from now, or an RFC 3339 time", () => {
    const now = new Date("2026-01-01T12:00:00Z");
    expect(parseSince("10m", now).toISOString()).toBe("2026-01-01T11:50:00.000Z");
    expect(parseSince("1h30m", now).toISOString()).toBe("2026-01-01T10:30:00.000Z");
    expect(parseSince("2025-12-31T23:00:00Z", now).toISOString()).toBe("2025-12-31T23:00:00.000Z");
    expect(usage(() => parseSince("yesterday", now))).toBe(true);
    expect(usage(() => parseSince("2026-13-45T99:00:00Z", now))).toBe(true);
  });

  test("summarizeEventData – key=value pairs, SPIFFE IDs as URIs, empty fields left out", () => {
    expect(
      summarizeEventData({
        entryId: "e1",
        spiffeId: { trustDomain: "example.org", path: "/web" },
        owner: "",
        revision: "7",
        x509AuthorityIds: ["a", "b"],
        rotateNow: false,
      }),
    ).toBe("entryId=e1 spiffeId=spiffe://example.org/web revision=7 x509AuthorityIds=a,b");
    expect(summarizeEventData({ note: "x".repeat(300) })).toHaveLength(200);
  });
});
