// Which mTLS mode applies to one pod: the global mode and the pod's annotation. Pure.
import { isMtlsMode, type MtlsMode } from "./mesh-config";

/** The pod annotation that asks for a per-pod mTLS mode. */
export const MTLS_MODE_ANNOTATION = "config.nsm.nginx.com/mtls-mode";

/** Event reason when global strict overrides a pod's annotation. */
export const ANNOTATION_IGNORED_REASON = "MtlsModeAnnotationIgnored";
/** Event reason when a pod's annotation value is not a mode. */
export const ANNOTATION_INVALID_REASON = "MtlsModeAnnotationInvalid";

/** Why the effective mode is what it is (sent to sidecars as `mode_source`). */
export type ModeSource = "global" | "annotation" | "global strict overrides annotation";

/** A report about a pod's annotation, to be recorded as a Kubernetes Event (Warning). */
export interface AnnotationReport {
  readonly reason: typeof ANNOTATION_IGNORED_REASON | typeof ANNOTATION_INVALID_REASON;
  readonly message: string;
  /** The annotation value reported (reports are de-duplicated per pod and value). */
  readonly value: string;
}

/** Outcome of {@link resolveEffectiveMode}. */
export interface EffectiveMode {
  readonly mode: MtlsMode;
  readonly source: ModeSource;
  /** Set when the annotation was ignored (global strict) or invalid. */
  readonly report?: AnnotationReport;
}

/**
 * The pod's effective mode: global strict → strict (an annotation asking for anything else is
 * ignored and reported); otherwise a valid annotation; otherwise the global mode. An invalid
 * annotation value is reported and ignored. `annotation` undefined = the pod has none.
 */
export function resolveEffectiveMode(
  globalMode: MtlsMode,
  annotation: string | undefined,
): EffectiveMode {
  if (annotation === undefined) return { mode: globalMode, source: "global" };
  const value = annotation.trim();
  if (!isMtlsMode(value)) {
    return {
      mode: globalMode,
      source: "global",
      report: {
        reason: ANNOTATION_INVALID_REASON,
        value: annotation,
        message:
          `${MTLS_MODE_ANNOTATION}: must be off, permissive or strict (got ${JSON.stringify(annotation)}); ` +
          `using the mesh mode "${globalMode}"`,
      },
    };
  }
  if (globalMode === "strict") {
    if (value === "strict") return { mode: "strict", source: "global" };
    return {
      mode: "strict",
      source: "global strict overrides annotation",
      report: {
        reason: ANNOTATION_IGNORED_REASON,
        value: annotation,
        message: `${MTLS_MODE_ANNOTATION}="${value}" is ignored: the mesh mtlsMode is strict`,
      },
    };
  }
  return { mode: value, source: "annotation" };
}
