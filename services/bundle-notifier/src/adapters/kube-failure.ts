// Turns failed Kubernetes API calls into MeshidErrors with a short, stable message.
import { MeshidError } from "@meshid/errors";
import { kubeStatusCode } from "@meshid/kube";

/** Code of a Kubernetes API call that failed (the target retries it with backoff). */
export const KUBE_REQUEST_FAILED_CODE = "bundle_notifier.kube.request_failed";
/** Code of a write that kept meeting resourceVersion conflicts. */
export const KUBE_CONFLICTS_EXHAUSTED_CODE = "bundle_notifier.kube.conflicts_exhausted";

/** Default number of re-reads after a 409 before the apply fails (the dispatcher retries later). */
export const DEFAULT_MAX_CONFLICT_RETRIES = 5;

function statusMessage(err: unknown): string | undefined {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body !== "string") return undefined;
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === "string" ? parsed.message.slice(0, 300) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Wraps the failure of `what` (e.g. `update configmap meshid/meshid-bundle`) as MeshidError
 * `unavailable` / {@link KUBE_REQUEST_FAILED_CODE}, naming the HTTP status and the API server's
 * message when there is one.
 */
export function kubeRequestFailed(what: string, err: unknown): MeshidError {
  const code = kubeStatusCode(err);
  const detail =
    code === undefined
      ? err instanceof Error
        ? err.message
        : String(err)
      : `HTTP ${code}${statusMessage(err) === undefined ? "" : `: ${statusMessage(err)}`}`;
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
