import { SpiffeErrorCode, invalid, quote } from "./errors";

/** Longest trust domain name allowed, in bytes. */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;

/**
 * Wraps an already validated trust domain name without checking it. Package-internal: not
 * exported from the index, so callers always go through {@link parseTrustDomain}.
 */
export let wrapValidName: (name: string) => TrustDomain;

/**
 * A SPIFFE trust domain such as `example.org`. Create it with {@link parseTrustDomain}; the name
 * is always valid (lowercase `[a-z0-9._-]`, 1–255 bytes).
 */
export class TrustDomain {
  /** The trust domain name, e.g. `example.org`. */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  static {
    wrapValidName = (name) => new TrustDomain(name);
  }

  /** Returns the trust domain's SPIFFE ID string, e.g. `spiffe://example.org`. */
  idString(): string {
    return `spiffe://${this.name}`;
  }

  /** Returns the bare name, e.g. `example.org`. */
  toString(): string {
    return this.name;
  }

  /** Returns the bare name so that JSON output shows the trust domain as a string. */
  toJSON(): string {
    return this.name;
  }

  /** Reports whether `other` names the same trust domain. */
  equals(other: TrustDomain): boolean {
    return this.name === other.name;
  }
}

/** Outcome of checking a trust domain name: `undefined` when valid, else the rule and text. */
export interface TrustDomainProblem {
  rule: string;
  reason: string;
}

/**
 * Checks a bare trust domain name (the authority of a SPIFFE ID) and returns the first broken
 * rule, or `undefined` when it is valid. Shared by the ID and trust-domain parsers.
 */
export function checkTrustDomainName(name: string): TrustDomainProblem | undefined {
  if (name.length === 0) {
    return { rule: "empty-trust-domain", reason: "trust domain is empty" };
  }
  if (name.includes("@")) {
    return { rule: "userinfo", reason: "user info is not allowed" };
  }
  if (name.includes(":")) {
    return { rule: "port", reason: "a port is not allowed" };
  }
  if (name.includes("%")) {
    return { rule: "percent-encoding", reason: "percent-encoding is not allowed" };
  }
  for (const ch of name) {
    if (!TRUST_DOMAIN_CHAR.test(ch)) {
      return {
        rule: "trust-domain-chars",
        reason: `trust domain character ${quote(ch)} is not allowed (only lowercase a-z, 0-9, ".", "-", "_")`,
      };
    }
  }
  if (name.length > MAX_TRUST_DOMAIN_BYTES) {
    return {
      rule: "trust-domain-too-long",
      reason: `trust domain is ${name.length} bytes, more than ${MAX_TRUST_DOMAIN_BYTES}`,
    };
  }
  return undefined;
}

/**
 * Parses a trust domain given either as a bare name (`example.org`) or as a trust-domain SPIFFE
 * ID (`spiffe://example.org`, scheme case-insensitive).
 *
 * @throws MeshidError `invalid_argument` / `spiffe.trust_domain.invalid` with `details.rule`
 *   (e.g. `trust-domain-chars`, `trust-domain-too-long`, `empty-trust-domain`, `port`, `path`).
 */
export function parseTrustDomain(name: string): TrustDomain {
  const fail = (rule: string, reason: string) =>
    invalid(
      SpiffeErrorCode.trustDomainInvalid,
      rule,
      `invalid trust domain ${quote(name)}: ${reason}`,
    );
  let bare = name;
  if (name.includes("://")) {
    if (!/^spiffe:\/\//i.test(name)) {
      throw fail("scheme", 'scheme must be "spiffe://"');
    }
    bare = name.slice("spiffe://".length);
    const end = bare.search(/[/?#]/);
    if (end >= 0) {
      const rest = bare.slice(end);
      if (rest.startsWith("?")) throw fail("query", "a query is not allowed");
      if (rest.startsWith("#")) throw fail("fragment", "a fragment is not allowed");
      throw fail("path", "a trust domain has no path");
    }
  }
  const problem = checkTrustDomainName(bare);
  if (problem !== undefined) {
    throw fail(problem.rule, problem.reason);
  }
  return wrapValidName(bare);
}
