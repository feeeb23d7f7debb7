import { ChannelCredentials, type Channel, type ChannelOptions } from "@grpc/grpc-js";
import {
  createChannel,
  createClientFactory,
  type Client,
  type ClientMiddleware,
  type CompatServiceDefinition,
} from "nice-grpc";
import { deadlineMiddleware, type DeadlineOptions } from "nice-grpc-client-middleware-deadline";
import { openTelemetryClientMiddleware } from "nice-grpc-opentelemetry";
import { createChannelTlsCredentials, type ChannelTlsOptions } from "./tls";

/** Parameters of {@link createGrpcChannel}. */
export interface CreateGrpcChannelParams {
  /**
   * Where the server is: `host:port` (use `localhost`, not `127.0.0.1`, with TLS) or
   * `unix:///absolute/path`.
   */
  target: string;
  /**
   * mTLS with a rotating client X509-SVID; the server is verified by SPIFFE ID against the
   * bundle, never by hostname. Without it the channel is plaintext (Unix sockets, tests).
   */
  tls?: ChannelTlsOptions;
  /** Extra grpc-js channel options (keepalive, message sizes, …). */
  channelOptions?: ChannelOptions;
}

/**
 * Creates a gRPC channel to `params.target`. With `tls`, every new connection uses the latest SVID
 * and bundle of the source; rotation does not close working connections. Close it with
 * `channel.close()`.
 */
export function createGrpcChannel(params: CreateGrpcChannelParams): Channel {
  const credentials =
    params.tls === undefined
      ? ChannelCredentials.createInsecure()
      : createChannelTlsCredentials(params.tls);
  return createChannel(params.target, credentials, params.channelOptions);
}

/** Options of {@link createGrpcClient}. */
export interface CreateGrpcClientOptions {
  /**
   * Default deadline of every call, in milliseconds from its start; a call may override it with
   * the `deadline` call option. Default: no deadline.
   */
  deadlineMs?: number;
  /**
   * Extra client middleware, applied innermost (closest to the transport), in the order given.
   */
  middleware?: readonly ClientMiddleware[];
}

/** Call options every grpc-kit client accepts in addition to nice-grpc's. */
export type GrpcClientCallOptions = DeadlineOptions;

/**
 * Creates a typed nice-grpc client for `definition` on `channel` with OpenTelemetry client spans
 * (outermost) and deadlines (`deadline` call option, default `deadlineMs`). An expired deadline
 * fails the call with `ClientError` status `DEADLINE_EXCEEDED`; use
 * {@link meshidErrorFromClientError} to turn failures into `MeshidError`s.
 */
export function createGrpcClient<Service extends CompatServiceDefinition>(
  definition: Service,
  channel: Channel,
  options: CreateGrpcClientOptions = {},
): Client<Service, GrpcClientCallOptions> {
  // nice-grpc invokes the middleware attached first last, so attach innermost first.
  let factory = createClientFactory();
  for (const middleware of [...(options.middleware ?? [])].reverse()) {
    factory = factory.use(middleware);
  }
  const withDeadline = factory.use(deadlineMiddleware).use(openTelemetryClientMiddleware());
  return withDeadline.create(
    definition,
    channel,
    options.deadlineMs === undefined ? undefined : { "*": { deadline: options.deadlineMs } },
  );
}
