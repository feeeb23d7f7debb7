// One pod's rendered sidecar configuration: its effective mode (mesh mode + annotation), its
// ports (pod spec merged with the sidecar's request) and the NGINX config. Pure.
import type { PodInfo } from "../ports";
import { resolveEffectiveMode, type AnnotationReport, type ModeSource } from "./effective-mode";
import type { MeshConfig, MtlsMode } from "./mesh-config";
import { renderNginxConfig } from "./nginx-config";
import type { AppProtocol, InboundPortSpec, SidecarSpec } from "./sidecar-spec";

/** Name of the sidecar container whose ports are the pod's inbound listen ports. */
export const SIDECAR_CONTAINER_NAME = "meshid-sidecar";

/** A sidecar's request: which pod, plus its own ports, routes and layout. */
export interface PodProxyConfigRequest extends SidecarSpec {
  readonly namespace: string;
  readonly podName: string;
}

/** The rendering for one pod. */
export interface PodProxyConfig {
  readonly effectiveMode: MtlsMode;
  readonly modeSource: ModeSource;
  readonly nginxConf: string;
  readonly meshConfigGeneration: number;
  /** Set when the pod's annotation was ignored or invalid. */
  readonly report?: AnnotationReport;
}

/** `http` for port names `http` / `http-*` / `http2*` / `grpc*` (Istio's convention), else `tcp`. */
export function protocolFromPortName(name: string): AppProtocol {
  return /^(http|http2|grpc|h2c)(-|$)/.test(name.toLowerCase()) ? "http" : "tcp";
}

/**
 * Inbound ports from the pod spec: every named port of the {@link SIDECAR_CONTAINER_NAME}
 * container is a listen port forwarding to the port of the same name on another container.
 */
export function inboundFromPod(pod: PodInfo): InboundPortSpec[] {
  const sidecar = pod.ports.filter((p) => p.container === SIDECAR_CONTAINER_NAME && p.name !== "");
  const inbound: InboundPortSpec[] = [];
  for (const listen of sidecar) {
    const app = pod.ports.find(
      (p) => p.container !== SIDECAR_CONTAINER_NAME && p.name === listen.name,
    );
    if (app === undefined) continue;
    inbound.push({
      name: listen.name,
      listenPort: listen.port,
      appPort: app.port,
      protocol: protocolFromPortName(listen.name),
    });
  }
  return inbound;
}

/** Pod-spec ports, overridden port by port (same listen port) by the request's. */
export function mergeInbound(
  fromPod: readonly InboundPortSpec[],
  fromRequest: readonly InboundPortSpec[],
): InboundPortSpec[] {
  const requested = new Set(fromRequest.map((p) => p.listenPort));
  return [...fromPod.filter((p) => !requested.has(p.listenPort)), ...fromRequest].sort(
    (a, b) => a.listenPort - b.listenPort,
  );
}

/**
 * Renders `request` for its pod: without a known pod (no Kubernetes, or not yet seen) the mesh
 * mode applies and only the request's ports are used.
 */
export function renderPodProxyConfig(params: {
  readonly mesh: MeshConfig;
  readonly pod: PodInfo | undefined;
  readonly request: PodProxyConfigRequest;
}): PodProxyConfig {
  const { mesh, pod, request } = params;
  const effective = resolveEffectiveMode(mesh.mtlsMode, pod?.mtlsModeAnnotation);
  // Pod ports never displace the sidecar's own outbound listeners.
  const outboundPorts = new Set(request.outbound.map((r) => r.listenPort));
  const fromPod = (pod === undefined ? [] : inboundFromPod(pod)).filter(
    (p) => !outboundPorts.has(p.listenPort),
  );
  const inbound = mergeInbound(fromPod, request.inbound);
  const nginxConf = renderNginxConfig({
    mode: effective.mode,
    inbound,
    outbound: request.outbound,
    layout: request.layout,
  });
  return {
    effectiveMode: effective.mode,
    modeSource: effective.source,
    nginxConf,
    meshConfigGeneration: mesh.generation,
    ...(effective.report === undefined ? {} : { report: effective.report }),
  };
}
