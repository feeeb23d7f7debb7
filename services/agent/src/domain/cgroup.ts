/** What a process's `/proc/<pid>/cgroup` says about the container and pod it runs in. */
export interface CgroupInfo {
  /** Pod UID (lowercase, with `-`), when the path holds a `pod<uid>` segment. */
  readonly podUid?: string;
  /** 64-hex container ID, when the process runs in a container. None = not a pod. */
  readonly containerId?: string;
}

// `pod<uid>` as cgroupfs (`pod1234-…`) and systemd (`kubepods-burstable-pod1234_….slice`) write it.
const POD_SEGMENT =
  /(?:^|[-_])pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;
// A container's own cgroup: `<64hex>` (cgroupfs: containerd, docker), `crio-<64hex>`,
// `cri-containerd-<64hex>.scope`, `crio-<64hex>.scope`, `docker-<64hex>.scope`, `libpod-…`.
const CONTAINER_SEGMENT = /^(?:[a-z][a-z0-9-]*-)?([0-9a-f]{64})(?:\.scope)?$/;
// cri-o's monitor process runs next to (not inside) the container.
const CONMON_SEGMENT = /^crio-conmon-/;

function parsePath(path: string): CgroupInfo {
  const segments = path.split("/").filter((s) => s !== "");
  let podUid: string | undefined;
  let podIndex = -1;
  segments.forEach((segment, i) => {
    const m = POD_SEGMENT.exec(segment.toLowerCase());
    if (m !== null) {
      podUid = m[1]!.replace(/_/g, "-");
      podIndex = i;
    }
  });
  // The container cgroup is the first container-shaped segment below the pod (a process may sit
  // in a sub-cgroup of its container, e.g. v2 `…/<id>/init`).
  for (let i = podIndex + 1; i < segments.length; i++) {
    const segment = segments[i]!;
    if (CONMON_SEGMENT.test(segment)) break;
    const m = CONTAINER_SEGMENT.exec(segment);
    if (m !== null) {
      return podUid === undefined ? { containerId: m[1]! } : { podUid, containerId: m[1]! };
    }
  }
  return podUid === undefined ? {} : { podUid };
}

/**
 * Parses the text of `/proc/<pid>/cgroup` into the pod UID and container ID, for cgroup v1
 * (`<id>:<controllers>:<path>` per hierarchy) and v2 (`0::<path>`), the cgroupfs and systemd
 * drivers, and containerd, cri-o and docker layouts, e.g.
 * `/kubepods/burstable/pod<uid>/<64hex>` or
 * `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<64hex>.scope`.
 * systemd's `_` in the pod UID becomes `-`. Lines that name a container win over those that do
 * not, lines with a pod UID over those without, then file order. A result without
 * `containerId` means the process is not in a container (so not in a pod).
 */
export function parseCgroupFile(text: string): CgroupInfo {
  let best: CgroupInfo = {};
  const score = (info: CgroupInfo): number =>
    (info.containerId === undefined ? 0 : 2) + (info.podUid === undefined ? 0 : 1);
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = first < 0 ? -1 : line.indexOf(":", first + 1);
    if (second < 0) continue;
    const info = parsePath(line.slice(second + 1).trim());
    if (score(info) > score(best)) best = info;
  }
  return best;
}
