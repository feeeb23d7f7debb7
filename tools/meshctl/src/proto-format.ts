import { type meshidCaV1, meshidTypesV1 } from "@meshid/proto";
import {
  formatSelector,
  parseSelector,
  parseSpiffeId,
  validateSelector,
  type Selector,
} from "@meshid/spiffe";
import { Status } from "nice-grpc-common";

/** `spiffe://<td><path>` of a proto SpiffeId, or "" when absent. */
export function spiffeIdText(id: meshidTypesV1.SpiffeId | undefined): string {
  return id === undefined || id.trustDomain === "" ? "" : `spiffe://${id.trustDomain}${id.path}`;
}

/**
 * Parses and validates a SPIFFE ID given on the command line into its proto form.
 * @throws MeshidError `spiffe.id.invalid` / `spiffe.trust_domain.invalid` (exit code 2).
 */
export function spiffeIdToProto(text: string): meshidTypesV1.SpiffeId {
  const id = parseSpiffeId(text);
  return { trustDomain: id.trustDomain.name, path: id.path };
}

/**
 * Parses and validates `type:value` selectors (`k8s:ns:default`, `unix:uid:1000`) with the
 * same rules as the CA.
 * @throws MeshidError `spiffe.selector.*` (exit code 2).
 */
export function selectorsFromText(texts: readonly string[]): Selector[] {
  return texts.map((text) => {
    const selector = parseSelector(text);
    validateSelector(selector);
    return selector;
  });
}

/** The name of a google.rpc.Code value, e.g. `NOT_FOUND`. */
export function statusName(code: number): string {
  return Status[code] ?? `CODE_${code}`;
}

/** JSON shape of a registration entry in `--json` output. */
export interface EntryJson {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: string[];
  readonly x509SvidTtlSeconds: number;
  readonly dnsNames: string[];
  readonly admin: boolean;
  readonly hint: string;
  readonly owner: string;
  readonly revision: number;
  readonly createdAt: string | null;
  readonly updatedAt: string | null;
}

/** Converts an entry to its `--json` shape. */
export function entryJson(e: meshidTypesV1.RegistrationEntry): EntryJson {
  return {
    id: e.id,
    spiffeId: spiffeIdText(e.spiffeId),
    parentId: spiffeIdText(e.parentId),
    selectors: e.selectors.map(formatSelector),
    x509SvidTtlSeconds: e.x509SvidTtlSeconds,
    dnsNames: [...e.dnsNames],
    admin: e.admin,
    hint: e.hint,
    owner: e.owner,
    revision: e.revision,
    createdAt: e.createdAt?.toISOString() ?? null,
    updatedAt: e.updatedAt?.toISOString() ?? null,
  };
}

/** JSON shape of an agent in `--json` output. */
export function agentJson(a: meshidCaV1.Agent): Record<string, unknown> {
  return {
    id: spiffeIdText(a.id),
    attestationType: a.attestationType,
    selectors: a.selectors.map(formatSelector),
    x509SvidSerial: a.x509SvidSerial,
    x509SvidExpiresAt: a.x509SvidExpiresAt?.toISOString() ?? null,
    banned: a.banned,
    createdAt: a.createdAt?.toISOString() ?? null,
    updatedAt: a.updatedAt?.toISOString() ?? null,
  };
}

/** The lowercase state name of an authority (`prepared`, `active`, `old`). */
export function authorityStateName(state: meshidTypesV1.AuthorityState): string {
  switch (state) {
    case meshidTypesV1.AuthorityState.AUTHORITY_STATE_PREPARED:
      return "prepared";
    case meshidTypesV1.AuthorityState.AUTHORITY_STATE_ACTIVE:
      return "active";
    case meshidTypesV1.AuthorityState.AUTHORITY_STATE_OLD:
      return "old";
    default:
      return "unknown";
  }
}

/** JSON shape of an authority in `--json` output. */
export function authorityJson(a: meshidTypesV1.Authority): Record<string, unknown> {
  return {
    authorityId: a.authorityId,
    state: authorityStateName(a.state),
    notBefore: a.notBefore?.toISOString() ?? null,
    expiresAt: a.expiresAt?.toISOString() ?? null,
    tainted: a.tainted,
    upstreamAuthorityId: a.upstreamAuthorityId,
    keyType: a.keyType,
  };
}
