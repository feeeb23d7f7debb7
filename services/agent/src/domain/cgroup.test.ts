import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCgroupFile } from "./cgroup";

const FIXTURES = join(__dirname, "../../test/fixtures/cgroup");
const expected = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as {
  pods: Record<string, { podUid: string; containerId: string }>;
  nonPods: Record<string, { podUid?: string }>;
};

describe("parseCgroupFile", () => {
  it("cgroup – every fixture has an expectation (3 runtimes × 2 drivers × 2 versions)", () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith(".txt"));
    expect(files.sort()).toEqual(
      [...Object.keys(expected.pods), ...Object.keys(expected.nonPods)].sort(),
    );
    expect(Object.keys(expected.pods)).toHaveLength(12);
  });

  it.each(Object.entries(expected.pods))(
    "cgroup – %s names its pod and container",
    (file, want) => {
      expect(parseCgroupFile(readFileSync(join(FIXTURES, file), "utf8"))).toEqual(want);
    },
  );

  it.each(Object.entries(expected.nonPods))("cgroup – %s is not a container", (file, want) => {
    const info = parseCgroupFile(readFileSync(join(FIXTURES, file), "utf8"));
    expect(info.containerId).toBeUndefined();
    expect(info).toEqual(want);
  });

  const ID = "a".repeat(64);
  it.each([
    [
      "systemd underscores become dashes",
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_0000_4000_8000_00000000abcd.slice/cri-containerd-${ID}.scope`,
      { podUid: "0a1b2c3d-0000-4000-8000-00000000abcd", containerId: ID },
    ],
    [
      "a sub-cgroup inside the container",
      `0::/kubepods/burstable/pod0a1b2c3d-0000-4000-8000-00000000abcd/${ID}/init`,
      { podUid: "0a1b2c3d-0000-4000-8000-00000000abcd", containerId: ID },
    ],
    [
      "kind's nested kubelet slice",
      `0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod0a1b2c3d_0000_4000_8000_00000000abcd.slice/cri-containerd-${ID}.scope`,
      { podUid: "0a1b2c3d-0000-4000-8000-00000000abcd", containerId: ID },
    ],
    [
      "a docker container outside kubernetes",
      `0::/system.slice/docker-${ID}.scope`,
      { containerId: ID },
    ],
    [
      "a 63-hex run is no container ID",
      `0::/kubepods/pod0a1b2c3d-0000-4000-8000-00000000abcd/${"a".repeat(63)}`,
      { podUid: "0a1b2c3d-0000-4000-8000-00000000abcd" },
    ],
    ["a 65-hex run is no container ID", `0::/docker/${"a".repeat(65)}`, {}],
    ["garbage", "not a cgroup file", {}],
    ["empty", "", {}],
  ])("cgroup – %s", (_name, text, want) => {
    expect(parseCgroupFile(text)).toEqual(want);
  });
});
