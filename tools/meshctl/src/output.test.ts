import { formatRelative, formatTime, renderDetails, renderTable } from "./output";

describe("output", () => {
  test("renderTable – upper-case headers, padded columns, no trailing spaces", () => {
    const text = renderTable(
      [
        { header: "id", value: (r: { id: string; name: string }) => r.id },
        { header: "name", value: (r: { id: string; name: string }) => r.name },
      ],
      [
        { id: "a", name: "first" },
        { id: "long-id", name: "" },
      ],
    );
    expect(text).toBe("ID       NAME\na        first\nlong-id\n");
  });

  test("renderTable – an empty list prints only the header", () => {
    expect(renderTable([{ header: "spiffe id", value: (r: string) => r }], [])).toBe("SPIFFE ID\n");
  });

  test("renderDetails – aligned keys, lists one per line, empty values as -", () => {
    expect(
      renderDetails([
        ["id", "x"],
        ["selectors", ["k8s:ns:a", "k8s:sa:b"]],
        ["hint", ""],
        ["dns names", []],
      ]),
    ).toBe(
      "id:         x\nselectors:  k8s:ns:a\n            k8s:sa:b\nhint:       -\ndns names:  -\n",
    );
  });

  test("formatTime – RFC 3339 UTC without milliseconds; - when absent", () => {
    expect(formatTime(new Date("2026-01-02T03:04:05.678Z"))).toBe("2026-01-02T03:04:05Z");
    expect(formatTime(undefined)).toBe("-");
    expect(formatTime(new Date(Number.NaN))).toBe("-");
  });

  test("formatRelative – short durations before and after now", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    expect(formatRelative(new Date("2026-01-01T00:00:30Z"), now)).toBe("in 30s");
    expect(formatRelative(new Date("2026-01-01T00:59:00Z"), now)).toBe("in 59m");
    expect(formatRelative(new Date("2025-12-31T21:00:00Z"), now)).toBe("3h ago");
    expect(formatRelative(new Date("2026-01-11T00:00:00Z"), now)).toBe("in 10d");
    expect(formatRelative(undefined, now)).toBe("-");
  });
});
