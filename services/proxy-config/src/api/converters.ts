// Proto ↔ domain conversions of the MeshConfig and ProxyConfig services.
import { formatDuration } from "@meshid/config";
import { meshidProxyconfigV1 as pb } from "@meshid/proto";
import type { MeshConfig, MeshConfigUpdate, MtlsMode } from "../domain/mesh-config";
import type { PodProxyConfigRequest } from "../domain/pod-proxy-config";
import type { ProxyConfigResult } from "../domain/proxy-config-hub";
import type { AppProtocol } from "../domain/sidecar-spec";

const MODE_TO_PROTO: Record<MtlsMode, pb.MtlsMode> = {
  off: pb.MtlsMode.MTLS_MODE_OFF,
  permissive: pb.MtlsMode.MTLS_MODE_PERMISSIVE,
  strict: pb.MtlsMode.MTLS_MODE_STRICT,
};

/** The proto enum of a mode. */
export function mtlsModeToProto(mode: MtlsMode): pb.MtlsMode {
  return MODE_TO_PROTO[mode];
}

/**
 * The mode string of a proto enum value; values that are not a mode come back as their enum
 * name (or number) so validation reports them.
 */
export function mtlsModeFromProto(mode: pb.MtlsMode): string {
  switch (mode) {
    case pb.MtlsMode.MTLS_MODE_OFF:
      return "off";
    case pb.MtlsMode.MTLS_MODE_PERMISSIVE:
      return "permissive";
    case pb.MtlsMode.MTLS_MODE_STRICT:
      return "strict";
    case pb.MtlsMode.MTLS_MODE_UNSPECIFIED:
      return "MTLS_MODE_UNSPECIFIED";
    default:
      return String(mode);
  }
}

/** The proto MeshConfig. */
export function meshConfigToProto(config: MeshConfig): pb.MeshConfig {
  return {
    mtlsMode: mtlsModeToProto(config.mtlsMode),
    caTtl: formatDuration(config.caTtlSeconds),
    svidTtl: formatDuration(config.svidTtlSeconds),
    caKeyType: config.caKeyType,
    generation: config.generation,
    updatedAt: config.updatedAt,
  };
}

/** The requested change of an UpdateMeshConfigRequest (unset fields stay unset). */
export function meshConfigUpdateFromProto(request: pb.UpdateMeshConfigRequest): MeshConfigUpdate {
  return {
    ...(request.mtlsMode === undefined ? {} : { mtlsMode: mtlsModeFromProto(request.mtlsMode) }),
    ...(request.caTtl === undefined ? {} : { caTtl: request.caTtl }),
    ...(request.svidTtl === undefined ? {} : { svidTtl: request.svidTtl }),
    ...(request.caKeyType === undefined ? {} : { caKeyType: request.caKeyType }),
  };
}

/** `tcp` for APP_PROTOCOL_TCP; HTTP otherwise (unspecified defaults to HTTP). */
function protocolFromProto(protocol: pb.AppProtocol): AppProtocol {
  return protocol === pb.AppProtocol.APP_PROTOCOL_TCP ? "tcp" : "http";
}

/** The domain request of a ProxyConfigRequest (empty strings = unset). */
export function proxyConfigRequestFromProto(request: pb.ProxyConfigRequest): PodProxyConfigRequest {
  const layout = request.layout ?? {
    svidDir: "",
    nginxPrefix: "",
    streamModulePath: "",
    nginxUser: "",
  };
  return {
    namespace: request.namespace,
    podName: request.podName,
    inbound: request.inbound.map((p) => ({
      name: p.name,
      listenPort: p.listenPort,
      appPort: p.appPort,
      protocol: protocolFromProto(p.protocol),
    })),
    outbound: request.outbound.map((r) => ({
      name: r.name,
      listenPort: r.listenPort,
      destinationHost: r.destinationHost,
      destinationPort: r.destinationPort,
      protocol: protocolFromProto(r.protocol),
      ...(r.serverSpiffeId === "" ? {} : { serverSpiffeId: r.serverSpiffeId }),
      ...(r.serverName === "" ? {} : { serverName: r.serverName }),
    })),
    layout: {
      svidDir: layout.svidDir,
      nginxPrefix: layout.nginxPrefix,
      ...(layout.streamModulePath === "" ? {} : { streamModulePath: layout.streamModulePath }),
      ...(layout.nginxUser === "" ? {} : { nginxUser: layout.nginxUser }),
    },
  };
}

/** The proto ProxyConfig. */
export function proxyConfigToProto(result: ProxyConfigResult): pb.ProxyConfig {
  return {
    effectiveMode: mtlsModeToProto(result.effectiveMode),
    modeSource: result.modeSource,
    nginxConf: result.nginxConf,
    generation: result.generation,
    meshConfigGeneration: result.meshConfigGeneration,
  };
}
