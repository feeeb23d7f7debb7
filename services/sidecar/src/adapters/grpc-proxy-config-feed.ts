// proxy-config's WatchProxyConfig stream over mTLS with the sidecar's own SVID, reconnecting
// with backoff forever.
import type { SvidSource } from "@meshid/grpc-kit";
import { createGrpcChannel, createGrpcClient, isAbortError } from "@meshid/grpc-kit";
import { meshidProxyconfigV1 } from "@meshid/proto";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { backoffDelayMs, type BackoffOptions } from "@meshid/workload-api";
import { ClientError, Status } from "nice-grpc";
import type { AppProtocol, InboundPortConfig, OutboundRouteConfig } from "../config";
import type { Clock, ProxyConfigUpdate } from "../ports";

/** What the sidecar tells proxy-config about itself. */
export interface ProxyConfigRequestParams {
  readonly namespace: string;
  readonly podName: string;
  readonly inbound: readonly InboundPortConfig[];
  readonly outbound: readonly OutboundRouteConfig[];
  readonly layout: {
    readonly svidDir: string;
    readonly nginxPrefix: string;
    readonly streamModulePath?: string;
    readonly nginxUser?: string;
  };
}

/** Parameters of {@link watchProxyConfig}. */
export interface WatchProxyConfigParams {
  /** `host:port` of proxy-config. */
  readonly address: string;
  /** SPIFFE ID proxy-config must present. */
  readonly serverId: string;
  /** The sidecar's rotating SVID (client certificate) and bundle. */
  readonly source: SvidSource;
  readonly request: ProxyConfigRequestParams;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly backoff?: BackoffOptions;
}

function protocolToProto(p: AppProtocol): meshidProxyconfigV1.AppProtocol {
  return p === "http"
    ? meshidProxyconfigV1.AppProtocol.APP_PROTOCOL_HTTP
    : meshidProxyconfigV1.AppProtocol.APP_PROTOCOL_TCP;
}

/** Builds the ProxyConfigRequest the sidecar sends. */
export function proxyConfigRequestToProto(
  p: ProxyConfigRequestParams,
): meshidProxyconfigV1.ProxyConfigRequest {
  return {
    namespace: p.namespace,
    podName: p.podName,
    inbound: p.inbound.map((i) => ({
      name: i.name,
      listenPort: i.listenPort,
      appPort: i.appPort,
      protocol: protocolToProto(i.protocol),
    })),
    outbound: p.outbound.map((o) => ({
      name: o.name,
      listenPort: o.listenPort,
      destinationHost: o.destinationHost,
      destinationPort: o.destinationPort,
      protocol: protocolToProto(o.protocol),
      serverSpiffeId: o.serverSpiffeId ?? "",
      serverName: o.serverName ?? "",
    })),
    layout: {
      svidDir: p.layout.svidDir,
      nginxPrefix: p.layout.nginxPrefix,
      streamModulePath: p.layout.streamModulePath ?? "",
      nginxUser: p.layout.nginxUser ?? "",
    },
  };
}

/** `MTLS_MODE_STRICT` → `strict`. */
export function modeName(mode: meshidProxyconfigV1.MtlsMode): string {
  switch (mode) {
    case meshidProxyconfigV1.MtlsMode.MTLS_MODE_OFF:
      return "off";
    case meshidProxyconfigV1.MtlsMode.MTLS_MODE_PERMISSIVE:
      return "permissive";
    case meshidProxyconfigV1.MtlsMode.MTLS_MODE_STRICT:
      return "strict";
    default:
      return "unspecified";
  }
}

/**
 * Follows WatchProxyConfig for this pod: yields every rendering; after a failure or the end of
 * the stream it calls again after a capped exponential backoff with jitter (reset by every
 * message), until `signal` aborts (then it finishes quietly).
 */
export async function* watchProxyConfig(
  params: WatchProxyConfigParams,
): AsyncGenerator<ProxyConfigUpdate, void, undefined> {
  const { signal, logger } = params;
  const request = proxyConfigRequestToProto(params.request);
  let attempt = 0;
  while (!signal.aborted) {
    const channel = createGrpcChannel({
      target: params.address,
      tls: {
        source: params.source,
        serverId: (id) => id.toString() === params.serverId,
      },
    });
    let reason = "stream ended";
    try {
      const client = createGrpcClient(meshidProxyconfigV1.ProxyConfigServiceDefinition, channel);
      for await (const message of client.watchProxyConfig(request, { signal })) {
        attempt = 0;
        yield {
          generation: Number(message.generation),
          nginxConf: message.nginxConf,
          effectiveMode: modeName(message.effectiveMode),
          modeSource: message.modeSource,
        };
      }
    } catch (err) {
      if (signal.aborted || isAbortError(err)) return;
      reason =
        err instanceof ClientError ? `${Status[err.code]}: ${err.details}` : (err as Error).message;
    } finally {
      channel.close();
    }
    if (signal.aborted) return;
    attempt += 1;
    const delayMs = backoffDelayMs(attempt - 1, params.backoff);
    logger.warn(
      { [LogKeys.address]: params.address, reason, attempt, delayMs },
      "proxy-config watch failed; retrying",
    );
    await params.clock.sleep(delayMs, signal);
  }
}
