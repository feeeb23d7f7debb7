// Every chart lints and renders with the default and the HA values, and every rendered object
// is valid against the Kubernetes schemas (kubernetes-models, offline).
import { helmLint, helmTemplate } from "../src/helm";
import { CHART_CASES, SERVICE_CHARTS, VALUE_SETS, chartDir, renderChart } from "../src/charts";
import { validateKubeObject, workloadsOf } from "../src/manifests";
import { unknownFields } from "../src/strict-fields";
import { TEST_NAMESPACE } from "../src/paths";

const cases = CHART_CASES;

describe("charts – lint", () => {
  test.each(cases)(
    "$chart.name – helm lint --strict with $values values",
    async ({ chart, values }) => {
      const result = await helmLint(chartDir(chart.name), VALUE_SETS[values]);
      expect(result.output).not.toMatch(/\[ERROR\]|\[WARNING\]/);
      expect(result.ok).toBe(true);
    },
  );

  test("meshid-crds – helm lint --strict", async () => {
    const result = await helmLint(chartDir("meshid-crds"));
    expect(result.output).not.toMatch(/\[ERROR\]/);
    expect(result.ok).toBe(true);
  });
});

describe("charts – rendered objects", () => {
  test("charts – the offline validation refuses a broken object and an unknown kind", () => {
    const broken = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "broken" },
      spec: {
        selector: {},
        template: { spec: { containers: [{ name: "x", ports: [{ containerPort: "http" }] }] } },
      },
    };
    expect(() => validateKubeObject(broken)).toThrow(/Deployment\/broken: .*containerPort/);
    expect(() =>
      validateKubeObject({ apiVersion: "example.io/v1", kind: "Gadget", metadata: { name: "g" } }),
    ).toThrow(/no schema/);
  });

  test.each(cases)(
    "$chart.name – every object with $values values is a valid Kubernetes object",
    async ({ chart, values }) => {
      const objects = await renderChart(chart.name, values);
      expect(objects.length).toBeGreaterThan(0);
      for (const obj of objects) validateKubeObject(obj);
    },
  );

  test.each(cases)(
    "$chart.name – no object has a field its Kubernetes type does not declare ($values values)",
    async ({ chart, values }) => {
      for (const obj of await renderChart(chart.name, values)) {
        expect([`${obj.kind}/${obj.metadata.name}`, unknownFields(obj)]).toEqual([
          `${obj.kind}/${obj.metadata.name}`,
          [],
        ]);
      }
    },
  );

  test("charts – the unknown-field check finds misspelt fields at any depth", () => {
    const deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "d", labelz: {} },
      spec: {
        template: {
          spec: {
            containers: [
              { name: "c", volumeMounts: [{ name: "v", mountPath: "/v", readonly: true }] },
            ],
          },
        },
      },
    };
    expect(unknownFields(deployment)).toEqual([
      "metadata.labelz",
      "spec.template.spec.containers[0].volumeMounts[0].readonly",
    ]);
  });

  test.each(cases)(
    "$chart.name – one $chart.workloadKind in the release namespace ($values values)",
    async ({ chart, values }) => {
      const objects = await renderChart(chart.name, values);
      const workloads = workloadsOf(objects);
      expect(workloads.map((w) => [w.object.kind, w.object.metadata.name])).toEqual([
        [chart.workloadKind, `meshid-${chart.name}`],
      ]);
      for (const obj of objects) {
        if (obj.kind.startsWith("Cluster")) expect(obj.metadata.namespace).toBeUndefined();
        else expect(obj.metadata.namespace).toBe(TEST_NAMESPACE);
      }
    },
  );

  test.each(cases)(
    "$chart.name – image ghcr.io/meshid/<service>:<appVersion> by default ($values values)",
    async ({ chart, values }) => {
      const [workload] = workloadsOf(await renderChart(chart.name, values));
      const main = workload!.pod.containers.find((c) => c.name === chart.name);
      expect(main?.image).toBe(`ghcr.io/meshid/${chart.name}:0.1.0`);
    },
  );

  test("charts – image registry, tag and repository can be overridden", async () => {
    const objects = await helmTemplate({
      chart: chartDir("registrar"),
      set: ["global.imageRegistry=registry.example/mesh", "global.imageTag=1.2.3"],
    });
    const [workload] = workloadsOf(objects);
    expect(workload!.pod.containers[0]!.image).toBe("registry.example/mesh/registrar:1.2.3");
    const own = await helmTemplate({
      chart: chartDir("agent"),
      set: ["agent.image.repository=mirror.example/agent", "agent.image.tag=dev"],
    });
    expect(workloadsOf(own)[0]!.pod.containers[0]!.image).toBe("mirror.example/agent:dev");
  });

  test.each(SERVICE_CHARTS)(
    "$name – scheduling, pull secrets, extra env and annotations render where they belong",
    async (chart) => {
      const s = chart.section;
      const objects = await helmTemplate({
        chart: chartDir(chart.name),
        set: [
          `${s}.nodeSelector.disk=ssd`,
          `${s}.tolerations[0].operator=Exists`,
          `${s}.priorityClassName=high`,
          `${s}.extraEnv[0].name=OTEL_EXPORTER_OTLP_ENDPOINT`,
          `${s}.extraEnv[0].value=http://otel:4318`,
          `${s}.podAnnotations.team=mesh`,
          "global.imagePullSecrets[0].name=regcred",
        ],
      });
      for (const obj of objects) validateKubeObject(obj);
      const [workload] = workloadsOf(objects);
      const pod = workload!.pod as unknown as Record<string, unknown>;
      expect(pod.nodeSelector).toEqual({ disk: "ssd" });
      expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
      expect(pod.priorityClassName).toBe("high");
      expect(pod.imagePullSecrets).toEqual([{ name: "regcred" }]);
      expect(workload!.podAnnotations.team).toBe("mesh");
      const main = workload!.pod.containers.find((c) => c.name === chart.name);
      expect(main?.env).toContainEqual({
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        value: "http://otel:4318",
      });
    },
  );

  test("ca – more than one replica without PostgreSQL is refused at render time", async () => {
    await expect(
      helmTemplate({ chart: chartDir("ca"), set: ["ca.replicaCount=2"] }),
    ).rejects.toThrow(/needs ca.datastore.type=postgres/);
    await expect(
      helmTemplate({ chart: chartDir("ca"), set: ["ca.datastore.type=postgres"] }),
    ).rejects.toThrow(/needs ca.datastore.postgres.existingSecret/);
  });
});
