// Pod security: non-root (the agent's one-shot directory setup aside), read-only root
// filesystem, no privilege escalation, every capability dropped, host access only where the
// agent needs it; resources and disruption budgets; no private key in any Secret or ConfigMap.
import { helmTemplate } from "../src/helm";
import {
  CHART_CASES,
  SERVICE_CHARTS,
  chartDir,
  renderChart,
  type ValueSetName,
} from "../src/charts";
import { allContainers, workloadsOf, type Container, type PodSpec } from "../src/manifests";

const cases = CHART_CASES;
/** The CA's values sets (the restricted level and the data dir are checked for each). */
const caValueSets: readonly ValueSetName[] = ["default", "ha"];
/** The charts that run the CA, with their values sets. */
const caCases = CHART_CASES.filter(
  (c) => c.chart.name === "ca" || c.chart.name === "control-plane",
);

/** The agent's init container prepares host directories as root with these capabilities only. */
const AGENT_INIT = { name: "host-dirs", capabilities: ["CHOWN", "FOWNER"] };

function runsAsNonRoot(pod: PodSpec, container: Container): boolean {
  const c = container.securityContext ?? {};
  const p = pod.securityContext ?? {};
  const nonRoot = c.runAsNonRoot ?? p.runAsNonRoot;
  const uid = c.runAsUser ?? p.runAsUser;
  return nonRoot === true && uid !== 0;
}

describe("security – containers", () => {
  test.each(cases)(
    "$chart.name – read-only root, no escalation, ALL capabilities dropped ($values values)",
    async ({ chart, values }) => {
      const [workload] = workloadsOf(await renderChart(chart.name, values));
      const pod = workload!.pod;
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      for (const container of allContainers(pod)) {
        const sc = container.securityContext ?? {};
        expect([container.name, sc.readOnlyRootFilesystem]).toEqual([container.name, true]);
        expect([container.name, sc.allowPrivilegeEscalation]).toEqual([container.name, false]);
        expect([container.name, sc.privileged ?? false]).toEqual([container.name, false]);
        expect(sc.capabilities?.drop).toEqual(["ALL"]);
        if (chart.name === "agent" && container.name === AGENT_INIT.name) {
          expect(sc.capabilities?.add).toEqual(AGENT_INIT.capabilities);
          expect(sc.runAsUser).toBe(0);
        } else {
          expect(sc.capabilities?.add ?? []).toEqual([]);
          expect([container.name, runsAsNonRoot(pod, container)]).toEqual([container.name, true]);
        }
      }
    },
  );

  test.each(cases)(
    "$chart.name – every container has requests and a memory limit ($values values)",
    async ({ chart, values }) => {
      const [workload] = workloadsOf(await renderChart(chart.name, values));
      for (const container of allContainers(workload!.pod)) {
        expect(container.resources?.requests?.cpu).toBeDefined();
        expect(container.resources?.requests?.memory).toBeDefined();
        expect(container.resources?.limits?.memory).toBeDefined();
      }
    },
  );
});

describe("security – host access", () => {
  test.each(cases)(
    "$chart.name – no host network or IPC; host PID and writable host paths only for the agent ($values values)",
    async ({ chart, values }) => {
      const [workload] = workloadsOf(await renderChart(chart.name, values));
      const pod = workload!.pod;
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.hostIPC ?? false).toBe(false);
      expect(pod.hostPID ?? false).toBe(chart.name === "agent");
      const hostVolumes = (pod.volumes ?? []).filter((v) => v.hostPath !== undefined);
      if (chart.name === "agent") {
        expect(hostVolumes.map((v) => [v.name, v.hostPath?.path])).toEqual([
          ["agent-socket", "/run/meshid/agent"],
          ["data", "/var/lib/meshid/agent"],
        ]);
        return;
      }
      if (chart.name === "ca") {
        expect(hostVolumes).toEqual([]);
        return;
      }
      // The other services only read the agent's socket directory (their own SVID).
      expect(hostVolumes.map((v) => [v.name, v.hostPath?.path])).toEqual([
        ["agent-socket", "/run/meshid/agent"],
      ]);
      for (const container of allContainers(pod)) {
        for (const mount of container.volumeMounts ?? []) {
          if (mount.name === "agent-socket") expect(mount.readOnly).toBe(true);
        }
      }
    },
  );
});

describe("security – Pod Security levels", () => {
  test.each(caValueSets)(
    "ca – the CA pod meets the restricted Pod Security level (%s values)",
    async (values) => {
      const [workload] = workloadsOf(await renderChart("ca", values));
      const pod = workload!.pod;
      const allowed = [
        "configMap",
        "emptyDir",
        "projected",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "csi",
        "ephemeral",
      ];
      for (const volume of pod.volumes ?? []) {
        const types = Object.keys(volume).filter((k) => k !== "name");
        expect([volume.name, types.every((k) => allowed.includes(k))]).toEqual([volume.name, true]);
      }
      expect(pod.securityContext?.seccompProfile?.type).toBe("RuntimeDefault");
      expect(pod.hostPID ?? false).toBe(false);
      for (const c of allContainers(pod)) {
        expect(runsAsNonRoot(pod, c)).toBe(true);
        expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
      }
    },
  );
});

describe("security – the CA's data", () => {
  test.each(caCases)(
    "$chart.name – the CA's data on a per-replica volume, in a 0700 directory ($values values)",
    async ({ chart, values }) => {
      const [workload] = workloadsOf(await renderChart(chart.name, values));
      expect(workload!.volumeClaimTemplates.map((t) => t.metadata.name)).toEqual(["data"]);
      // fsGroup makes the volume root group-owned; only the root is re-owned, and the data dir
      // below it is made 0700 (files 0600) before the CA starts.
      expect(workload!.pod.securityContext?.fsGroupChangePolicy).toBe("OnRootMismatch");
      const init = workload!.pod.initContainers?.find((c) => c.name === "data-dir");
      const script = (init?.command ?? []).join(" ");
      expect(script).toContain("chmod 0700 /var/lib/meshid/ca");
      expect(script).toContain("chmod go-rwx");
      expect(init?.volumeMounts).toEqual([{ name: "data", mountPath: "/var/lib/meshid" }]);
    },
  );

  test("security – no Secret or ConfigMap of any chart holds a private key", async () => {
    const all = [
      ...CHART_CASES.map((c) => ({ chart: c.chart.name, values: c.values })),
      { chart: "meshid-crds", values: "default" as const },
    ];
    for (const { chart, values } of all) {
      const objects =
        chart === "meshid-crds"
          ? await helmTemplate({ chart: chartDir(chart), includeCrds: true })
          : await renderChart(chart, values);
      for (const obj of objects.filter((o) => o.kind === "Secret" || o.kind === "ConfigMap")) {
        const data = { ...(obj.data as object), ...(obj.stringData as object) } as Record<
          string,
          string
        >;
        for (const [key, value] of Object.entries(data)) {
          const text =
            obj.kind === "Secret" && obj.data !== undefined
              ? Buffer.from(value, "base64").toString()
              : value;
          expect([obj.metadata.name, key, /PRIVATE KEY/.test(text)]).toEqual([
            obj.metadata.name,
            key,
            false,
          ]);
        }
      }
    }
  });
});

describe("security – scaling", () => {
  test.each(cases)(
    "$chart.name – a PodDisruptionBudget exactly when more than one replica runs ($values values)",
    async ({ chart, values }) => {
      const objects = await renderChart(chart.name, values);
      const [workload] = workloadsOf(objects);
      const pdbs = objects.filter((o) => o.kind === "PodDisruptionBudget");
      const replicas = workload!.replicas;
      if (replicas === undefined || replicas <= 1) {
        expect(pdbs).toEqual([]);
        return;
      }
      expect(pdbs).toHaveLength(1);
      const spec = pdbs[0]!.spec as {
        maxUnavailable: number;
        selector: { matchLabels: Record<string, string> };
      };
      expect(spec.maxUnavailable).toBe(1);
      expect(workload!.podLabels).toMatchObject(spec.selector.matchLabels);
    },
  );

  test("scaling – replicas per service in the default, HA and small values", async () => {
    const replicas = async (values: ValueSetName): Promise<Record<string, number | undefined>> => {
      const out: Record<string, number | undefined> = {};
      for (const chart of SERVICE_CHARTS.filter((c) => c.valueSets.includes(values))) {
        out[chart.name] = workloadsOf(await renderChart(chart.name, values))[0]!.replicas;
      }
      return out;
    };
    expect(await replicas("default")).toEqual({
      ca: 1,
      agent: undefined,
      registrar: 2,
      "bundle-notifier": 2,
      "proxy-config": 2,
    });
    expect(await replicas("ha")).toEqual({
      ca: 3,
      agent: undefined,
      registrar: 3,
      "bundle-notifier": 3,
      "proxy-config": 3,
    });
    expect(await replicas("small")).toEqual({ agent: undefined, "control-plane": 1 });
  });
});
