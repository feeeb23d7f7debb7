import type { KubeResourceDefinition } from "./discovery";
import type { JsonObject } from "./types";

/** The `reason` the real API server puts in a failure Status for each HTTP code. */
export const STATUS_REASONS: Readonly<Record<number, string>> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  406: "NotAcceptable",
  409: "Conflict",
  410: "Expired",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** A failure the API server stand-in answers with a `Status` object and HTTP `code`. */
export class KubeApiError extends Error {
  /** HTTP status code (also `Status.code`). */
  readonly code: number;
  /** `Status.reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`, …). */
  readonly reason: string;
  /** `Status.details`, if any. */
  readonly details: JsonObject | undefined;

  /** Creates the error; `reason` defaults from {@link STATUS_REASONS}. */
  constructor(code: number, message: string, reason?: string, details?: JsonObject) {
    super(message);
    this.name = "KubeApiError";
    this.code = code;
    this.reason = reason ?? STATUS_REASONS[code] ?? "Unknown";
    this.details = details;
  }

  /** Returns the `Status` object the real API server would send for this failure. */
  toStatus(): JsonObject {
    return statusFailure(this.code, this.message, this.reason, this.details);
  }
}

/** Builds a failure `Status` object (`kind: Status`, `status: Failure`). */
export function statusFailure(
  code: number,
  message: string,
  reason: string,
  details?: JsonObject,
): JsonObject {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

/** Returns the qualified resource name used in messages (`pods`, `leases.coordination.k8s.io`). */
export function qualifiedResource(def: Pick<KubeResourceDefinition, "plural" | "group">): string {
  return def.group === "" ? def.plural : `${def.plural}.${def.group}`;
}

function details(def: KubeResourceDefinition, name: string): JsonObject {
  return { name, ...(def.group === "" ? {} : { group: def.group }), kind: def.plural };
}

/** 404 NotFound as the real server words it: `pods "x" not found`. */
export function notFoundError(def: KubeResourceDefinition, name: string): KubeApiError {
  return new KubeApiError(
    404,
    `${qualifiedResource(def)} "${name}" not found`,
    "NotFound",
    details(def, name),
  );
}

/** 409 AlreadyExists as the real server words it. */
export function alreadyExistsError(def: KubeResourceDefinition, name: string): KubeApiError {
  return new KubeApiError(
    409,
    `${qualifiedResource(def)} "${name}" already exists`,
    "AlreadyExists",
    details(def, name),
  );
}

/** 409 Conflict for a stale resourceVersion, worded as the real server words it. */
export function conflictError(def: KubeResourceDefinition, name: string): KubeApiError {
  return new KubeApiError(
    409,
    `Operation cannot be fulfilled on ${qualifiedResource(def)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    "Conflict",
    details(def, name),
  );
}

/** 422 Invalid with one field cause, worded as the real server words it. */
export function invalidError(
  def: KubeResourceDefinition,
  name: string,
  field: string,
  message: string,
): KubeApiError {
  return new KubeApiError(
    422,
    `${def.kind} "${name}" is invalid: ${field}: ${message}`,
    "Invalid",
    {
      ...details(def, name),
      kind: def.kind,
      causes: [{ reason: "FieldValueInvalid", message, field }],
    },
  );
}

/** 410 Expired for a watch or continue token older than the retained history. */
export function expiredError(requested: number, oldest: number): KubeApiError {
  return new KubeApiError(410, `too old resource version: ${requested} (${oldest})`, "Expired");
}
