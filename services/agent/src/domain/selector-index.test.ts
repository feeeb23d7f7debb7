import { createSelectorIndex } from "./selector-index";

describe("selector index", () => {
  it("selector index – smallest bucket holds every item with all keys", () => {
    const index = createSelectorIndex<string>();
    index.add("a", ["unix:uid:1", "unix:gid:1"]);
    index.add("b", ["unix:uid:1"]);
    index.add("c", ["unix:uid:2", "unix:gid:1"]);
    const candidates = index.smallest(["unix:uid:1", "unix:gid:1"]);
    expect(candidates.size).toBe(2);
    expect(candidates.has("a")).toBe(true);
    index.add("d", ["unix:gid:7"]);
    expect([...index.smallest(["unix:uid:1", "unix:gid:7"])]).toEqual(["d"]);
    expect([...index.smallest(["unix:uid:1"])].sort()).toEqual(["a", "b"]);
    expect(index.smallest(["unix:uid:9", "unix:uid:1"]).size).toBe(0);
    expect(index.smallest([]).size).toBe(0);
  });

  it("selector index – removal drops the item and empty buckets", () => {
    const index = createSelectorIndex<string>();
    index.add("a", ["k8s:ns:x"]);
    index.remove("a", ["k8s:ns:x"]);
    expect(index.get("k8s:ns:x").size).toBe(0);
  });
});
