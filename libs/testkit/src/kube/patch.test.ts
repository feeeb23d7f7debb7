import { isMeshidError } from "@meshid/errors";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from "./patch";
import type { JsonValue } from "./types";

describe("merge patch", () => {
  it("merge patch – merges objects, deletes with null, replaces arrays, leaves the input alone", () => {
    const target = { a: 1, b: { c: 2, d: 3 }, list: [1, 2] };
    const result = applyMergePatch(target, { b: { c: null, e: 4 }, list: [9], f: "x" });
    expect(result).toEqual({ a: 1, b: { d: 3, e: 4 }, list: [9], f: "x" });
    expect(target).toEqual({ a: 1, b: { c: 2, d: 3 }, list: [1, 2] });
  });

  it("merge patch – a non-object patch replaces the document", () => {
    expect(applyMergePatch({ a: 1 }, [1])).toEqual([1]);
  });
});

describe("strategic merge patch", () => {
  const pod: JsonValue = {
    metadata: { finalizers: ["a"], labels: { x: "1" } },
    spec: {
      containers: [
        { name: "app", image: "v1", env: [{ name: "A", value: "1" }] },
        { name: "proxy", image: "nginx" },
      ],
      tolerations: [{ key: "t" }],
    },
    status: { conditions: [{ type: "Ready", status: "False" }] },
  };

  it("strategic merge patch – merges containers and env by name and conditions by type", () => {
    const result = applyStrategicMergePatch(pod, {
      spec: { containers: [{ name: "app", image: "v2", env: [{ name: "B", value: "2" }] }] },
      status: {
        conditions: [
          { type: "Ready", status: "True" },
          { type: "Scheduled", status: "True" },
        ],
      },
    });
    expect(result).toMatchObject({
      spec: {
        containers: [
          {
            name: "app",
            image: "v2",
            env: [
              { name: "A", value: "1" },
              { name: "B", value: "2" },
            ],
          },
          { name: "proxy", image: "nginx" },
        ],
      },
      status: {
        conditions: [
          { type: "Ready", status: "True" },
          { type: "Scheduled", status: "True" },
        ],
      },
    });
  });

  it("strategic merge patch – $patch: delete removes an item, finalizers union, other lists replace", () => {
    const result = applyStrategicMergePatch(pod, {
      metadata: { finalizers: ["b", "a"] },
      spec: { containers: [{ name: "proxy", $patch: "delete" }], tolerations: [{ key: "u" }] },
    }) as {
      metadata: { finalizers: string[] };
      spec: { containers: unknown[]; tolerations: unknown[] };
    };
    expect(result.metadata.finalizers).toEqual(["a", "b"]);
    expect(result.spec.containers).toHaveLength(1);
    expect(result.spec.tolerations).toEqual([{ key: "u" }]);
  });
});

describe("json patch", () => {
  const doc: JsonValue = { metadata: { labels: { a: "1" } }, items: ["x", "y"], "k/e~y": 1 };

  it("json patch – add, remove, replace, move, copy and test", () => {
    const result = applyJsonPatch(doc, [
      { op: "test", path: "/metadata/labels/a", value: "1" },
      { op: "add", path: "/metadata/labels/b", value: "2" },
      { op: "replace", path: "/metadata/labels/a", value: "3" },
      { op: "add", path: "/items/-", value: "z" },
      { op: "add", path: "/items/0", value: "w" },
      { op: "remove", path: "/items/1" },
      { op: "copy", from: "/metadata/labels/b", path: "/copied" },
      { op: "move", from: "/k~1e~0y", path: "/moved" },
    ]);
    expect(result).toEqual({
      metadata: { labels: { a: "3", b: "2" } },
      items: ["w", "y", "z"],
      copied: "2",
      moved: 1,
    });
  });

  it("json patch – a failed test or missing path rejects the whole patch", () => {
    const attempt = (ops: unknown) => {
      try {
        applyJsonPatch(doc, ops);
        return undefined;
      } catch (err) {
        return err;
      }
    };
    expect(
      isMeshidError(
        attempt([{ op: "test", path: "/items/0", value: "nope" }]),
        "kube.patch.test_failed",
      ),
    ).toBe(true);
    expect(
      isMeshidError(
        attempt([{ op: "remove", path: "/metadata/missing" }]),
        "kube.patch.missing_path",
      ),
    ).toBe(true);
    expect(
      isMeshidError(attempt([{ op: "replace", path: "/items/5", value: 1 }]), "kube.patch.invalid"),
    ).toBe(true);
    expect(isMeshidError(attempt({ op: "add" }), "kube.patch.invalid")).toBe(true);
    expect(doc).toEqual({ metadata: { labels: { a: "1" } }, items: ["x", "y"], "k/e~y": 1 });
  });
});
