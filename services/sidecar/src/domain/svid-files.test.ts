import { versionDirName, versionOfDirName } from "./svid-files";

describe("svid files", () => {
  it("svid files – version directory names round-trip and ignore everything else", () => {
    expect(versionDirName("svid", 7)).toBe("svid-7");
    expect(versionOfDirName("svid", "svid-7")).toBe(7);
    for (const name of ["svid", "svid-", "svid-x", ".svid.tmp-3", "other-3", "svid-1.bak"]) {
      expect(versionOfDirName("svid", name)).toBeUndefined();
    }
  });
});
