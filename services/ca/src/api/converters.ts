// Conversions between the CA's domain types and its protobuf messages. `xFromProto` functions
// validate what they read and throw precise invalid_argument MeshidErrors.
import { MeshidError, isMeshidError } from "@meshid/errors";
import { statusForErrorKind } from "@meshid/grpc-kit";
import { meshidCaV1, meshidTypesV1 } from "@meshid/proto";
import {
  KNOWN_SELECTOR_TYPES,
  SpiffeId,
  createBundle,
  normalizeSelectors,
  validateSelector,
  type Bundle,
  type Selector,
} from "@meshid/spiffe";
import type {
  AttestedAgent,
  AuthorityState,
  BatchItemResult,
  BundleRecord,
  EntryFields,
  JoinToken,
  NewRegistrationEntry,
  RegistrationEntry,
  RegistrationEntryUpdate,
} from "../domain/types";
import type { ListAgentsParams, ListEntriesParams } from "../ports";
import type { AuthorityView, IssuedSvid } from "./deps";

/** Error codes of the conversion layer (all invalid_argument). */
export const ConverterErrorCode = {
  fieldMissing: "ca.api.field_missing",
  spiffeIdInvalid: "ca.api.spiffe_id_invalid",
  selectorInvalid: "ca.api.selector_invalid",
  idInvalid: "ca.api.id_invalid",
  ttlInvalid: "ca.api.ttl_invalid",
  pageSizeInvalid: "ca.api.page_size_invalid",
  dnsNameInvalid: "ca.api.dns_name_invalid",
  fieldInvalid: "ca.api.field_invalid",
} as const;

/** Selector types accepted on registration entries: workload attestors and node attestors. */
export const ENTRY_SELECTOR_TYPES: readonly string[] = Object.freeze([
  ...KNOWN_SELECTOR_TYPES,
  "k8s_psat",
  "join_token",
]);

/** Largest ListEntries / ListAgents page size. */
export const MAX_PAGE_SIZE = 1000;
/** Largest x509_svid_ttl_seconds of an entry (one year). */
export const MAX_ENTRY_TTL_SECONDS = 365 * 24 * 3600;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DNS_NAME =
  /^(?=.{1,253}$)(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function invalid(code: string, message: string, cause?: unknown): MeshidError {
  return new MeshidError("invalid_argument", code, message, cause === undefined ? {} : { cause });
}

/** Converts a SPIFFE ID to its proto form. */
export function spiffeIdToProto(id: SpiffeId): meshidTypesV1.SpiffeId {
  return { trustDomain: id.trustDomain.name, path: id.path };
}

/**
 * Reads a required SPIFFE ID field named `field`.
 * @throws MeshidError invalid_argument `ca.api.field_missing` / `ca.api.spiffe_id_invalid`.
 */
export function spiffeIdFromProto(p: meshidTypesV1.SpiffeId | undefined, field: string): SpiffeId {
  if (p === undefined || (p.trustDomain === "" && p.path === "")) {
    throw invalid(ConverterErrorCode.fieldMissing, `${field} is required`);
  }
  try {
    return SpiffeId.fromParts(p.trustDomain, p.path);
  } catch (err) {
    throw invalid(
      ConverterErrorCode.spiffeIdInvalid,
      `${field}: ${err instanceof Error ? err.message : "invalid SPIFFE ID"}`,
      err,
    );
  }
}

/** Reads an optional SPIFFE ID filter: undefined (or empty) → undefined. */
export function optionalSpiffeIdFromProto(
  p: meshidTypesV1.SpiffeId | undefined,
  field: string,
): SpiffeId | undefined {
  if (p === undefined || (p.trustDomain === "" && p.path === "")) return undefined;
  return spiffeIdFromProto(p, field);
}

/** Converts selectors to proto. */
export function selectorsToProto(selectors: readonly Selector[]): meshidTypesV1.Selector[] {
  return selectors.map((s) => ({ type: s.type, value: s.value }));
}

/**
 * Reads and validates selectors (types in {@link ENTRY_SELECTOR_TYPES}); returns them normalised.
 * @throws MeshidError invalid_argument `ca.api.selector_invalid`, or `ca.api.field_missing` when
 *   `required` and empty.
 */
export function selectorsFromProto(
  list: readonly meshidTypesV1.Selector[],
  field: string,
  required: boolean,
): Selector[] {
  if (required && list.length === 0) {
    throw invalid(ConverterErrorCode.fieldMissing, `${field} must not be empty`);
  }
  const out: Selector[] = [];
  list.forEach((s, i) => {
    const selector = { type: s.type, value: s.value };
    try {
      validateSelector(selector, { allowedTypes: ENTRY_SELECTOR_TYPES });
    } catch (err) {
      throw invalid(
        ConverterErrorCode.selectorInvalid,
        `${field}[${i}]: ${err instanceof Error ? err.message : "invalid selector"}`,
        err,
      );
    }
    out.push(selector);
  });
  return normalizeSelectors(out);
}

/** Checks that `id` is a lowercase UUID. @throws `ca.api.id_invalid` / `ca.api.field_missing`. */
export function entryIdFromProto(id: string, field: string): string {
  if (id === "") throw invalid(ConverterErrorCode.fieldMissing, `${field} is required`);
  if (!UUID.test(id)) throw invalid(ConverterErrorCode.idInvalid, `${field} must be a UUID`);
  return id;
}

function ttlFromProto(ttl: number, field: string): number {
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_ENTRY_TTL_SECONDS) {
    throw invalid(
      ConverterErrorCode.ttlInvalid,
      `${field} must be between 0 and ${MAX_ENTRY_TTL_SECONDS} seconds`,
    );
  }
  return ttl;
}

/** Validates DNS names (lowercase, optional leading wildcard). */
export function dnsNamesFromProto(names: readonly string[], field: string): string[] {
  names.forEach((n, i) => {
    if (!DNS_NAME.test(n)) {
      throw invalid(ConverterErrorCode.dnsNameInvalid, `${field}[${i}] is not a valid DNS name`);
    }
  });
  return [...names];
}

function entryFieldsFromProto(p: meshidTypesV1.RegistrationEntry): EntryFields {
  return {
    spiffeId: spiffeIdFromProto(p.spiffeId, "spiffe_id"),
    parentId: spiffeIdFromProto(p.parentId, "parent_id"),
    selectors: selectorsFromProto(p.selectors, "selectors", true),
    x509SvidTtlSeconds: ttlFromProto(p.x509SvidTtlSeconds, "x509_svid_ttl_seconds"),
    dnsNames: dnsNamesFromProto(p.dnsNames, "dns_names"),
    admin: p.admin,
    hint: p.hint,
    owner: p.owner,
  };
}

/** Reads a new entry; `id` is optional but must be a UUID when given. */
export function newEntryFromProto(p: meshidTypesV1.RegistrationEntry): NewRegistrationEntry {
  const fields = entryFieldsFromProto(p);
  return p.id === "" ? fields : { ...fields, id: entryIdFromProto(p.id, "id") };
}

/** Reads an entry update; `id` is required. */
export function entryUpdateFromProto(p: meshidTypesV1.RegistrationEntry): RegistrationEntryUpdate {
  const id = entryIdFromProto(p.id, "id");
  return { ...entryFieldsFromProto(p), id };
}

/** Converts a stored entry to proto. */
export function entryToProto(e: RegistrationEntry): meshidTypesV1.RegistrationEntry {
  return {
    id: e.id,
    spiffeId: spiffeIdToProto(e.spiffeId),
    parentId: spiffeIdToProto(e.parentId),
    selectors: selectorsToProto(e.selectors),
    x509SvidTtlSeconds: e.x509SvidTtlSeconds,
    dnsNames: [...e.dnsNames],
    admin: e.admin,
    hint: e.hint,
    revision: e.revision,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
    owner: e.owner,
  };
}

/** Reads the domain entry back from proto (round trip of {@link entryToProto}). */
export function entryFromProto(p: meshidTypesV1.RegistrationEntry): RegistrationEntry {
  return {
    ...entryFieldsFromProto(p),
    id: entryIdFromProto(p.id, "id"),
    revision: p.revision,
    createdAt: p.createdAt ?? new Date(0),
    updatedAt: p.updatedAt ?? new Date(0),
  };
}

function pageSizeFromProto(pageSize: number): number | undefined {
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
    throw invalid(
      ConverterErrorCode.pageSizeInvalid,
      `page_size must be between 0 and ${MAX_PAGE_SIZE}`,
    );
  }
  return pageSize === 0 ? undefined : pageSize;
}

/** Reads ListEntries filters and paging. */
export function listEntriesParamsFromProto(req: meshidCaV1.ListEntriesRequest): ListEntriesParams {
  const pageSize = pageSizeFromProto(req.pageSize);
  const byParent = optionalSpiffeIdFromProto(req.byParentId, "by_parent_id");
  const bySpiffe = optionalSpiffeIdFromProto(req.bySpiffeId, "by_spiffe_id");
  const selectors =
    req.bySelectors.length === 0
      ? undefined
      : selectorsFromProto(req.bySelectors, "by_selectors", false);
  // UNSPECIFIED and EXACT both mean exact.
  const match =
    req.selectorMatch === meshidCaV1.SelectorMatch.SELECTOR_MATCH_SUBSET ? "subset" : "exact";
  return {
    ...(pageSize === undefined ? {} : { pageSize }),
    ...(req.pageToken === "" ? {} : { pageToken: req.pageToken }),
    ...(byParent === undefined ? {} : { byParentId: byParent.toString() }),
    ...(bySpiffe === undefined ? {} : { bySpiffeId: bySpiffe.toString() }),
    ...(selectors === undefined ? {} : { bySelectors: { selectors, match } }),
    ...(req.byOwner === "" ? {} : { byOwner: req.byOwner }),
  };
}

/** Reads ListAgents filters and paging. */
export function listAgentsParamsFromProto(req: meshidCaV1.ListAgentsRequest): ListAgentsParams {
  const pageSize = pageSizeFromProto(req.pageSize);
  return {
    ...(pageSize === undefined ? {} : { pageSize }),
    ...(req.pageToken === "" ? {} : { pageToken: req.pageToken }),
    ...(req.byAttestationType === "" ? {} : { byAttestationType: req.byAttestationType }),
    ...(req.onlyBanned ? { onlyBanned: true } : {}),
  };
}

/** Converts an agent to proto. */
export function agentToProto(a: AttestedAgent): meshidCaV1.Agent {
  return {
    id: spiffeIdToProto(a.spiffeId),
    attestationType: a.attestationType,
    selectors: selectorsToProto(a.selectors),
    x509SvidSerial: a.x509SvidSerial,
    x509SvidExpiresAt: a.x509SvidExpiresAt,
    banned: a.banned,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
  };
}

/** Converts a join token to proto. */
export function joinTokenToProto(t: JoinToken): meshidCaV1.JoinToken {
  return { token: t.token, expiresAt: t.expiresAt };
}

/** Converts a signed SVID to proto. */
export function issuedSvidToProto(s: IssuedSvid): meshidTypesV1.X509Svid {
  return {
    spiffeId: spiffeIdToProto(s.spiffeId),
    certChain: s.certChainDer.map((d) => Buffer.from(d)),
    expiresAt: s.expiresAt,
    serial: s.serialHex,
    hint: s.hint,
  };
}

/** Converts the stored bundle to proto. */
export function bundleToProto(b: BundleRecord): meshidTypesV1.Bundle {
  return {
    trustDomain: b.trustDomain,
    x509Authorities: b.x509Authorities.map((a) => ({
      asn1: Buffer.from(a.certDer),
      tainted: a.tainted,
    })),
    jwtAuthorities: [],
    refreshHintSeconds: b.refreshHintSeconds,
    sequenceNumber: b.sequenceNumber,
  };
}

/** Converts the stored bundle to a @meshid/spiffe Bundle (for PEM and JWKS). */
export function bundleRecordToSpiffeBundle(b: BundleRecord): Bundle {
  return createBundle({
    trustDomain: b.trustDomain,
    x509Authorities: b.x509Authorities.map((a) => a.certDer),
    sequenceNumber: b.sequenceNumber,
    refreshHintSeconds: b.refreshHintSeconds,
  });
}

const STATE_TO_PROTO: Readonly<Record<AuthorityState, meshidTypesV1.AuthorityState>> = {
  prepared: meshidTypesV1.AuthorityState.AUTHORITY_STATE_PREPARED,
  active: meshidTypesV1.AuthorityState.AUTHORITY_STATE_ACTIVE,
  old: meshidTypesV1.AuthorityState.AUTHORITY_STATE_OLD,
};

/** Converts an authority view to proto. */
export function authorityToProto(a: AuthorityView): meshidTypesV1.Authority {
  return {
    authorityId: a.authorityId,
    state: STATE_TO_PROTO[a.state],
    notBefore: a.notBefore,
    expiresAt: a.notAfter,
    tainted: a.tainted,
    upstreamAuthorityId: a.upstreamAuthorityId,
    keyType: a.keyType,
  };
}

/** Reads a required authority id (lowercase hex SKI). */
export function authorityIdFromProto(id: string): string {
  if (id === "") throw invalid(ConverterErrorCode.fieldMissing, "authority_id is required");
  if (!/^[0-9a-f]{2,128}$/.test(id)) {
    throw invalid(ConverterErrorCode.idInvalid, "authority_id must be lowercase hex");
  }
  return id;
}

/** The OK item status. */
export const OK_ITEM_STATUS: meshidCaV1.ItemStatus = Object.freeze({
  code: 0,
  message: "",
  errorCode: "",
});

/**
 * Converts an error to an ItemStatus: a MeshidError keeps its kind's status, message and code;
 * anything else becomes INTERNAL "internal error" (never leaking internals).
 */
export function itemStatusFromError(err: unknown): meshidCaV1.ItemStatus {
  if (isMeshidError(err) && err.kind !== "internal") {
    return { code: statusForErrorKind(err.kind), message: err.message, errorCode: err.code };
  }
  return {
    code: statusForErrorKind("internal"),
    message: "internal error",
    errorCode: isMeshidError(err) ? err.code : "",
  };
}

/** Converts a batch item result to `{ status, value? }`. */
export function itemStatusFromResult<T>(r: BatchItemResult<T>): meshidCaV1.ItemStatus {
  return r.ok ? OK_ITEM_STATUS : itemStatusFromError(r.error);
}
