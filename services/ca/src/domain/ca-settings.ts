import { MeshidError } from "@meshid/errors";
import { isKeyType } from "@meshid/pki";
import type { CaSettings } from "./types";

/** Shortest allowed CA authority lifetime: 24 h (NGINX Service Mesh's minimum caTTL). */
export const MIN_CA_TTL_SECONDS = 24 * 3_600;

/** Rotation activates the next authority at ⅚ of the CA lifetime: SVIDs beyond ⅙ get cut. */
export const SVID_TTL_MAX_CA_TTL_FRACTION = 1 / 6;

/**
 * Checks CA settings (a whole set or a partial update): caTtlSeconds an integer ≥ 24 h,
 * svidTtlSeconds an integer > 0, caKeyType a supported key type. Every problem is listed in
 * one error. Throws `ca.settings.invalid` (invalid_argument).
 */
export function checkCaSettings(settings: Partial<CaSettings>): void {
  const problems: string[] = [];
  const { caTtlSeconds, svidTtlSeconds, caKeyType } = settings;
  if (
    caTtlSeconds !== undefined &&
    (!Number.isSafeInteger(caTtlSeconds) || caTtlSeconds < MIN_CA_TTL_SECONDS)
  ) {
    problems.push(`caTtlSeconds must be a whole number of seconds ≥ ${MIN_CA_TTL_SECONDS} (24h)`);
  }
  if (
    svidTtlSeconds !== undefined &&
    (!Number.isSafeInteger(svidTtlSeconds) || svidTtlSeconds <= 0)
  ) {
    problems.push("svidTtlSeconds must be a whole number of seconds > 0");
  }
  if (caKeyType !== undefined && !isKeyType(caKeyType)) {
    problems.push("caKeyType must be one of ec-p256, ec-p384, rsa-2048, rsa-4096");
  }
  if (problems.length > 0) {
    throw new MeshidError("invalid_argument", "ca.settings.invalid", problems.join("; "));
  }
}

/**
 * Whether SVIDs of `svidTtlSeconds` get cut short by rotation: true when the SVID TTL is
 * longer than caTTL / 6 (the active authority is replaced at ⅚ of its life and SVIDs never
 * outlive their issuer).
 */
export function svidTtlCutShortByRotation(
  settings: Pick<CaSettings, "caTtlSeconds" | "svidTtlSeconds">,
): boolean {
  return settings.svidTtlSeconds > settings.caTtlSeconds * SVID_TTL_MAX_CA_TTL_FRACTION;
}
