import { MeshidError, isMeshidError, type ErrorKind } from "@meshid/errors";
import {
  ClientError,
  type Metadata,
  ServerError,
  Status,
  type CallContext,
  type ServerMiddleware,
  type ServerMiddlewareCall,
} from "nice-grpc-common";
import { GrpcLogKeys } from "./log-keys";
import type { GrpcLogger } from "./logger";

/** Message sent to callers for every error that is not a deliberate {@link MeshidError}. */
export const INTERNAL_ERROR_MESSAGE = "internal error";

/**
 * Trailer key carrying the stable `MeshidError` code of a failed call, so clients can rebuild the
 * error with {@link meshidErrorFromClientError}.
 */
export const ERROR_CODE_TRAILER_KEY = "meshid-error-code";

// The single table deciding the gRPC status of every error kind. `satisfies` makes the
// compiler reject a kind without a status.
const STATUS_BY_KIND = {
  invalid_argument: Status.INVALID_ARGUMENT,
  not_found: Status.NOT_FOUND,
  already_exists: Status.ALREADY_EXISTS,
  permission_denied: Status.PERMISSION_DENIED,
  unauthenticated: Status.UNAUTHENTICATED,
  failed_precondition: Status.FAILED_PRECONDITION,
  resource_exhausted: Status.RESOURCE_EXHAUSTED,
  unavailable: Status.UNAVAILABLE,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  aborted: Status.ABORTED,
  unimplemented: Status.UNIMPLEMENTED,
  internal: Status.INTERNAL,
} as const satisfies Record<ErrorKind, Status>;

const KIND_BY_STATUS: ReadonlyMap<Status, ErrorKind> = new Map(
  (Object.entries(STATUS_BY_KIND) as [ErrorKind, Status][]).map(([kind, status]) => [status, kind]),
);

/**
 * Reports whether `err` is the `AbortError` nice-grpc raises for a cancelled call or an aborted
 * signal.
 */
export function isAbortError(err: unknown): boolean {
  return (
    typeof err === "object" && err !== null && (err as { name?: unknown }).name === "AbortError"
  );
}

/** Returns the gRPC status that a {@link MeshidError} of `kind` is sent as. */
export function statusForErrorKind(kind: ErrorKind): Status {
  return STATUS_BY_KIND[kind];
}

/**
 * Returns the error kind a gRPC status maps back to. Statuses without a kind of their own
 * (`CANCELLED`, `UNKNOWN`, `DATA_LOSS`, `OUT_OF_RANGE`, `OK`) map to `internal`, except
 * `CANCELLED` which maps to `aborted`.
 */
export function errorKindForStatus(status: Status): ErrorKind {
  if (status === Status.CANCELLED) return "aborted";
  if (status === Status.OUT_OF_RANGE) return "invalid_argument";
  return KIND_BY_STATUS.get(status) ?? "internal";
}

/**
 * Rebuilds a {@link MeshidError} from an error thrown by a nice-grpc client call. The kind comes
 * from the status; the code is the server's `meshid-error-code` trailer when `trailer` (captured
 * with the `onTrailer` call option) carries one, else `grpc.<status name lower-case>`. The message
 * is the server's message; the original error is kept as `cause`. Errors that are not a
 * `ClientError` become kind `internal` with code `grpc.client`; abort errors become `aborted`.
 */
export function meshidErrorFromClientError(err: unknown, trailer?: Metadata): MeshidError {
  if (isMeshidError(err)) return err;
  if (err instanceof ClientError) {
    const code = trailer?.get(ERROR_CODE_TRAILER_KEY) ?? `grpc.${Status[err.code].toLowerCase()}`;
    return new MeshidError(errorKindForStatus(err.code), code, err.details, {
      cause: err,
      details: { grpcStatus: Status[err.code], method: err.path },
    });
  }
  if (isAbortError(err)) {
    return new MeshidError("aborted", "grpc.aborted", "call aborted", { cause: err });
  }
  return new MeshidError("internal", "grpc.client", "gRPC client failure", { cause: err });
}

/** Dependencies of {@link errorMiddleware}. */
export interface ErrorMiddlewareDeps {
  /** Where errors that are not sent to callers are logged, with their cause. */
  logger: GrpcLogger;
}

/**
 * Creates the server middleware that turns errors thrown by handlers into gRPC statuses:
 * a {@link MeshidError} becomes `ServerError(statusForErrorKind(kind), message)` with its code in
 * the `meshid-error-code` trailer — only the message is sent, never the cause, details or stack
 * (so `NOT_FOUND` never leaks internals). Kind `internal` and every other error become
 * `INTERNAL "internal error"`, logged with the cause. A `ServerError` thrown on purpose (e.g. by
 * the health service) and abort errors of cancelled calls pass through unchanged.
 */
export function errorMiddleware(deps: ErrorMiddlewareDeps): ServerMiddleware {
  const { logger } = deps;
  return async function* meshidErrorMiddleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    try {
      return yield* call.next(call.request, context);
    } catch (err: unknown) {
      if (err instanceof ServerError || isAbortError(err)) throw err;
      if (isMeshidError(err)) {
        context.trailer.set(ERROR_CODE_TRAILER_KEY, err.code);
        if (err.kind !== "internal") {
          throw new ServerError(statusForErrorKind(err.kind), err.message);
        }
        logger.error(
          {
            [GrpcLogKeys.method]: call.method.path,
            [GrpcLogKeys.errorCode]: err.code,
            [GrpcLogKeys.err]: err,
          },
          "gRPC handler failed with an internal error",
        );
        throw new ServerError(Status.INTERNAL, INTERNAL_ERROR_MESSAGE);
      }
      logger.error(
        { [GrpcLogKeys.method]: call.method.path, [GrpcLogKeys.err]: err },
        "gRPC handler threw an unexpected error",
      );
      throw new ServerError(Status.INTERNAL, INTERNAL_ERROR_MESSAGE);
    }
  };
}
