import { isMeshidError } from "@meshid/errors";
import { parseEntryFile } from "./entry-file";

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isMeshidError(err, "meshctl.usage")) return err.message;
    throw err;
  }
  throw new Error("expected a usage error");
}

describe("entry files", () => {
  test("parseEntryFile – YAML list with every field", () => {
    const entries = parseEntryFile(
      [
        "- spiffeId: spiffe://example.org/ns/a/sa/b",
        "  parentId: spiffe://example.org/agent",
        "  selectors: [k8s:ns:a, k8s:sa:b]",
        "  ttl: 1h30m",
        "  dnsNames: [b.a.svc]",
        "  admin: true",
        "  hint: h",
        "  owner: ops",
      ].join("\n"),
      "entries.yaml",
    );
    expect(entries).toEqual([
      expect.objectContaining({
        spiffeId: { trustDomain: "example.org", path: "/ns/a/sa/b" },
        parentId: { trustDomain: "example.org", path: "/agent" },
        selectors: [
          { type: "k8s", value: "ns:a" },
          { type: "k8s", value: "sa:b" },
        ],
        x509SvidTtlSeconds: 5400,
        dnsNames: ["b.a.svc"],
        admin: true,
        hint: "h",
        owner: "ops",
      }),
    ]);
  });

  test("parseEntryFile – JSON { entries } with defaults", () => {
    const [e] = parseEntryFile(
      JSON.stringify({
        entries: [
          {
            spiffeId: "spiffe://example.org/x",
            parentId: "spiffe://example.org/p",
            selectors: ["unix:uid:1"],
          },
        ],
      }),
      "e.json",
    );
    expect(e).toEqual(
      expect.objectContaining({ x509SvidTtlSeconds: 0, dnsNames: [], admin: false }),
    );
  });

  test("parseEntryFile – every bad field of every entry is reported at once", () => {
    const message = usageMessage(() =>
      parseEntryFile(
        [
          "- spiffeId: http://example.org/x",
          "  parentId: spiffe://example.org/p",
          "  selectors: [k8s:bogus:1]",
          "- spiffeId: spiffe://example.org/y",
          "  parentId: spiffe://example.org/p",
          "  selectors: [unix:uid:1]",
          "  ttl: forever",
        ].join("\n"),
        "bad.yaml",
      ),
    );
    expect(message).toContain("entries[0].spiffeId");
    expect(message).toContain("entries[0].selectors");
    expect(message).toContain("entries[1].ttl");
  });

  test("parseEntryFile – wrong shape, unknown keys, empty lists and bad YAML are usage errors", () => {
    expect(usageMessage(() => parseEntryFile("a: 1", "f"))).toContain("must be a list");
    expect(
      usageMessage(() =>
        parseEntryFile(
          "- { spiffeId: spiffe://e.org/x, parentId: spiffe://e.org/p, selectors: [unix:uid:1], colour: red }",
          "f",
        ),
      ),
    ).toContain("colour");
    expect(usageMessage(() => parseEntryFile("[]", "f"))).toContain("no entries");
    expect(usageMessage(() => parseEntryFile("- [", "f"))).toContain("not valid YAML");
  });
});
