import { MeshidError, isMeshidError } from "./meshid-error";

describe("MeshidError", () => {
  it("errors – carries kind, code, details and cause", () => {
    const cause = new Error("disk full");
    const err = new MeshidError("unavailable", "store.write", "cannot write entry", {
      cause,
      details: { table: "entries" },
    });
    expect(err).toBeInstanceOf(Error);
    expect(err.kind).toBe("unavailable");
    expect(err.code).toBe("store.write");
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual({ table: "entries" });
    expect(Object.isFrozen(err.details)).toBe(true);
  });

  it("errors – isMeshidError matches by code", () => {
    const err = new MeshidError("not_found", "entry.not_found", "no such entry");
    expect(isMeshidError(err)).toBe(true);
    expect(isMeshidError(err, "entry.not_found")).toBe(true);
    expect(isMeshidError(err, "other")).toBe(false);
    expect(isMeshidError(new Error("x"))).toBe(false);
  });
});
