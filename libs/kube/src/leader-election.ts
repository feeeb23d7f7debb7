// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it
// (client-node has none): candidates race to write themselves into the Lease with
// resourceVersion preconditions; the holder renews it; a standby takes over once the holder
// has not renewed for a whole lease duration, as observed on the standby's own clock.
import { setTimeout as delay } from "node:timers/promises";
import type { KubeClient } from "./client";
import type { KubeLease } from "./types";
import { isKubeConflict, isKubeNotFound } from "./api-errors";

/** Default lease duration: how long a standby waits after the last renewal (15 s). */
export const DEFAULT_LEASE_DURATION_MS = 15_000;
/** Default renew deadline: how long the leader keeps trying to renew before it gives up (10 s). */
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
/** Default retry period: the interval of acquire attempts and renewals (2 s). */
export const DEFAULT_RETRY_PERIOD_MS = 2_000;

/** Logger subset the elector uses. */
export interface LeaderElectionLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A metav1.MicroTime: RFC 3339 with microseconds, as client-go writes Lease times. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}

/** Time source of the elector; tests may pass a fake one. */
export interface LeaderElectionClock {
  now(): number;
  /** Resolves after `ms`, or early (without rejecting) once `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** Parameters of {@link createLeaderElector}. */
export interface CreateLeaderElectorParams {
  /** The API client. */
  readonly client: KubeClient;
  readonly leaseName: string;
  readonly leaseNamespace: string;
  /** This candidate's identity (holderIdentity), unique per replica, e.g. the pod name. */
  readonly identity: string;
  /** Default {@link DEFAULT_LEASE_DURATION_MS}; rounded up to whole seconds in the Lease. */
  readonly leaseDurationMs?: number;
  /** Default {@link DEFAULT_RENEW_DEADLINE_MS}; must be below the lease duration. */
  readonly renewDeadlineMs?: number;
  /** Default {@link DEFAULT_RETRY_PERIOD_MS}; must be below the renew deadline. */
  readonly retryPeriodMs?: number;
  /**
   * Called when this candidate becomes leader; `signal` aborts when it stops leading (lost
   * lease, failed renewals, or the elector stopping). Must not throw.
   */
  readonly onStartedLeading: (signal: AbortSignal) => void;
  /** Called once after each leadership term ends. Must not throw. */
  readonly onStoppedLeading: () => void;
  /** Called when the observed holder changes (also to this candidate). */
  readonly onNewLeader?: (identity: string) => void;
  readonly logger?: LeaderElectionLogger;
  readonly clock?: LeaderElectionClock;
}

/** What a {@link LeaderElector} reports. */
export interface LeaderElectionStatus {
  readonly isLeader: boolean;
  /** The holder last observed, or undefined when the Lease is free or unread. */
  readonly leader?: string;
  /** Leadership terms this candidate started. */
  readonly terms: number;
}

/** A candidate in a Lease election. */
export interface LeaderElector {
  /**
   * Campaigns until `signal` aborts; leads whenever it holds the Lease. On abort it stops
   * leading and releases the Lease (empty holderIdentity) so a standby takes over at once.
   * Never rejects.
   */
  run(signal: AbortSignal): Promise<void>;
  isLeader(): boolean;
  status(): LeaderElectionStatus;
}

const systemClock: LeaderElectionClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(Math.max(0, ms), undefined, { signal }).catch(() => undefined),
};

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Creates a Lease-based leader elector (see {@link LeaderElector}).
 *
 * @throws RangeError when the timings are inconsistent (retry period ≥ renew deadline ≥ lease
 *   duration).
 */
export function createLeaderElector(params: CreateLeaderElectorParams): LeaderElector {
  const leaseDurationMs = params.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
  const renewDeadlineMs = params.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
  const retryPeriodMs = params.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
  if (!(
    retryPeriodMs > 0 &&
    retryPeriodMs < renewDeadlineMs &&
    renewDeadlineMs < leaseDurationMs
  )) {
    throw new RangeError(
      "leader election needs 0 < retryPeriod < renewDeadline < leaseDuration " +
        `(got ${retryPeriodMs} ms, ${renewDeadlineMs} ms, ${leaseDurationMs} ms)`,
    );
  }
  const leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);
  const clock = params.clock ?? systemClock;
  const { client, leaseName: name, leaseNamespace: namespace, identity, logger } = params;

  const leasesPath = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const leasePath = `${leasesPath}/${encodeURIComponent(name)}`;
  let leading: AbortController | undefined;
  let terms = 0;
  let observedHolder: string | undefined;
  // The Lease as last read or written, and when (on our clock) its spec last changed: expiry
  // is judged from that local observation, never from the writer's timestamps (clock skew).
  let observed: KubeLease | undefined;
  let observedSpecKey = "";
  let observedAt = 0;

  const observe = (lease: KubeLease): void => {
    const spec = lease.spec ?? {};
    const key = `${spec.holderIdentity ?? ""}|${spec.renewTime ?? ""}`;
    if (key !== observedSpecKey) {
      observedSpecKey = key;
      observedAt = clock.now();
    }
    observed = lease;
    const holder = spec.holderIdentity === "" ? undefined : spec.holderIdentity;
    if (holder !== observedHolder) {
      observedHolder = holder;
      if (holder !== undefined) params.onNewLeader?.(holder);
    }
  };

  const leaseBody = (base: KubeLease | undefined, acquiring: boolean): KubeLease => {
    const now = microTime(clock.now());
    const spec = base?.spec ?? {};
    const transitions = spec.leaseTransitions ?? 0;
    const changedHands = acquiring && (spec.holderIdentity ?? "") !== identity;
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name,
        namespace,
        ...(base?.metadata?.resourceVersion === undefined
          ? {}
          : { resourceVersion: base.metadata.resourceVersion }),
      },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: changedHands || spec.acquireTime === undefined ? now : spec.acquireTime,
        renewTime: now,
        leaseTransitions: changedHands && base !== undefined ? transitions + 1 : transitions,
      },
    };
  };

  /** One attempt to acquire or renew; true when this candidate holds the Lease afterwards. */
  const tryAcquireOrRenew = async (): Promise<boolean> => {
    let current: KubeLease | undefined;
    try {
      current = await client.request<KubeLease>({ path: leasePath });
    } catch (err) {
      if (!isKubeNotFound(err)) throw err;
    }
    if (current === undefined) {
      const created = await client.request<KubeLease>({
        method: "POST",
        path: leasesPath,
        body: leaseBody(undefined, true),
      });
      observe(created);
      return true;
    }
    observe(current);
    const holder = current.spec?.holderIdentity ?? "";
    const held = holder !== "" && holder !== identity;
    const durationMs = (current.spec?.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (held && observedAt + durationMs > clock.now()) return false;
    const written = await client.request<KubeLease>({
      method: "PUT",
      path: leasePath,
      body: leaseBody(current, true),
    });
    observe(written);
    return true;
  };

  const attempt = async (): Promise<boolean> => {
    try {
      return await tryAcquireOrRenew();
    } catch (err) {
      // A conflict means another candidate wrote first: simply not ours this round.
      if (!isKubeConflict(err)) {
        logger?.warn({ lease: `${namespace}/${name}`, err: errorText(err) }, "lease update failed");
      }
      return false;
    }
  };

  const release = async (): Promise<void> => {
    if (observed === undefined || observed.spec?.holderIdentity !== identity) return;
    try {
      const body = leaseBody(observed, false);
      body.spec = { ...body.spec, holderIdentity: "", leaseDurationSeconds: 1 };
      await client.request({ method: "PUT", path: leasePath, body });
      logger?.info({ lease: `${namespace}/${name}`, identity }, "lease released");
    } catch (err) {
      logger?.warn({ lease: `${namespace}/${name}`, err: errorText(err) }, "lease release failed");
    }
  };

  const stopLeading = (): void => {
    if (leading === undefined) return;
    leading.abort(new Error("leadership lost"));
    leading = undefined;
    params.onStoppedLeading();
  };

  return {
    async run(signal) {
      while (!signal.aborted) {
        // Candidate: try every retry period until the Lease is ours.
        if (!(await attempt())) {
          await clock.sleep(retryPeriodMs, signal);
          continue;
        }
        if (signal.aborted) break;
        terms += 1;
        leading = new AbortController();
        logger?.info({ lease: `${namespace}/${name}`, identity }, "started leading");
        params.onStartedLeading(leading.signal);
        // Leader: renew every retry period; give up once renewals failed for renewDeadline.
        let lastRenew = clock.now();
        while (!signal.aborted) {
          await clock.sleep(retryPeriodMs, signal);
          if (signal.aborted) break;
          if (await attempt()) {
            lastRenew = clock.now();
          } else if (
            observedHolder !== undefined && observedHolder !== identity
              ? true
              : clock.now() - lastRenew >= renewDeadlineMs
          ) {
            logger?.warn({ lease: `${namespace}/${name}`, identity }, "stopped leading");
            break;
          }
        }
        stopLeading();
      }
      stopLeading();
      await release();
    },
    isLeader: () => leading !== undefined,
    status: () => ({
      isLeader: leading !== undefined,
      ...(observedHolder === undefined ? {} : { leader: observedHolder }),
      terms,
    }),
  };
}
