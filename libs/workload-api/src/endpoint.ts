import { isAbsolute } from "node:path";
import { MeshidError } from "@meshid/errors";

/** The environment variable SPIFFE clients read the Workload API address from. */
export const SPIFFE_ENDPOINT_SOCKET_ENV = "SPIFFE_ENDPOINT_SOCKET";

/** Stable error code of an unusable Workload API address. */
export const ENDPOINT_INVALID_CODE = "workload_api.endpoint.invalid";

/**
 * Parses a Workload API address as found in `SPIFFE_ENDPOINT_SOCKET`: `unix:///abs/path` or
 * `unix:/abs/path` (both forms of the SPIFFE standard). Returns the absolute socket path.
 *
 * @throws MeshidError `invalid_argument` / {@link ENDPOINT_INVALID_CODE} for any other scheme
 *   (TCP addresses are not supported), a relative path, an authority (`unix://host/…`), a query
 *   or a fragment.
 */
export function parseSpiffeEndpointSocket(value: string): string {
  const invalid = (reason: string): MeshidError =>
    new MeshidError(
      "invalid_argument",
      ENDPOINT_INVALID_CODE,
      `Workload API address "${value}" ${reason} (expected unix:///absolute/path)`,
    );
  const trimmed = value.trim();
  if (!/^unix:/i.test(trimmed)) throw invalid("is not a unix: address");
  if (/[?#]/.test(trimmed)) throw invalid("must not have a query or fragment");
  let rest = trimmed.slice("unix:".length);
  if (rest.startsWith("//")) {
    // unix://<authority>/path: only an empty authority is allowed.
    rest = rest.slice(2);
    if (!rest.startsWith("/")) throw invalid("must not name a host");
  }
  let path: string;
  try {
    path = decodeURIComponent(rest);
  } catch {
    throw invalid("has a malformed percent-encoding");
  }
  if (path === "" || path === "/" || !isAbsolute(path)) throw invalid("has no absolute path");
  return path;
}

/**
 * Returns the socket path from `env.SPIFFE_ENDPOINT_SOCKET`, or undefined when it is unset or
 * empty.
 * @throws MeshidError {@link ENDPOINT_INVALID_CODE} when it is set but unusable.
 */
export function socketPathFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const value = env[SPIFFE_ENDPOINT_SOCKET_ENV];
  if (value === undefined || value.trim() === "") return undefined;
  return parseSpiffeEndpointSocket(value);
}
