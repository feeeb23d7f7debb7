// Pure checks of registration entries before they reach the store. Every problem is a
// MeshidError whose message names the field, so one bad item of a batch explains itself.
import { MeshidError, isMeshidError } from "@meshid/errors";
import {
  KNOWN_SELECTOR_TYPES,
  type Selector,
  type SpiffeId,
  type TrustDomain,
  normalizeSelectors,
  parseSpiffeId,
  validateSelector,
} from "@meshid/spiffe";
import type { EntryFields, NewRegistrationEntry, RegistrationEntryUpdate } from "./types";

/** Stable error codes of entry validation; all have kind `invalid_argument`. */
export const EntryValidationCode = {
  /** The SPIFFE ID (or parent ID) is missing. */
  idMissing: "ca.entry.spiffe_id_missing",
  /** The entry's SPIFFE ID is in another trust domain. */
  foreignTrustDomain: "ca.entry.foreign_trust_domain",
  /** The entry's SPIFFE ID has no path (`spiffe://td`). */
  trustDomainId: "ca.entry.trust_domain_id",
  /** The entry's SPIFFE ID is in the namespace reserved for agents (`/meshid/agent/…`). */
  reservedId: "ca.entry.reserved_id",
  /** The parent ID is in another trust domain. */
  parentForeignTrustDomain: "ca.entry.parent_foreign_trust_domain",
  /** The entry has no selectors. */
  noSelectors: "ca.entry.no_selectors",
  /** A selector is longer than {@link MAX_SELECTOR_LENGTH}. */
  selectorTooLong: "ca.entry.selector_too_long",
  /** The entry has more selectors than allowed. */
  tooManySelectors: "ca.entry.too_many_selectors",
  /** x509SvidTtlSeconds is not an integer from 0 to {@link MAX_ENTRY_TTL_SECONDS}. */
  ttl: "ca.entry.ttl",
  /** A DNS name is not a valid lower-case hostname. */
  dnsName: "ca.entry.dns_name",
  /** The entry has more DNS names than allowed. */
  tooManyDnsNames: "ca.entry.too_many_dns_names",
  /** The hint is too long or contains control characters. */
  hint: "ca.entry.hint",
  /** The owner tag is too long or has characters outside `[A-Za-z0-9._:/-]`. */
  owner: "ca.entry.owner",
  /** `admin` is not a boolean. */
  admin: "ca.entry.admin",
  /** The entry id is not a lower-case UUID. */
  idInvalid: "ca.entry.id_invalid",
} as const;

/** Default for {@link EntryValidationLimits.maxDnsNames}. */
export const DEFAULT_MAX_DNS_NAMES = 100;
/** Default for {@link EntryValidationLimits.maxSelectors}. */
export const DEFAULT_MAX_SELECTORS = 64;
/** Default for {@link EntryValidationLimits.maxHintLength} (characters). */
export const DEFAULT_MAX_HINT_LENGTH = 1024;
/** Longest selector (`type:value`), in characters. */
export const MAX_SELECTOR_LENGTH = 1024;
/** Longest owner tag, in characters. */
export const MAX_OWNER_LENGTH = 128;
/** Largest x509SvidTtlSeconds (the proto field is an int32). */
export const MAX_ENTRY_TTL_SECONDS = 2_147_483_647;
/** Longest DNS name, in characters (RFC 1123). */
export const MAX_DNS_NAME_LENGTH = 253;

/**
 * Selector types an entry may use: the workload attestors' (`unix`, `k8s`) and the node
 * attestor `k8s_psat` (node-alias entries carry node selectors).
 */
export const ENTRY_SELECTOR_TYPES: readonly string[] = Object.freeze([
  ...KNOWN_SELECTOR_TYPES,
  "k8s_psat",
]);

/** Path prefix of agent SPIFFE IDs; entries may not mint IDs there. */
export const AGENT_ID_PATH_PREFIX = "/meshid/agent/";

/** Bounds of {@link validateNewEntry} and {@link validateEntryUpdate}. */
export interface EntryValidationLimits {
  /** Default {@link DEFAULT_MAX_DNS_NAMES}. */
  readonly maxDnsNames?: number;
  /** Default {@link DEFAULT_MAX_SELECTORS}. */
  readonly maxSelectors?: number;
  /** Default {@link DEFAULT_MAX_HINT_LENGTH} characters. */
  readonly maxHintLength?: number;
}

/** Parameters of {@link validateNewEntry} and {@link validateEntryUpdate}. */
export interface ValidateEntryParams<T> {
  readonly entry: T;
  /** The CA's trust domain: the entry and its parent must belong to it. */
  readonly trustDomain: TrustDomain;
  readonly limits?: EntryValidationLimits;
}

/** Result of validating one entry: the normalised entry, or why it is refused. */
export type EntryValidationResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: MeshidError };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const OWNER = /^[A-Za-z0-9._:/-]*$/;
// Control characters would break logs and certificate tooling.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Longest user input echoed in a message. */
const MAX_ECHO = 80;

function echo(value: string): string {
  return JSON.stringify(value.length > MAX_ECHO ? `${value.slice(0, MAX_ECHO)}…` : value);
}

function invalid(
  code: string,
  field: string,
  message: string,
  extra: Record<string, string | number | boolean> = {},
  cause?: unknown,
): MeshidError {
  return new MeshidError("invalid_argument", code, `entry ${field}: ${message}`, {
    details: { field, ...extra },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Re-raises a @meshid/spiffe error (same kind and code) with the field named. */
function rename(err: unknown, field: string): MeshidError {
  if (isMeshidError(err)) {
    return new MeshidError(err.kind, err.code, `entry ${field}: ${err.message}`, {
      details: { ...err.details, field },
      cause: err,
    });
  }
  return invalid("ca.entry.invalid", field, "is invalid", {}, err);
}

/**
 * Checks that a value is a valid lower-case UUID (`8-4-4-4-12` hex digits).
 *
 * @throws MeshidError `invalid_argument` / `ca.entry.id_invalid` naming `field` otherwise.
 */
export function checkEntryId(id: unknown, field = "id"): string {
  if (typeof id !== "string" || !UUID.test(id)) {
    throw invalid(
      EntryValidationCode.idInvalid,
      field,
      `${typeof id === "string" ? echo(id) : "value"} is not a lower-case UUID`,
    );
  }
  return id;
}

/** Re-parses a SPIFFE ID so that a hand-built or foreign object cannot slip through. */
function reparse(id: unknown, field: string): SpiffeId {
  if (id === undefined || id === null) {
    throw invalid(EntryValidationCode.idMissing, field, "is required");
  }
  try {
    // A SpiffeId (or any object) is checked through its string form.
    return parseSpiffeId(typeof id === "string" ? id : (id as { toString(): string }).toString());
  } catch (err) {
    throw rename(err, field);
  }
}

/**
 * Checks a DNS name: RFC 1123 hostname, at most 253 characters, labels of 1–63 lower-case
 * letters, digits and inner hyphens; a wildcard only as the whole first label (`*.x.y`).
 * Returns a reason when it is bad, else `undefined`.
 */
export function dnsNameProblem(name: string): string | undefined {
  if (name === "") return "is empty";
  if (name.length > MAX_DNS_NAME_LENGTH) {
    return `is ${name.length} characters, more than ${MAX_DNS_NAME_LENGTH}`;
  }
  if (name !== name.toLowerCase()) return "must be lower-case";
  const labels = name.split(".");
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] ?? "";
    if (label === "*" && i === 0 && labels.length > 1) continue;
    if (label.includes("*")) {
      return "a wildcard is allowed only as the whole first label (*.example.org)";
    }
    if (label === "") return "has an empty label";
    if (label.length > 63) return `label ${echo(label)} is longer than 63 characters`;
    if (!DNS_LABEL.test(label)) {
      return `label ${echo(label)} must be a-z, 0-9 and inner "-"`;
    }
  }
  return undefined;
}

function checkSelectors(selectors: unknown, maxSelectors: number): Selector[] {
  if (!Array.isArray(selectors) || selectors.length === 0) {
    throw invalid(
      EntryValidationCode.noSelectors,
      "selectors",
      "at least one selector is required",
    );
  }
  const list = selectors as readonly Selector[];
  list.forEach((sel, i) => {
    const length = String(sel?.type).length + String(sel?.value).length + 1;
    if (length > MAX_SELECTOR_LENGTH) {
      throw invalid(
        EntryValidationCode.selectorTooLong,
        `selectors[${i}]`,
        `is ${length} characters, more than ${MAX_SELECTOR_LENGTH}`,
        { limit: MAX_SELECTOR_LENGTH },
      );
    }
    try {
      validateSelector(sel, { allowedTypes: ENTRY_SELECTOR_TYPES });
    } catch (err) {
      throw rename(err, `selectors[${i}]`);
    }
  });
  const normalised = normalizeSelectors(list);
  if (normalised.length > maxSelectors) {
    throw invalid(
      EntryValidationCode.tooManySelectors,
      "selectors",
      `${normalised.length} selectors, more than ${maxSelectors}`,
      { limit: maxSelectors },
    );
  }
  return normalised;
}

function checkDnsNames(dnsNames: unknown, maxDnsNames: number): string[] {
  if (dnsNames === undefined) return [];
  if (!Array.isArray(dnsNames)) {
    throw invalid(EntryValidationCode.dnsName, "dnsNames", "must be a list of hostnames");
  }
  const unique = [...new Set(dnsNames as unknown[])];
  if (unique.length > maxDnsNames) {
    throw invalid(
      EntryValidationCode.tooManyDnsNames,
      "dnsNames",
      `${unique.length} names, more than ${maxDnsNames}`,
      { limit: maxDnsNames },
    );
  }
  unique.forEach((name, i) => {
    const problem = typeof name === "string" ? dnsNameProblem(name) : "must be a string";
    if (problem !== undefined) {
      throw invalid(
        EntryValidationCode.dnsName,
        `dnsNames[${i}]`,
        `${typeof name === "string" ? echo(name) : "value"} ${problem}`,
      );
    }
  });
  return unique as string[];
}

function checkFields(
  entry: EntryFields,
  trustDomain: TrustDomain,
  limits: EntryValidationLimits,
): EntryFields {
  const spiffeId = reparse(entry.spiffeId, "spiffeId");
  if (!spiffeId.memberOf(trustDomain)) {
    throw invalid(
      EntryValidationCode.foreignTrustDomain,
      "spiffeId",
      `${echo(spiffeId.toString())} is not in trust domain ${echo(trustDomain.name)}`,
    );
  }
  if (spiffeId.isTrustDomainId()) {
    throw invalid(
      EntryValidationCode.trustDomainId,
      "spiffeId",
      `${echo(spiffeId.toString())} is a trust-domain ID; an entry needs a path`,
    );
  }
  if (spiffeId.path.startsWith(AGENT_ID_PATH_PREFIX)) {
    throw invalid(
      EntryValidationCode.reservedId,
      "spiffeId",
      `${echo(spiffeId.toString())} is in ${AGENT_ID_PATH_PREFIX}, which is reserved for agents`,
    );
  }
  const parentId = reparse(entry.parentId, "parentId");
  if (!parentId.memberOf(trustDomain)) {
    throw invalid(
      EntryValidationCode.parentForeignTrustDomain,
      "parentId",
      `${echo(parentId.toString())} is not in trust domain ${echo(trustDomain.name)}`,
    );
  }
  const selectors = checkSelectors(entry.selectors, limits.maxSelectors ?? DEFAULT_MAX_SELECTORS);
  const ttl = entry.x509SvidTtlSeconds ?? 0;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_ENTRY_TTL_SECONDS) {
    throw invalid(
      EntryValidationCode.ttl,
      "x509SvidTtlSeconds",
      `${String(ttl)} must be an integer from 0 (mesh svidTTL) to ${MAX_ENTRY_TTL_SECONDS}`,
    );
  }
  const dnsNames = checkDnsNames(entry.dnsNames, limits.maxDnsNames ?? DEFAULT_MAX_DNS_NAMES);
  const admin = entry.admin ?? false;
  if (typeof admin !== "boolean") {
    throw invalid(EntryValidationCode.admin, "admin", "must be true or false");
  }
  const hint = entry.hint ?? "";
  const maxHint = limits.maxHintLength ?? DEFAULT_MAX_HINT_LENGTH;
  if (typeof hint !== "string" || hint.length > maxHint || CONTROL_CHARS.test(hint)) {
    throw invalid(
      EntryValidationCode.hint,
      "hint",
      `must be a string of at most ${maxHint} characters without control characters`,
      { limit: maxHint },
    );
  }
  const owner = entry.owner ?? "";
  if (typeof owner !== "string" || owner.length > MAX_OWNER_LENGTH || !OWNER.test(owner)) {
    throw invalid(
      EntryValidationCode.owner,
      "owner",
      `must be at most ${MAX_OWNER_LENGTH} characters of A-Z, a-z, 0-9, ".", "_", ":", "/", "-"`,
      { limit: MAX_OWNER_LENGTH },
    );
  }
  return {
    spiffeId,
    parentId,
    selectors,
    x509SvidTtlSeconds: ttl,
    dnsNames,
    admin,
    hint,
    owner,
  };
}

function attempt<T>(check: () => T): EntryValidationResult<T> {
  try {
    return { ok: true, value: check() };
  } catch (err) {
    if (isMeshidError(err)) return { ok: false, error: err };
    throw err;
  }
}

/**
 * Validates and normalises a new entry: SPIFFE ID in `trustDomain`, not a trust-domain ID and
 * not under `/meshid/agent/`; parent in `trustDomain`; 1 to `maxSelectors` selectors valid for
 * {@link ENTRY_SELECTOR_TYPES} (deduplicated and sorted); TTL an integer ≥ 0; DNS names valid
 * lower-case hostnames (deduplicated, order kept); hint and owner bounded; `id`, if given, a
 * lower-case UUID. Never throws for bad input: the error is returned.
 */
export function validateNewEntry(
  params: ValidateEntryParams<NewRegistrationEntry>,
): EntryValidationResult<NewRegistrationEntry> {
  const { entry, trustDomain, limits = {} } = params;
  return attempt(() => {
    const id = entry.id === undefined ? undefined : checkEntryId(entry.id);
    const fields = checkFields(entry, trustDomain, limits);
    return id === undefined ? fields : { id, ...fields };
  });
}

/**
 * Validates and normalises an entry update: like {@link validateNewEntry}, with a required
 * lower-case UUID `id`. Never throws for bad input: the error is returned.
 */
export function validateEntryUpdate(
  params: ValidateEntryParams<RegistrationEntryUpdate>,
): EntryValidationResult<RegistrationEntryUpdate> {
  const { entry, trustDomain, limits = {} } = params;
  return attempt(() => {
    const id = checkEntryId(entry.id);
    return { id, ...checkFields(entry, trustDomain, limits) };
  });
}
