import { MeshidError } from "@meshid/errors";

/** Stable error codes raised by `@meshid/spiffe`; all have kind `invalid_argument`. */
export const SpiffeErrorCode = {
  /** A SPIFFE ID string or its parts break the SPIFFE ID rules. */
  idInvalid: "spiffe.id.invalid",
  /** A trust domain name breaks the trust-domain rules. */
  trustDomainInvalid: "spiffe.trust_domain.invalid",
  /** A selector is malformed or has a bad value for its key. */
  selectorInvalid: "spiffe.selector.invalid",
  /** A selector's type is not among the allowed types. */
  selectorUnknownType: "spiffe.selector.unknown_type",
  /** A trust bundle (PEM, JWKS, DER or parameters) is invalid. */
  bundleInvalid: "spiffe.bundle.invalid",
  /** A buffer of concatenated DER certificates is malformed. */
  derInvalid: "spiffe.der.invalid",
  /** An X509-SVID chain fails validation. */
  svidInvalid: "spiffe.svid.invalid",
} as const;

/** Longest quoted input echoed back in an error message. */
const MAX_QUOTED_CHARS = 120;

/** Quotes user input for an error message, shortening very long values. */
export function quote(value: string): string {
  const shown = value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}…` : value;
  return JSON.stringify(shown);
}

/** Builds an `invalid_argument` MeshidError carrying `details.rule`. */
export function invalid(
  code: string,
  rule: string,
  message: string,
  extra: Record<string, string | number | boolean> = {},
  cause?: unknown,
): MeshidError {
  return new MeshidError("invalid_argument", code, `${message} (${rule})`, {
    details: { rule, ...extra },
    ...(cause === undefined ? {} : { cause }),
  });
}
