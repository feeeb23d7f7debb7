// The MeshConfig resource shape (`meshid.io/v1alpha1`, kind MeshConfig), shared by the
// Kubernetes store and the file store (the file holds the same YAML `kubectl apply` takes).
import type { MeshConfigUpdate } from "../domain/mesh-config";

/** API group of the MeshConfig resource. */
export const MESH_CONFIG_GROUP = "meshid.io";
/** API version of the MeshConfig resource. */
export const MESH_CONFIG_VERSION = "v1alpha1";
/** Plural (REST resource) of the MeshConfig resource. */
export const MESH_CONFIG_PLURAL = "meshconfigs";
/** Kind of the MeshConfig resource. */
export const MESH_CONFIG_KIND = "MeshConfig";
/** Default name of the singleton. */
export const DEFAULT_MESH_CONFIG_NAME = "meshid";
/** Annotation holding when proxy-config last wrote the resource (RFC 3339). */
export const UPDATED_AT_ANNOTATION = "meshid.io/updated-at";

/** The resource's `spec` as users write it. */
export interface MeshConfigResourceSpec {
  mtlsMode?: string;
  caTTL?: string;
  svidTTL?: string;
  caKeyType?: string;
}

/** The MeshConfig object (only the fields proxy-config reads or writes). */
export interface MeshConfigResource {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    generation?: number;
    resourceVersion?: string;
    uid?: string;
    annotations?: Record<string, string>;
  };
  spec?: MeshConfigResourceSpec;
}

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * The spec of a resource as a {@link MeshConfigUpdate}; non-string values are kept as their
 * JSON text so validation names them (`caTTL: … (got "24")`).
 */
export function updateFromResourceSpec(spec: unknown): MeshConfigUpdate {
  const s = (typeof spec === "object" && spec !== null ? spec : {}) as Record<string, unknown>;
  const mtlsMode = text(s.mtlsMode);
  const caTtl = text(s.caTTL);
  const svidTtl = text(s.svidTTL);
  const caKeyType = text(s.caKeyType);
  return {
    ...(mtlsMode === undefined ? {} : { mtlsMode }),
    ...(caTtl === undefined ? {} : { caTtl }),
    ...(svidTtl === undefined ? {} : { svidTtl }),
    ...(caKeyType === undefined ? {} : { caKeyType }),
  };
}

/** The resource spec of a complete update. */
export function resourceSpecFromUpdate(spec: Required<MeshConfigUpdate>): MeshConfigResourceSpec {
  return {
    mtlsMode: spec.mtlsMode,
    caTTL: spec.caTtl,
    svidTTL: spec.svidTtl,
    caKeyType: spec.caKeyType,
  };
}

/** When the resource was last written by proxy-config, from its annotation. */
export function updatedAtOf(resource: {
  metadata?: { annotations?: Record<string, string> };
}): Date | undefined {
  const raw = resource.metadata?.annotations?.[UPDATED_AT_ANNOTATION];
  if (raw === undefined) return undefined;
  const at = new Date(raw);
  return Number.isNaN(at.getTime()) ? undefined : at;
}
