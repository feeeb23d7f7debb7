import { diffEntries } from "./entry-diff";
import type { CurrentEntry, DesiredEntry } from "./types";

function desired(
  spiffeId: string,
  podUid: string,
  extra: Partial<DesiredEntry> = {},
): DesiredEntry {
  return {
    spiffeId,
    parentId: "spiffe://td/meshid/agent/k8s_psat/c/n1",
    podUid,
    dnsNames: ["a", "b"],
    ttlSeconds: 0,
    hint: "",
    podName: "p",
    namespace: "ns",
    ...extra,
  };
}

function current(id: string, d: DesiredEntry, extra: Partial<CurrentEntry> = {}): CurrentEntry {
  return {
    id,
    spiffeId: d.spiffeId,
    parentId: d.parentId,
    podUid: d.podUid,
    selectors: [`k8s:pod-uid:${d.podUid}`],
    dnsNames: [...d.dnsNames].reverse(),
    ttlSeconds: d.ttlSeconds,
    hint: d.hint,
    ...extra,
  };
}

describe("diffEntries", () => {
  it("entry diff – creates the missing, updates the changed, deletes the rest", () => {
    const same = desired("spiffe://td/a", "u1");
    const moved = desired("spiffe://td/b", "u2", {
      parentId: "spiffe://td/meshid/agent/k8s_psat/c/n2",
    });
    const fresh = desired("spiffe://td/c", "u3");
    const diff = diffEntries(
      [same, moved, fresh],
      [
        current("1", same),
        current("2", { ...moved, parentId: "spiffe://td/old" }),
        current("3", desired("spiffe://td/gone", "u9")),
        current("4", same), // duplicate of 1
        current("5", same, { podUid: undefined, selectors: ["unix:uid:0"] }),
      ],
    );
    expect(diff.create).toEqual([fresh]);
    expect(diff.update).toEqual([{ id: "2", desired: moved }]);
    expect(diff.delete.map((e) => e.id).sort()).toEqual(["3", "4", "5"]);
  });

  it("entry diff – DNS names, TTL, hint and extra selectors count as changes", () => {
    const d = desired("spiffe://td/a", "u1");
    for (const change of [
      { dnsNames: ["a"] },
      { ttlSeconds: 60 },
      { hint: "h" },
      { selectors: ["k8s:ns:x", "k8s:pod-uid:u1"] },
    ]) {
      expect(diffEntries([d], [current("1", d, change)]).update).toHaveLength(1);
    }
    expect(diffEntries([d], [current("1", d)])).toEqual({ create: [], update: [], delete: [] });
  });
});
