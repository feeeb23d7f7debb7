import { MeshidError, isMeshidError } from "@meshid/errors";
import { isAbortError, meshidErrorFromClientError } from "@meshid/grpc-kit";
import { ClientError, Status } from "nice-grpc-common";
import { connectError } from "./exit-codes";

/**
 * Turns an error of a gRPC call to `describe` (e.g. "the CA admin socket /x/admin.sock") into
 * the MeshidError meshctl reports: `UNAVAILABLE` (refused, reset, no connection) becomes
 * `meshctl.connect` (exit code 4) naming the target; other statuses keep their kind (so
 * `NOT_FOUND` → exit 3, `PERMISSION_DENIED` → 5) and the server's message.
 */
export function callFailure(err: unknown, describe: string): MeshidError {
  if (isMeshidError(err)) return err;
  if (err instanceof ClientError && err.code === Status.UNAVAILABLE) {
    return connectError(`cannot connect to ${describe}: ${err.details}`, err);
  }
  if (err instanceof ClientError && err.code === Status.DEADLINE_EXCEEDED) {
    return connectError(`no answer from ${describe} before the deadline (--timeout)`, err);
  }
  if (isAbortError(err)) {
    return new MeshidError("aborted", "meshctl.aborted", "interrupted", { cause: err });
  }
  return meshidErrorFromClientError(err);
}

/** Returns the gRPC status name of an error made by {@link callFailure}, when it has one. */
export function grpcStatusName(err: MeshidError): string | undefined {
  const status = err.details.grpcStatus;
  return typeof status === "string" ? status : undefined;
}
