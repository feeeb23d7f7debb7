// Classifies errors of @kubernetes/client-node calls by HTTP status.
import { ApiException } from "@kubernetes/client-node";

/** The HTTP status of a failed API call, or undefined when the error is not an API response. */
export function kubeStatusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  // Watch errors and older client paths carry the status as `statusCode`.
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof statusCode === "number" ? statusCode : undefined;
}

/** 404 Not Found. */
export function isKubeNotFound(err: unknown): boolean {
  return kubeStatusCode(err) === 404;
}

/** 409 Conflict (stale resourceVersion) or AlreadyExists. */
export function isKubeConflict(err: unknown): boolean {
  return kubeStatusCode(err) === 409;
}

/** 410 Gone (a watch resourceVersion older than the server's history). */
export function isKubeGone(err: unknown): boolean {
  return kubeStatusCode(err) === 410;
}
