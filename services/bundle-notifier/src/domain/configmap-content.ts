// What the bundle ConfigMap must hold for a bundle, given what it holds now.
import type { NotifierBundle } from "./bundle";

/** ConfigMap key of the PEM bundle (what agents and NGINX read). */
export const CONFIGMAP_PEM_KEY = "bundle.crt";
/** ConfigMap key of the SPIFFE bundle (JWKS). */
export const CONFIGMAP_SPIFFE_KEY = "bundle.spiffe";
/** Annotation recording the sequence number of the bundle the ConfigMap holds. */
export const BUNDLE_SEQUENCE_ANNOTATION = "meshid.io/bundle-sequence";

/** The parts of a ConfigMap the plan reads (absent when the ConfigMap does not exist). */
export interface ConfigMapContent {
  readonly data?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Outcome of {@link planConfigMapWrite}. */
export type ConfigMapPlan =
  /** The ConfigMap already holds this bundle: write nothing. */
  | { readonly action: "unchanged" }
  /** Another writer already stored a newer bundle: write nothing, this one is behind. */
  | { readonly action: "newer_present"; readonly presentSequence: number }
  /** Create (when missing) or update the ConfigMap with these data and annotations. */
  | {
      readonly action: "write";
      readonly data: Record<string, string>;
      readonly annotations: Record<string, string>;
    };

/** The sequence annotation's value, or undefined when missing or not a whole number. */
export function presentBundleSequence(content: ConfigMapContent | undefined): number | undefined {
  const text = content?.annotations?.[BUNDLE_SEQUENCE_ANNOTATION];
  if (text === undefined || !/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** Options of {@link planConfigMapWrite}. */
export interface PlanConfigMapWriteOptions {
  /**
   * Write even when the annotation records a higher sequence: the caller has established that
   * the CA's sequence went backwards (its store was reset) rather than that it lags behind.
   */
  readonly acceptLowerSequence?: boolean;
}

/**
 * Decides the write for `bundle` given the ConfigMap's current content (`undefined`: it does
 * not exist). Other keys and annotations are kept. Nothing is written when both bundle keys
 * already match; nor when the sequence annotation is higher than the bundle's (unless
 * `acceptLowerSequence`), so a replica that lags behind never overwrites a newer bundle
 * written by another replica.
 */
export function planConfigMapWrite(
  current: ConfigMapContent | undefined,
  bundle: NotifierBundle,
  options: PlanConfigMapWriteOptions = {},
): ConfigMapPlan {
  const data = current?.data ?? {};
  if (data[CONFIGMAP_PEM_KEY] === bundle.pem && data[CONFIGMAP_SPIFFE_KEY] === bundle.spiffeJwks) {
    return { action: "unchanged" };
  }
  const present = presentBundleSequence(current);
  if (
    present !== undefined &&
    present > bundle.sequenceNumber &&
    options.acceptLowerSequence !== true
  ) {
    return { action: "newer_present", presentSequence: present };
  }
  return {
    action: "write",
    data: { ...data, [CONFIGMAP_PEM_KEY]: bundle.pem, [CONFIGMAP_SPIFFE_KEY]: bundle.spiffeJwks },
    annotations: {
      ...(current?.annotations ?? {}),
      [BUNDLE_SEQUENCE_ANNOTATION]: String(bundle.sequenceNumber),
    },
  };
}
