import { createSelectorIndex } from "./selector-index";

interface Item {
  readonly id: string;
}

function ids(items: ReadonlySet<Item>): string[] {
  return [...items].map((i) => i.id).sort();
}

describe("selector index", () => {
  const a = { id: "a" };
  const b = { id: "b" };
  const c = { id: "c" };
  const d = { id: "d" };

  it("selector index – smallest bucket holds every item with all keys", () => {
    const index = createSelectorIndex<Item>();
    index.add(a, ["unix:uid:1", "unix:gid:1"]);
    index.add(b, ["unix:uid:1"]);
    index.add(c, ["unix:uid:2", "unix:gid:1"]);
    const candidates = index.smallest(["unix:uid:1", "unix:gid:1"]);
    expect(candidates.size).toBe(2);
    expect(candidates.has(a)).toBe(true);
    index.add(d, ["unix:gid:7"]);
    expect(ids(index.smallest(["unix:uid:1", "unix:gid:7"]))).toEqual(["d"]);
    expect(ids(index.smallest(["unix:uid:1"]))).toEqual(["a", "b"]);
    expect(index.smallest(["unix:uid:9", "unix:uid:1"]).size).toBe(0);
    expect(index.smallest([]).size).toBe(0);
    expect(ids(index.get("unix:gid:1"))).toEqual(["a", "c"]);
  });

  it("selector index – removal shrinks buckets back to one item, then drops them", () => {
    const index = createSelectorIndex<Item>();
    index.add(a, ["k8s:ns:x"]);
    index.add(a, ["k8s:ns:x"]);
    index.add(b, ["k8s:ns:x"]);
    expect(ids(index.get("k8s:ns:x"))).toEqual(["a", "b"]);
    index.remove(a, ["k8s:ns:x"]);
    expect(ids(index.get("k8s:ns:x"))).toEqual(["b"]);
    index.remove(a, ["k8s:ns:x"]);
    index.remove(b, ["k8s:ns:x"]);
    expect(index.get("k8s:ns:x").size).toBe(0);
  });
});
