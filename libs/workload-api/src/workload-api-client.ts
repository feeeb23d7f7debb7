import { setTimeout as delay } from "node:timers/promises";
import { MeshidError } from "@meshid/errors";
import {
  createGrpcChannel,
  createGrpcClient,
  isAbortError,
  meshidErrorFromClientError,
} from "@meshid/grpc-kit";
import { spiffeWorkload } from "@meshid/proto";
import { LogKeys, createNoopLogger, type Logger } from "@meshid/telemetry";
import { ClientError, Metadata, Status } from "nice-grpc";
import { backoffDelayMs, type BackoffOptions } from "./backoff";
import { x509ContextFromResponse, type X509Context } from "./x509-context";

/** Waits `ms`, or less once `signal` aborts (never rejects). */
const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  delay(ms, undefined, { signal }).catch(() => undefined);

/** gRPC metadata every Workload API call must carry (SPIFFE standard). */
export const WORKLOAD_API_HEADER = { name: "workload.spiffe.io", value: "true" } as const;

/** Stable error code when the agent answers a call in a way retrying cannot fix. */
export const CALL_REFUSED_CODE = "workload_api.call_refused";
/** Stable error code when a stream ended before its first message. */
export const STREAM_ENDED_CODE = "workload_api.stream_ended";

/** Default timeout of {@link fetchX509Context}: 10 s. */
export const DEFAULT_FETCH_TIMEOUT_MS = 10_000;

// The agent rejects these for reasons that do not go away by themselves (a client bug or
// an agent without the X.509 API): retrying forever would only hide them.
const FATAL_STATUSES: ReadonlySet<Status> = new Set([
  Status.INVALID_ARGUMENT,
  Status.UNIMPLEMENTED,
]);

/** Why the watch is about to retry, as told to {@link WatchX509ContextParams.onRetry}. */
export interface WatchRetryEvent {
  /** The gRPC status name (`UNAVAILABLE`, `PERMISSION_DENIED`, …), or `STREAM_ENDED` / `INVALID_RESPONSE`. */
  readonly reason: string;
  /** Retries since the last good message (1 = first retry). */
  readonly attempt: number;
  /** Delay before the next call, in milliseconds. */
  readonly delayMs: number;
  /** The failure (never carries key material). */
  readonly error: Error;
}

/** Parameters of {@link watchX509Context}. */
export interface WatchX509ContextParams {
  /** Absolute path of the Workload API Unix socket (see `parseSpiffeEndpointSocket`). */
  readonly socketPath: string;
  /** Ends the watch (the iterable then finishes without error). */
  readonly signal: AbortSignal;
  /** Default: no logging. */
  readonly logger?: Logger;
  /** Retry delays; see {@link backoffDelayMs}. */
  readonly backoff?: BackoffOptions;
  /** Called before each retry (health reporting). */
  readonly onRetry?: (event: WatchRetryEvent) => void;
}

function workloadMetadata(): Metadata {
  return Metadata({ [WORKLOAD_API_HEADER.name]: WORKLOAD_API_HEADER.value });
}

function openClient(socketPath: string): {
  client: ReturnType<typeof createWorkloadClient>;
  close: () => void;
} {
  const channel = createGrpcChannel({
    target: `unix://${socketPath}`,
    // A connection of this call's own: a shared subchannel could sit in grpc-js's reconnect
    // backoff (up to 2 min) after the agent restarted, while our own backoff is shorter.
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  return { client: createWorkloadClient(channel), close: () => channel.close() };
}

function createWorkloadClient(channel: ReturnType<typeof createGrpcChannel>) {
  return createGrpcClient(spiffeWorkload.SpiffeWorkloadAPIDefinition, channel);
}

function refused(err: ClientError): MeshidError {
  const base = meshidErrorFromClientError(err);
  return new MeshidError(
    base.kind,
    CALL_REFUSED_CODE,
    `Workload API refused FetchX509SVID: ${Status[err.code]}: ${err.details}`,
    { cause: err, details: { grpcStatus: Status[err.code] } },
  );
}

/**
 * Watches the caller's X.509 identities on the Workload API at `socketPath`: yields an
 * {@link X509Context} for the first message and for every later one (rotation, bundle change,
 * entries added or withdrawn). Every call carries `workload.spiffe.io: true`.
 *
 * When the call fails with `UNAVAILABLE`, `PERMISSION_DENIED` (no identity yet) or any other
 * transient status, when the stream ends, or when a message is unusable, it calls again after a
 * capped exponential backoff with jitter ({@link backoffDelayMs}; reset by every good message),
 * forever, on a fresh connection. It finishes without error once `signal` aborts.
 *
 * @throws MeshidError {@link CALL_REFUSED_CODE} (kind from the status) when the agent answers
 *   `INVALID_ARGUMENT` or `UNIMPLEMENTED`, which no retry can fix.
 */
export async function* watchX509Context(
  params: WatchX509ContextParams,
): AsyncGenerator<X509Context, void, undefined> {
  const { socketPath, signal } = params;
  const logger = params.logger ?? createNoopLogger();
  let attempt = 0;
  while (!signal.aborted) {
    const { client, close } = openClient(socketPath);
    let failure: { reason: string; error: Error } | undefined;
    try {
      const stream = client.fetchX509SVID({}, { signal, metadata: workloadMetadata() });
      for await (const message of stream) {
        let context: X509Context;
        try {
          context = x509ContextFromResponse(message);
        } catch (err) {
          failure = { reason: "INVALID_RESPONSE", error: err as Error };
          break;
        }
        attempt = 0;
        yield context;
      }
      failure ??= {
        reason: "STREAM_ENDED",
        error: new MeshidError("unavailable", STREAM_ENDED_CODE, "Workload API stream ended"),
      };
    } catch (err) {
      if (signal.aborted || isAbortError(err)) return;
      if (err instanceof ClientError) {
        if (FATAL_STATUSES.has(err.code)) throw refused(err);
        failure = { reason: Status[err.code], error: err };
      } else {
        failure = { reason: "ERROR", error: err as Error };
      }
    } finally {
      close();
    }
    if (signal.aborted) return;
    attempt += 1;
    const delayMs = backoffDelayMs(attempt - 1, params.backoff);
    logger.warn(
      {
        [LogKeys.address]: socketPath,
        reason: failure.reason,
        attempt,
        delayMs,
        [LogKeys.err]: failure.error.message,
      },
      "Workload API watch failed; retrying",
    );
    params.onRetry?.({ ...failure, attempt, delayMs });
    await sleep(delayMs, signal);
  }
}

/** Parameters of {@link fetchX509Context}. */
export interface FetchX509ContextParams {
  /** Absolute path of the Workload API Unix socket. */
  readonly socketPath: string;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
  /** Gives up after this many milliseconds. Default {@link DEFAULT_FETCH_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/**
 * Fetches the caller's X.509 identities once: the first message of a FetchX509SVID stream, which
 * is then cancelled. No retry.
 *
 * @throws MeshidError with the kind of the gRPC status (`permission_denied` when the agent has
 *   no identity for the caller, `unavailable`, `deadline_exceeded` after `timeoutMs`, …),
 *   {@link STREAM_ENDED_CODE} when the stream ended without a message, or
 *   `workload_api.response_invalid` for an unusable message.
 */
export async function fetchX509Context(params: FetchX509ContextParams): Promise<X509Context> {
  const { client, close } = openClient(params.socketPath);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(params.signal?.reason);
  if (params.signal?.aborted === true) onAbort();
  params.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const stream = client.fetchX509SVID(
      {},
      {
        signal: controller.signal,
        metadata: workloadMetadata(),
        deadline: params.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
      },
    );
    for await (const message of stream) {
      return x509ContextFromResponse(message);
    }
    throw new MeshidError("unavailable", STREAM_ENDED_CODE, "Workload API stream ended");
  } catch (err) {
    if (err instanceof ClientError) throw meshidErrorFromClientError(err);
    throw err;
  } finally {
    params.signal?.removeEventListener("abort", onAbort);
    controller.abort();
    close();
  }
}
