// API failures as one error type, and their classification by HTTP status.
import type { KubeStatus } from "./types";

/** A request the API server answered with a non-2xx status (or a watch ERROR event). */
export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  /** HTTP status (0 when the request never reached a server). */
  readonly code: number;
  /** The server's Status object. */
  readonly status: KubeStatus;

  constructor(code: number, status: KubeStatus) {
    super(
      `Kubernetes API ${code}${status.reason ? ` ${status.reason}` : ""}: ${status.message ?? ""}`,
    );
    this.code = code;
    this.status = status;
  }

  /** The Status reason, e.g. `AlreadyExists`, `Conflict`, `Expired`. */
  get reason(): string | undefined {
    return this.status.reason;
  }
}

/** The HTTP status of a failed API call, or undefined when the error is not an API response. */
export function kubeStatusCode(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.code;
  // client-node's ApiException (tests and tools still use client-node) carries `code`; its
  // watch errors carry `statusCode`.
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  if (typeof e?.code === "number") return e.code;
  return typeof e?.statusCode === "number" ? e.statusCode : undefined;
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
