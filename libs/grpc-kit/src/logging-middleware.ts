import { performance } from "node:perf_hooks";
import {
  ServerError,
  Status,
  type CallContext,
  type ServerMiddleware,
  type ServerMiddlewareCall,
} from "nice-grpc-common";
import { isAbortError } from "./errors";
import { GrpcLogKeys } from "./log-keys";
import type { GrpcLogger } from "./logger";

/** Dependencies of {@link loggingMiddleware}. */
export interface LoggingMiddlewareDeps {
  /** Receives one line per finished call. */
  logger: GrpcLogger;
}

/** Returns the status a call ends with when its handler chain threw `err`. */
function statusOfError(err: unknown): Status {
  if (err instanceof ServerError) return err.code;
  if (isAbortError(err)) return Status.CANCELLED;
  return Status.UNKNOWN;
}

/**
 * Creates the server middleware that logs every finished call with its method, status and
 * duration (fields named by {@link GrpcLogKeys}): `debug` for OK, `info` for statuses caused by the
 * caller, `warn` for `INTERNAL`, `UNKNOWN`, `UNAVAILABLE`, `DATA_LOSS`. It sits outside the error
 * middleware, so it sees the status that was actually sent.
 */
export function loggingMiddleware(deps: LoggingMiddlewareDeps): ServerMiddleware {
  const { logger } = deps;
  return async function* meshidLoggingMiddleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const started = performance.now();
    let status = Status.OK;
    try {
      return yield* call.next(call.request, context);
    } catch (err: unknown) {
      status = statusOfError(err);
      throw err;
    } finally {
      const fields = {
        [GrpcLogKeys.method]: call.method.path,
        [GrpcLogKeys.status]: Status[status],
        [GrpcLogKeys.statusCode]: status,
        [GrpcLogKeys.durationMs]: Math.round((performance.now() - started) * 1000) / 1000,
        [GrpcLogKeys.peer]: context.peer,
      };
      if (status === Status.OK) logger.debug(fields, "gRPC call finished");
      else if (SERVER_SIDE_FAILURES.has(status)) logger.warn(fields, "gRPC call failed");
      else logger.info(fields, "gRPC call failed");
    }
  };
}

const SERVER_SIDE_FAILURES: ReadonlySet<Status> = new Set([
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);
