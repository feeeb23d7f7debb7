// ProxyConfigService: a pod's rendered sidecar configuration, once or as a stream.
import { MeshidError } from "@meshid/errors";
import { type meshidProxyconfigV1 as pb } from "@meshid/proto";
import type { PodProxyConfigRequest } from "../domain/pod-proxy-config";
import type { ProxyConfigHub } from "../domain/proxy-config-hub";
import { SIDECAR_REQUEST_INVALID_CODE, validateSidecarSpec } from "../domain/sidecar-spec";
import type { ProxyConfigCallContext } from "./authz";
import { proxyConfigRequestFromProto, proxyConfigToProto } from "./converters";

const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * The validated domain request.
 * @throws MeshidError `invalid_argument` naming every bad field.
 */
export function validProxyConfigRequest(request: pb.ProxyConfigRequest): PodProxyConfigRequest {
  const converted = proxyConfigRequestFromProto(request);
  const problems: string[] = [];
  if (!K8S_NAME.test(converted.namespace)) {
    problems.push(
      `namespace: must be a Kubernetes name (got ${JSON.stringify(converted.namespace)})`,
    );
  }
  if (!K8S_NAME.test(converted.podName)) {
    problems.push(`podName: must be a Kubernetes name (got ${JSON.stringify(converted.podName)})`);
  }
  try {
    validateSidecarSpec(converted);
  } catch (err) {
    if (!(err instanceof MeshidError)) throw err;
    problems.push(err.message);
  }
  if (problems.length > 0) {
    throw new MeshidError("invalid_argument", SIDECAR_REQUEST_INVALID_CODE, problems.join("; "));
  }
  return converted;
}

/** Error code when too many Watch streams are open. */
export const TOO_MANY_STREAMS_CODE = "proxy_config.watch.too_many_streams";

/**
 * Creates the ProxyConfigService implementation on `hub`; a Watch beyond `maxWatchStreams`
 * open streams fails with RESOURCE_EXHAUSTED.
 */
export function createProxyConfigService(deps: {
  readonly hub: ProxyConfigHub;
  readonly maxWatchStreams: number;
}): pb.ProxyConfigServiceImplementation<ProxyConfigCallContext> {
  return {
    getProxyConfig(request) {
      return Promise.resolve(proxyConfigToProto(deps.hub.get(validProxyConfigRequest(request))));
    },
    async *watchProxyConfig(request, context) {
      const valid = validProxyConfigRequest(request);
      if (deps.hub.openStreams() >= deps.maxWatchStreams) {
        throw new MeshidError(
          "resource_exhausted",
          TOO_MANY_STREAMS_CODE,
          `too many open WatchProxyConfig streams (limit ${deps.maxWatchStreams}); retry later`,
        );
      }
      for await (const result of deps.hub.watch(valid, context.signal)) {
        yield proxyConfigToProto(result);
      }
    },
  };
}
