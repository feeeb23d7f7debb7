// The MeshConfig singleton: its fields, defaults and validation rules. Pure: no I/O.
import { formatDuration, parseDuration } from "@meshid/config";
import { MeshidError } from "@meshid/errors";

/** mTLS modes, weakest first. */
export const MTLS_MODES = ["off", "permissive", "strict"] as const;
/** mTLS mode of the mesh or of one pod. */
export type MtlsMode = (typeof MTLS_MODES)[number];

/** Key types the CA accepts for its authorities. */
export const CA_KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048", "rsa-4096"] as const;
/** Key type of the CA's authorities. */
export type CaKeyType = (typeof CA_KEY_TYPES)[number];

/** Default mesh mTLS mode. */
export const DEFAULT_MTLS_MODE: MtlsMode = "permissive";
/** Default authority lifetime (720 h = 30 days), in seconds. */
export const DEFAULT_CA_TTL_SECONDS = 720 * 3600;
/** Default workload SVID lifetime (1 h), in seconds. */
export const DEFAULT_SVID_TTL_SECONDS = 3600;
/** Default authority key type. */
export const DEFAULT_CA_KEY_TYPE: CaKeyType = "ec-p256";
/** Smallest accepted caTTL (24 h, the CA's own limit), in seconds. */
export const MIN_CA_TTL_SECONDS = 24 * 3600;
/** Largest accepted caTTL (10 years), in seconds. */
export const MAX_CA_TTL_SECONDS = 87_600 * 3600;
/** Smallest accepted svidTTL (1 m, the CA's own limit), in seconds. */
export const MIN_SVID_TTL_SECONDS = 60;

/** Error codes of MeshConfig validation and updates. */
export const MeshConfigErrorCode = {
  invalid: "proxy_config.mesh_config.invalid",
  staleGeneration: "proxy_config.mesh_config.stale_generation",
} as const;

/** The mesh-wide settings (durations in seconds). */
export interface MeshConfigSettings {
  readonly mtlsMode: MtlsMode;
  readonly caTtlSeconds: number;
  readonly svidTtlSeconds: number;
  readonly caKeyType: CaKeyType;
}

/** The MeshConfig as stored: settings plus the update bookkeeping. */
export interface MeshConfig extends MeshConfigSettings {
  /** Increases by one with every accepted update; 1 for the defaults written on first start. */
  readonly generation: number;
  readonly updatedAt: Date;
}

/** The defaults of every field. */
export const DEFAULT_MESH_CONFIG_SETTINGS: MeshConfigSettings = Object.freeze({
  mtlsMode: DEFAULT_MTLS_MODE,
  caTtlSeconds: DEFAULT_CA_TTL_SECONDS,
  svidTtlSeconds: DEFAULT_SVID_TTL_SECONDS,
  caKeyType: DEFAULT_CA_KEY_TYPE,
});

/**
 * A requested change, as the API and the resource carry it: durations as strings, every field
 * optional (unset = keep).
 */
export interface MeshConfigUpdate {
  readonly mtlsMode?: string;
  readonly caTtl?: string;
  readonly svidTtl?: string;
  readonly caKeyType?: string;
}

/** One rejected field. */
export interface MeshConfigProblem {
  /** The field as users write it: `mtlsMode`, `caTTL`, `svidTTL` or `caKeyType`. */
  readonly field: "mtlsMode" | "caTTL" | "svidTTL" | "caKeyType";
  /** `<field>: <rule> (got "<value>")`. */
  readonly message: string;
}

/** Outcome of {@link resolveMeshConfigUpdate}. */
export type ResolvedMeshConfigUpdate =
  | {
      readonly ok: true;
      readonly settings: MeshConfigSettings;
      /** Accepted but questionable values (e.g. svidTTL > caTTL/6). */
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly problems: readonly MeshConfigProblem[] };

/** Whether `value` is an {@link MtlsMode}. */
export function isMtlsMode(value: string): value is MtlsMode {
  return (MTLS_MODES as readonly string[]).includes(value);
}

/** Whether `value` is a {@link CaKeyType}. */
export function isCaKeyType(value: string): value is CaKeyType {
  return (CA_KEY_TYPES as readonly string[]).includes(value);
}

function quoted(value: string): string {
  return JSON.stringify(value);
}

function parseTtl(
  field: "caTTL" | "svidTTL",
  text: string,
  problems: MeshConfigProblem[],
): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    problems.push({
      field,
      message: `${field}: must be a duration like "720h", "90m" or "1h30m" (got ${quoted(text)})`,
    });
    return undefined;
  }
}

/**
 * Applies `update` to `current` and checks every field of the result: mtlsMode one of
 * off/permissive/strict; caTTL ≥ 24h and ≤ 87600h; svidTTL ≥ 1m and ≤ caTTL; caKeyType one of
 * {@link CA_KEY_TYPES}. Every problem is reported (one per field), never only the first. Warns
 * when svidTTL > caTTL/6 (SVIDs then outlive a good part of their authority's rotation window).
 */
export function resolveMeshConfigUpdate(
  current: MeshConfigSettings,
  update: MeshConfigUpdate,
): ResolvedMeshConfigUpdate {
  const problems: MeshConfigProblem[] = [];
  let mtlsMode = current.mtlsMode;
  if (update.mtlsMode !== undefined) {
    if (isMtlsMode(update.mtlsMode)) mtlsMode = update.mtlsMode;
    else {
      problems.push({
        field: "mtlsMode",
        message: `mtlsMode: must be off, permissive or strict (got ${quoted(update.mtlsMode)})`,
      });
    }
  }
  let caKeyType = current.caKeyType;
  if (update.caKeyType !== undefined) {
    if (isCaKeyType(update.caKeyType)) caKeyType = update.caKeyType;
    else {
      problems.push({
        field: "caKeyType",
        message: `caKeyType: must be one of ${CA_KEY_TYPES.join(", ")} (got ${quoted(update.caKeyType)})`,
      });
    }
  }
  let caTtlSeconds = current.caTtlSeconds;
  let caTtlOk = true;
  if (update.caTtl !== undefined) {
    const parsed = parseTtl("caTTL", update.caTtl, problems);
    if (parsed === undefined) caTtlOk = false;
    else if (parsed < MIN_CA_TTL_SECONDS) {
      caTtlOk = false;
      problems.push({
        field: "caTTL",
        message: `caTTL: must be at least ${formatDuration(MIN_CA_TTL_SECONDS)} (got ${quoted(update.caTtl)})`,
      });
    } else if (parsed > MAX_CA_TTL_SECONDS) {
      caTtlOk = false;
      problems.push({
        field: "caTTL",
        message: `caTTL: must be at most ${formatDuration(MAX_CA_TTL_SECONDS)} (got ${quoted(update.caTtl)})`,
      });
    } else caTtlSeconds = parsed;
  }
  let svidTtlSeconds = current.svidTtlSeconds;
  if (update.svidTtl !== undefined) {
    const parsed = parseTtl("svidTTL", update.svidTtl, problems);
    if (parsed !== undefined) {
      if (parsed < MIN_SVID_TTL_SECONDS) {
        problems.push({
          field: "svidTTL",
          message: `svidTTL: must be at least ${formatDuration(MIN_SVID_TTL_SECONDS)} (got ${quoted(update.svidTtl)})`,
        });
      } else svidTtlSeconds = parsed;
    }
  }
  // The cross-field rule is checked only when both values are known to be valid, so a bad caTTL
  // is not also reported as a svidTTL problem.
  const svidTtlFailed = problems.some((p) => p.field === "svidTTL");
  if (caTtlOk && !svidTtlFailed && svidTtlSeconds > caTtlSeconds) {
    const field = update.svidTtl !== undefined ? "svidTTL" : "caTTL";
    problems.push(
      field === "svidTTL"
        ? {
            field,
            message: `svidTTL: must not exceed caTTL ${formatDuration(caTtlSeconds)} (got ${quoted(update.svidTtl ?? "")})`,
          }
        : {
            field,
            message: `caTTL: must not be shorter than svidTTL ${formatDuration(svidTtlSeconds)} (got ${quoted(update.caTtl ?? "")})`,
          },
    );
  }
  if (problems.length > 0) return { ok: false, problems };
  const warnings: string[] = [];
  if (svidTtlSeconds > caTtlSeconds / 6) {
    warnings.push(
      `svidTTL ${formatDuration(svidTtlSeconds)} is more than a sixth of caTTL ${formatDuration(caTtlSeconds)}: ` +
        "SVIDs signed late in an authority's life are cut short at its expiry",
    );
  }
  return { ok: true, settings: { mtlsMode, caTtlSeconds, svidTtlSeconds, caKeyType }, warnings };
}

/**
 * The MeshidError for rejected fields: `invalid_argument` with every problem in the message
 * (`; `-separated) and the fields in `details.fields`.
 */
export function meshConfigInvalidError(problems: readonly MeshConfigProblem[]): MeshidError {
  return new MeshidError(
    "invalid_argument",
    MeshConfigErrorCode.invalid,
    problems.map((p) => p.message).join("; "),
    { details: { fields: problems.map((p) => p.field).join(",") } },
  );
}

/** Whether two settings are equal field by field. */
export function sameSettings(a: MeshConfigSettings, b: MeshConfigSettings): boolean {
  return (
    a.mtlsMode === b.mtlsMode &&
    a.caTtlSeconds === b.caTtlSeconds &&
    a.svidTtlSeconds === b.svidTtlSeconds &&
    a.caKeyType === b.caKeyType
  );
}
