// deploy/sidecar/injection.yaml, the reference for injecting the sidecar: a valid Pod whose
// sidecar configuration loads with the sidecar's own loader, on the right volumes, pointing at
// the proxy-config chart's Service and the agent chart's socket.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@meshid/config";
import { loadSidecarConfig, type SidecarConfig } from "@meshid/sidecar/src/config";
import { renderChart } from "../src/charts";
import { parseManifests } from "../src/helm";
import {
  type PodSpec,
  findObject,
  mountFor,
  resolveEnv,
  validateKubeObject,
  workloadsOf,
} from "../src/manifests";
import { DEPLOY_DIR, TEST_NAMESPACE } from "../src/paths";
import { unknownFields } from "../src/strict-fields";
import { at, renderedServiceConfigs } from "../src/rendered-configs";

const [pod] = parseManifests(readFileSync(join(DEPLOY_DIR, "sidecar", "injection.yaml"), "utf8"));
const spec = pod!.spec as PodSpec;
const sidecar = spec.containers.find((c) => c.name === "meshid-sidecar")!;

function sidecarConfig(): SidecarConfig {
  try {
    return loadSidecarConfig({ env: resolveEnv(sidecar) });
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new Error(err.problems.map((p) => `${p.path}: ${p.message}`).join("; "));
    }
    throw err;
  }
}

describe("sidecar injection", () => {
  test("sidecar injection – the example is a valid Pod with the inject label", () => {
    validateKubeObject(pod!);
    expect(unknownFields(pod!)).toEqual([]);
    expect(pod!.metadata.labels?.["meshid.io/inject"]).toBe("true");
  });

  test("sidecar injection – the sidecar's configuration loads with its own schema", () => {
    const config = sidecarConfig();
    expect(config.workloadSocket).toBe("/run/meshid/agent/workload.sock");
    expect(config.pod).toEqual({ namespace: "meshid", name: "pod-0" });
    expect(config.proxyConfig).toMatchObject({ kind: "service" });
  });

  test("sidecar injection – it reaches the agent's socket and proxy-config's Service of the charts", async () => {
    const config = sidecarConfig();
    const agentObjects = await renderChart("agent", "default");
    const [agentConfig] = renderedServiceConfigs(agentObjects);
    expect(at(agentConfig!.file, "workloadApi.socketPath")).toBe(config.workloadSocket);
    const [agentWorkload] = workloadsOf(agentObjects);
    const hostDir = agentWorkload!.pod.volumes?.find((v) => v.name === "agent-socket")?.hostPath;
    const mount = mountFor(sidecar, config.workloadSocket);
    expect(mount?.readOnly).toBe(true);
    const volume = spec.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.hostPath?.path).toBe(hostDir?.path);

    const service = findObject(
      await renderChart("proxy-config", "default"),
      "Service",
      "meshid-proxy-config",
    );
    const grpc = (service.spec as { ports: { name: string; port: number }[] }).ports.find(
      (p) => p.name === "grpc",
    );
    expect(config.proxyConfig).toEqual({
      kind: "service",
      address: `meshid-proxy-config.${TEST_NAMESPACE}.svc:${grpc?.port}`,
    });
  });

  test("sidecar injection – SVID files in memory, NGINX state on a writable volume, probes on the ops port", () => {
    const config = sidecarConfig();
    const svid = mountFor(sidecar, config.svidDir);
    expect(spec.volumes?.find((v) => v.name === svid?.name)?.emptyDir).toMatchObject({
      medium: "Memory",
    });
    const nginx = mountFor(sidecar, config.nginx.prefix);
    expect(nginx?.readOnly ?? false).toBe(false);
    const ops = sidecar.ports?.find((p) => p.name === "meshid-ops")?.containerPort;
    expect(ops).toBe(config.ops.listen.port);
    expect(sidecar.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "meshid-ops" });
    expect(sidecar.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "meshid-ops" });
    expect(sidecar.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
  });
});
