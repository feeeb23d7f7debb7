import { type MeshidError, isMeshidError } from "@meshid/errors";
import { SpiffeErrorCode, invalid, quote } from "./errors";
import {
  type TrustDomain,
  checkTrustDomainName,
  parseTrustDomain,
  wrapValidName,
} from "./trust-domain";

/** Longest SPIFFE ID accepted, in bytes (the standard requires accepting at least this). */
export const MAX_SPIFFE_ID_BYTES = 2048;

const SCHEME_PREFIX = "spiffe://";
const PATH_CHAR = /^[a-zA-Z0-9._-]$/;

interface Problem {
  rule: string;
  reason: string;
}

/** Checks a SPIFFE ID path (`""` or `/seg/seg`) and returns the first broken rule, if any. */
function checkPath(path: string): Problem | undefined {
  if (path === "") return undefined;
  if (!path.startsWith("/")) {
    return { rule: "path-chars", reason: 'path must start with "/"' };
  }
  const segments = path.slice(1).split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] ?? "";
    if (segment === "") {
      if (i === segments.length - 1) {
        return { rule: "trailing-slash", reason: "path must not end with a slash" };
      }
      return { rule: "empty-segment", reason: "path segments must not be empty" };
    }
    if (segment === "." || segment === "..") {
      return { rule: "dot-segment", reason: `path segment ${quote(segment)} is not allowed` };
    }
    if (segment.includes("%")) {
      return { rule: "percent-encoding", reason: "percent-encoding is not allowed" };
    }
    for (const ch of segment) {
      if (!PATH_CHAR.test(ch)) {
        return {
          rule: "path-chars",
          reason: `path character ${quote(ch)} is not allowed (only a-z, A-Z, 0-9, ".", "-", "_")`,
        };
      }
    }
  }
  return undefined;
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Wraps already validated parts without checking them (package-internal). */
let wrapValidParts: (trustDomain: TrustDomain, path: string) => SpiffeId;

/**
 * A SPIFFE ID `spiffe://<trust-domain><path>`. Always valid once built: create it with
 * {@link parseSpiffeId}, {@link tryParseSpiffeId} or {@link SpiffeId.fromParts}.
 */
export class SpiffeId {
  /** The trust domain the ID belongs to. */
  readonly trustDomain: TrustDomain;
  /** The path: `""` for a trust-domain ID, else `/seg/...` (case-sensitive). */
  readonly path: string;

  private constructor(trustDomain: TrustDomain, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
  }

  /**
   * Builds an ID from a trust domain (object or name, parsed with {@link parseTrustDomain}) and
   * a path (`""` or starting with `/`).
   *
   * @throws MeshidError `spiffe.trust_domain.invalid` for a bad trust domain name, or
   *   `spiffe.id.invalid` with `details.rule` for a bad path or an ID over 2048 bytes.
   */
  static fromParts(trustDomain: TrustDomain | string, path: string): SpiffeId {
    const td = typeof trustDomain === "string" ? parseTrustDomain(trustDomain) : trustDomain;
    const text = `${SCHEME_PREFIX}${td.name}${path}`;
    const problem = checkPath(path);
    if (problem !== undefined) {
      throw invalid(
        SpiffeErrorCode.idInvalid,
        problem.rule,
        `invalid SPIFFE ID ${quote(text)}: ${problem.reason}`,
      );
    }
    const bytes = byteLength(text);
    if (bytes > MAX_SPIFFE_ID_BYTES) {
      throw invalid(
        SpiffeErrorCode.idInvalid,
        "too-long",
        `invalid SPIFFE ID ${quote(text)}: ID is ${bytes} bytes, more than ${MAX_SPIFFE_ID_BYTES}`,
      );
    }
    return wrapValidParts(td, path);
  }

  static {
    wrapValidParts = (trustDomain, path) => new SpiffeId(trustDomain, path);
  }

  /** Returns the canonical string form, e.g. `spiffe://example.org/ns/a` (scheme lowercase). */
  toString(): string {
    return `${SCHEME_PREFIX}${this.trustDomain.name}${this.path}`;
  }

  /** Returns {@link SpiffeId.toString} so that JSON output shows the ID as a string. */
  toJSON(): string {
    return this.toString();
  }

  /** Reports whether this is a trust-domain ID (no path), e.g. `spiffe://example.org`. */
  isTrustDomainId(): boolean {
    return this.path === "";
  }

  /** Reports whether `o` is the same ID (trust domain and case-sensitive path). */
  equals(o: SpiffeId): boolean {
    return this.trustDomain.equals(o.trustDomain) && this.path === o.path;
  }

  /** Reports whether the ID belongs to trust domain `td`. */
  memberOf(td: TrustDomain): boolean {
    return this.trustDomain.equals(td);
  }
}

/** Result of {@link tryParseSpiffeId}: the ID, or the error {@link parseSpiffeId} would throw. */
export type TryParseSpiffeIdResult = { ok: true; id: SpiffeId } | { ok: false; error: MeshidError };

/**
 * Parses a SPIFFE ID string by hand (no URL normalisation). The scheme is case-insensitive; the
 * trust domain must be lowercase; the path is case-sensitive. Accepts IDs up to 2048 bytes.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.id.invalid` with `details.rule` one of
 *   `empty`, `too-long`, `scheme`, `query`, `fragment`, `userinfo`, `port`, `empty-trust-domain`,
 *   `percent-encoding`, `trust-domain-chars`, `trust-domain-too-long`, `empty-segment`,
 *   `dot-segment`, `trailing-slash`, `path-chars`.
 */
export function parseSpiffeId(id: string): SpiffeId {
  const fail = (rule: string, reason: string) =>
    invalid(SpiffeErrorCode.idInvalid, rule, `invalid SPIFFE ID ${quote(id)}: ${reason}`);
  if (id === "") {
    throw fail("empty", "ID is empty");
  }
  const bytes = byteLength(id);
  if (bytes > MAX_SPIFFE_ID_BYTES) {
    throw fail("too-long", `ID is ${bytes} bytes, more than ${MAX_SPIFFE_ID_BYTES}`);
  }
  if (id.slice(0, SCHEME_PREFIX.length).toLowerCase() !== SCHEME_PREFIX) {
    throw fail("scheme", 'scheme must be "spiffe://"');
  }
  const rest = id.slice(SCHEME_PREFIX.length);
  const special = rest.search(/[?#]/);
  if (special >= 0) {
    if (rest[special] === "?") throw fail("query", "a query is not allowed");
    throw fail("fragment", "a fragment is not allowed");
  }
  const slash = rest.indexOf("/");
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  const tdProblem = checkTrustDomainName(authority);
  if (tdProblem !== undefined) {
    throw fail(tdProblem.rule, tdProblem.reason);
  }
  const pathProblem = checkPath(path);
  if (pathProblem !== undefined) {
    throw fail(pathProblem.rule, pathProblem.reason);
  }
  return wrapValidParts(wrapValidName(authority), path);
}

/**
 * Parses a SPIFFE ID like {@link parseSpiffeId} but returns a tagged union instead of throwing.
 * Errors other than the ones `parseSpiffeId` documents are rethrown.
 */
export function tryParseSpiffeId(s: string): TryParseSpiffeIdResult {
  try {
    return { ok: true, id: parseSpiffeId(s) };
  } catch (error) {
    if (isMeshidError(error, SpiffeErrorCode.idInvalid)) {
      return { ok: false, error };
    }
    throw error;
  }
}
