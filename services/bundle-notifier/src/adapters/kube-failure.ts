// Turns failed Kubernetes API calls into MeshidErrors with a short, stable message.
import { MeshidError } from "@meshid/errors";
import { KubeApiError, kubeStatusCode } from "@meshid/kube";

/** Code of a Kubernetes API call that failed (the target retries it with backoff). */
export const KUBE_REQUEST_FAILED_CODE = "bundle_notifier.kube.request_failed";
/** Code of a write that kept meeting resourceVersion conflicts. */
export const KUBE_CONFLICTS_EXHAUSTED_CODE = "bundle_notifier.kube.conflicts_exhausted";

/** Default number of re-reads after a 409 before the apply fails (the dispatcher retries later). */
export const DEFAULT_MAX_CONFLICT_RETRIES = 5;

/** Longest part of the API server's message carried into ours. */
const MAX_STATUS_MESSAGE_CHARS = 300;

/** The message of the API server's Status, if it sent one. */
function statusMessage(err: unknown): string | undefined {
  if (!(err instanceof KubeApiError)) return undefined;
  const message = err.status.message?.trim();
  return message === undefined || message === ""
    ? undefined
    : message.slice(0, MAX_STATUS_MESSAGE_CHARS);
}

/**
 * Wraps the failure of `what` (e.g. `update configmap meshid/meshid-bundle`) as MeshidError
 * `unavailable` / {@link KUBE_REQUEST_FAILED_CODE}, naming the HTTP status and the API server's
 * message when there is one.
 */
export function kubeRequestFailed(what: string, err: unknown): MeshidError {
  // 0: a KubeApiError for a request that never reached a server (no HTTP status to name).
  const status = kubeStatusCode(err);
  const code = status === 0 ? undefined : status;
  const message = statusMessage(err);
  const detail =
    code === undefined
      ? err instanceof Error
        ? err.message
        : String(err)
      : `HTTP ${code}${message === undefined ? "" : `: ${message}`}`;
  return new MeshidError("unavailable", KUBE_REQUEST_FAILED_CODE, `${what} failed: ${detail}`, {
    cause: err,
    ...(code === undefined ? {} : { details: { httpStatus: code } }),
  });
}

/** The error after `attempts` writes of `what` all met a conflict. */
export function kubeConflictsExhausted(what: string, attempts: number): MeshidError {
  return new MeshidError(
    "aborted",
    KUBE_CONFLICTS_EXHAUSTED_CODE,
    `${what}: still conflicting after ${attempts} attempts`,
    { details: { attempts } },
  );
}

/** A short random pause before re-reading after a conflict (25–150 ms), so writers spread out. */
export function conflictPauseMs(random: () => number = Math.random): number {
  return Math.round(25 + random() * 125);
}
