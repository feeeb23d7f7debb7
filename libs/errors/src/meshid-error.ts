/**
 * What kind of failure an error is. Each kind maps to exactly one gRPC status code in
 * `@meshid/grpc-kit`, so the domain never imports gRPC.
 */
export type ErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "unauthenticated"
  | "failed_precondition"
  | "resource_exhausted"
  | "unavailable"
  | "deadline_exceeded"
  | "aborted"
  | "unimplemented"
  | "internal";

/** Options of {@link MeshidError}. */
export interface MeshidErrorOptions {
  /** The underlying error, kept for logs; never sent to callers. */
  cause?: unknown;
  /** Structured, non-secret details (field names, limits) safe to show to callers. */
  details?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * Base error of meshid. `code` is a stable, dotted, machine-readable identifier
 * (e.g. `spiffe.id.invalid`) that callers and tests may match on; `kind` decides the gRPC
 * status. Messages must never contain key material.
 */
export class MeshidError extends Error {
  /** Stable identifier of this error, e.g. `spiffe.id.invalid`. */
  readonly code: string;
  /** Category that decides the gRPC status. */
  readonly kind: ErrorKind;
  /** Non-secret structured details. */
  readonly details: Readonly<Record<string, string | number | boolean>>;

  constructor(kind: ErrorKind, code: string, message: string, options: MeshidErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MeshidError";
    this.kind = kind;
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

/** Reports whether `err` is a {@link MeshidError}, optionally with the given code. */
export function isMeshidError(err: unknown, code?: string): err is MeshidError {
  return err instanceof MeshidError && (code === undefined || err.code === code);
}
