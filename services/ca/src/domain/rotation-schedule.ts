import type { AuthorityRecord } from "./types";

/**
 * Default time an old authority stays in the bundle after its notAfter: 24 h, SPIRE's safety
 * threshold for pruning the bundle (covers clock skew between the CA and relying parties).
 */
export const DEFAULT_OLD_AUTHORITY_GRACE_SECONDS = 24 * 3_600;

/** Fraction of the active authority's lifetime at which the next one is prepared. */
export const PREPARE_AT_FRACTION = 1 / 2;

/** Fraction of the active authority's lifetime at which the prepared one is activated. */
export const ACTIVATE_AT_FRACTION = 5 / 6;

/** One step of the rotation schedule, applied in the order given. */
export type RotationAction =
  /** Make a new prepared authority (replacing any unusable prepared one) and bundle it. */
  | { readonly kind: "prepare" }
  /** Activate the prepared authority (the one a preceding `prepare` made, if any). */
  | { readonly kind: "activate" }
  /** Drop an old authority from the journal and the bundle. */
  | { readonly kind: "prune"; readonly authorityId: string };

/** What {@link planRotation} decides. */
export interface RotationPlan {
  /** The steps due at `now`, in order; empty when nothing is due. */
  readonly actions: readonly RotationAction[];
  /**
   * When the next step falls due if nothing else changes; undefined when the plan contains an
   * activation (the new active authority sets the next times) or nothing is scheduled.
   */
  readonly nextDecisionAt?: Date;
}

/** Parameters of {@link planRotation}. */
export interface PlanRotationParams {
  /** The authorities journal. */
  readonly authorities: readonly AuthorityRecord[];
  /** The decision time. */
  readonly now: Date;
  /** caTTL of the next authority (the current settings); see {@link rotationTimes}. */
  readonly caTtlSeconds: number;
  /** Seconds an old authority stays in the bundle after its notAfter. */
  readonly oldAuthorityGraceSeconds: number;
}

/** The instants at which an active authority's successor is prepared and activated. */
export interface RotationTimes {
  readonly prepareAt: Date;
  readonly activateAt: Date;
}

/**
 * Computes SPIRE's rotation times for an active authority: prepare the next one at ½ of its
 * lifetime (notBefore → notAfter), activate it at ⅚. When the next authority's lifetime
 * (`nextCaTtlSeconds`, default: the same as this one's) is shorter, preparation waits until
 * `activateAt − nextCaTtl/3`, so the prepared authority still has ⅔ of its life when it is
 * activated (after caTTL is lowered, e.g. 720 h → 24 h, it would otherwise expire first).
 */
export function rotationTimes(
  authority: Pick<AuthorityRecord, "notBefore" | "notAfter">,
  nextCaTtlSeconds?: number,
): RotationTimes {
  const start = authority.notBefore.getTime();
  const lifetimeMs = authority.notAfter.getTime() - start;
  const activateAtMs = start + Math.floor(lifetimeMs * ACTIVATE_AT_FRACTION);
  let prepareAtMs = start + Math.floor(lifetimeMs * PREPARE_AT_FRACTION);
  if (nextCaTtlSeconds !== undefined) {
    const leadMs = Math.floor((nextCaTtlSeconds * 1_000) / 3);
    prepareAtMs = Math.max(prepareAtMs, activateAtMs - leadMs);
  }
  return { prepareAt: new Date(prepareAtMs), activateAt: new Date(activateAtMs) };
}

/**
 * Decides, as a pure function of the journal and `now`, which rotation steps are due:
 * - no active authority, or an expired one: activate the prepared authority at once (after
 *   preparing one when there is no usable prepared authority);
 * - at ½ of the active authority's lifetime: prepare the next one (it enters the bundle) —
 *   later when the next caTTL is shorter, see {@link rotationTimes};
 * - at ⅚: activate the prepared one (preparing it first when missing or expired);
 * - old authorities are pruned once `now ≥ notAfter + grace`.
 * A prepared authority is usable while `now < notAfter`.
 */
export function planRotation(params: PlanRotationParams): RotationPlan {
  const { authorities, now, caTtlSeconds, oldAuthorityGraceSeconds } = params;
  const nowMs = now.getTime();
  const actions: RotationAction[] = [];
  const times: number[] = [];
  const active = authorities.find((a) => a.state === "active");
  const prepared = authorities.find((a) => a.state === "prepared");
  const preparedUsable = prepared !== undefined && prepared.notAfter.getTime() > nowMs;
  let activating = false;

  if (active === undefined || active.notAfter.getTime() <= nowMs) {
    if (!preparedUsable) actions.push({ kind: "prepare" });
    actions.push({ kind: "activate" });
    activating = true;
  } else {
    const { prepareAt, activateAt } = rotationTimes(active, caTtlSeconds);
    if (nowMs >= activateAt.getTime()) {
      if (!preparedUsable) actions.push({ kind: "prepare" });
      actions.push({ kind: "activate" });
      activating = true;
    } else {
      if (!preparedUsable) {
        if (nowMs >= prepareAt.getTime()) actions.push({ kind: "prepare" });
        else times.push(prepareAt.getTime());
      }
      times.push(activateAt.getTime());
      // A prepared authority that would expire before its activation is replaced then.
      if (preparedUsable && prepared.notAfter.getTime() < activateAt.getTime()) {
        times.push(prepared.notAfter.getTime());
      }
    }
  }

  for (const a of authorities) {
    if (a.state !== "old") continue;
    const pruneAtMs = a.notAfter.getTime() + oldAuthorityGraceSeconds * 1_000;
    if (nowMs >= pruneAtMs) actions.push({ kind: "prune", authorityId: a.authorityId });
    else times.push(pruneAtMs);
  }

  if (activating || times.length === 0) return { actions };
  return { actions, nextDecisionAt: new Date(Math.min(...times)) };
}
