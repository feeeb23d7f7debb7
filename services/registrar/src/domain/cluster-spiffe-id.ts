// ClusterSPIFFEID resources (meshid.io/v1alpha1, cluster-scoped) turned into checked,
// compiled templates, and the built-in default that reproduces NGINX Service Mesh's identities.
import { parseDuration } from "@meshid/config";
import { MATCH_ALL, parseLabelSelector, type LabelSelector } from "./label-selector";
import { compileTemplate, type CompiledTemplate } from "./template";

/** API group/version of ClusterSPIFFEID. */
export const CLUSTER_SPIFFE_ID_API_VERSION = "meshid.io/v1alpha1";
/** Kind of the resource. */
export const CLUSTER_SPIFFE_ID_KIND = "ClusterSPIFFEID";
/** Plural (REST path segment). */
export const CLUSTER_SPIFFE_ID_PLURAL = "clusterspiffeids";

/** The `spec` fields a ClusterSPIFFEID may have; any other is refused. */
export const CLUSTER_SPIFFE_ID_SPEC_FIELDS: readonly string[] = Object.freeze([
  "spiffeIDTemplate",
  "podSelector",
  "namespaceSelector",
  "dnsNameTemplates",
  "ttl",
  "hint",
]);

/** Source of the default SPIFFE ID template: `spiffe://<td>/ns/<ns>/sa/<sa>`. */
export const DEFAULT_SPIFFE_ID_TEMPLATE =
  "spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}";
/** Sources of the default DNS name templates: the pod name and `<sa>.<ns>.svc`. */
export const DEFAULT_DNS_NAME_TEMPLATES: readonly string[] = Object.freeze([
  "{{ .PodMeta.Name }}",
  "{{ .PodSpec.ServiceAccountName }}.{{ .PodMeta.Namespace }}.svc",
]);
/** Name the default template goes by in logs and metrics. */
export const DEFAULT_TEMPLATE_NAME = "(default)";
/** Longest TTL a resource may ask for (the CA's int32 field), in seconds. */
export const MAX_TTL_SECONDS = 2_147_483_647;
/** Longest hint, in characters (the CA's limit). */
export const MAX_HINT_LENGTH = 1024;
/** Most DNS name templates per resource. */
export const MAX_DNS_NAME_TEMPLATES = 50;

/** A usable identity template. */
export interface IdentityTemplate {
  /** The resource name, or {@link DEFAULT_TEMPLATE_NAME}. */
  readonly name: string;
  /** The resource UID (for Events); empty for the default. */
  readonly uid: string;
  /** The resource's resourceVersion: a changed resource reports its problems afresh. */
  readonly revision: string;
  readonly spiffeId: CompiledTemplate;
  readonly podSelector: LabelSelector;
  readonly namespaceSelector: LabelSelector;
  readonly dnsNames: readonly CompiledTemplate[];
  /** Also add `<svc>.<ns>.svc` for each Service selecting the pod (the default does). */
  readonly serviceDnsNames: boolean;
  /** 0 = the mesh-wide svidTTL. */
  readonly ttlSeconds: number;
  readonly hint: string;
}

/** Outcome of {@link parseClusterSpiffeId}. */
export type ParseClusterSpiffeIdResult =
  | { readonly ok: true; readonly template: IdentityTemplate }
  | {
      readonly ok: false;
      readonly name: string;
      readonly uid: string;
      readonly revision: string;
      readonly error: string;
    };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function compiled(source: string, field: string): CompiledTemplate | string {
  const result = compileTemplate(source);
  return result.ok ? result.template : `${field}: ${result.error}`;
}

function parseTtl(value: unknown): number | string {
  if (value === undefined || value === null) return 0;
  let seconds: number;
  if (typeof value === "number") seconds = value;
  else if (typeof value === "string") {
    try {
      seconds = parseDuration(value);
    } catch (err) {
      return `ttl: ${(err as Error).message}`;
    }
  } else return "ttl must be a duration string such as 1h";
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TTL_SECONDS) {
    return `ttl must be whole seconds from 0 to ${MAX_TTL_SECONDS}`;
  }
  return seconds;
}

/**
 * Checks and compiles one ClusterSPIFFEID object as read from the API. Never throws: a
 * malformed object, an unknown spec field or a template naming an unknown field is an error
 * result (reported as a `TemplateRenderFailed` Event on the resource).
 */
export function parseClusterSpiffeId(object: unknown): ParseClusterSpiffeIdResult {
  const meta = isRecord(object) && isRecord(object.metadata) ? object.metadata : {};
  const name = typeof meta.name === "string" ? meta.name : "";
  const uid = typeof meta.uid === "string" ? meta.uid : "";
  const revision = typeof meta.resourceVersion === "string" ? meta.resourceVersion : "";
  const fail = (error: string): ParseClusterSpiffeIdResult => ({
    ok: false,
    name,
    uid,
    revision,
    error,
  });
  if (name === "") return fail("metadata.name is missing");
  const spec = isRecord(object) ? object.spec : undefined;
  if (!isRecord(spec)) return fail("spec is missing");
  const unknown = Object.keys(spec).filter((k) => !CLUSTER_SPIFFE_ID_SPEC_FIELDS.includes(k));
  if (unknown.length > 0) {
    return fail(
      `unknown spec field(s) ${unknown.map((k) => `"${k}"`).join(", ")} ` +
        `(known: ${CLUSTER_SPIFFE_ID_SPEC_FIELDS.join(", ")})`,
    );
  }
  if (typeof spec.spiffeIDTemplate !== "string" || spec.spiffeIDTemplate.trim() === "") {
    return fail("spec.spiffeIDTemplate is required");
  }
  const spiffeId = compiled(spec.spiffeIDTemplate, "spec.spiffeIDTemplate");
  if (typeof spiffeId === "string") return fail(spiffeId);
  const podSelector = parseLabelSelector(spec.podSelector, "spec.podSelector");
  if (typeof podSelector === "string") return fail(podSelector);
  const namespaceSelector = parseLabelSelector(spec.namespaceSelector, "spec.namespaceSelector");
  if (typeof namespaceSelector === "string") return fail(namespaceSelector);
  const rawDns = spec.dnsNameTemplates ?? [];
  if (!Array.isArray(rawDns) || !rawDns.every((t) => typeof t === "string")) {
    return fail("spec.dnsNameTemplates must be a list of strings");
  }
  if (rawDns.length > MAX_DNS_NAME_TEMPLATES) {
    return fail(`spec.dnsNameTemplates has more than ${MAX_DNS_NAME_TEMPLATES} items`);
  }
  const dnsNames: CompiledTemplate[] = [];
  for (const [i, source] of rawDns.entries()) {
    const t = compiled(source, `spec.dnsNameTemplates[${i}]`);
    if (typeof t === "string") return fail(t);
    dnsNames.push(t);
  }
  const ttlSeconds = parseTtl(spec.ttl);
  if (typeof ttlSeconds === "string") return fail(`spec.${ttlSeconds}`);
  const hint = spec.hint ?? "";
  if (typeof hint !== "string" || hint.length > MAX_HINT_LENGTH) {
    return fail(`spec.hint must be a string of at most ${MAX_HINT_LENGTH} characters`);
  }
  return {
    ok: true,
    template: {
      name,
      uid,
      revision,
      spiffeId,
      podSelector,
      namespaceSelector,
      dnsNames,
      serviceDnsNames: false,
      ttlSeconds,
      hint,
    },
  };
}

function mustCompile(source: string): CompiledTemplate {
  const result = compileTemplate(source);
  if (!result.ok) throw new Error(`built-in template does not compile: ${result.error}`);
  return result.template;
}

/**
 * The built-in template used while no ClusterSPIFFEID exists: ID
 * `spiffe://<td>/ns/<ns>/sa/<sa>`, DNS names the pod name, `<sa>.<ns>.svc` and
 * `<svc>.<ns>.svc` of each selecting Service, the mesh-wide TTL, no hint.
 */
export const DEFAULT_IDENTITY_TEMPLATE: IdentityTemplate = Object.freeze({
  name: DEFAULT_TEMPLATE_NAME,
  uid: "",
  revision: "",
  spiffeId: mustCompile(DEFAULT_SPIFFE_ID_TEMPLATE),
  podSelector: MATCH_ALL,
  namespaceSelector: MATCH_ALL,
  dnsNames: DEFAULT_DNS_NAME_TEMPLATES.map(mustCompile),
  serviceDnsNames: true,
  ttlSeconds: 0,
  hint: "",
});
