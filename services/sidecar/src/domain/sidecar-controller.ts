// The sidecar's core: takes the latest SVID and the latest NGINX configuration, writes the SVID
// files, checks each configuration with `nginx -t`, (re)starts or reloads NGINX, and keeps the
// last good configuration when NGINX rejects a new one. Pure of fs and processes: the ports do
// the I/O.
import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";
import {
  backoffDelayMs,
  describeSvid,
  type BackoffOptions,
  type WorkloadX509Svid,
} from "@meshid/workload-api";
import type { Clock, NginxController, ProxyConfigUpdate, SvidFileStore } from "../ports";
import { svidFilesChanged, svidFilesOf } from "./svid-files";

/** Meter name of the sidecar's metrics. */
export const SIDECAR_METER = "@meshid/sidecar";
/** Metric names (Prometheus form after the exporter). */
export const SidecarMetrics = {
  svidExpirySeconds: "meshid_sidecar_svid_expiry_seconds",
  configGeneration: "meshid_sidecar_config_generation",
  degraded: "meshid_sidecar_degraded",
  lastReloadSuccess: "meshid_sidecar_last_reload_success",
  reloads: "meshid_sidecar_reloads",
  configRejections: "meshid_sidecar_config_rejections",
  svidSwaps: "meshid_sidecar_svid_swaps",
  nginxRestarts: "meshid_sidecar_nginx_restarts",
} as const;

/** How long an NGINX must have run for its next crash to restart without growing backoff. */
export const STABLE_RUN_MS = 30_000;
/** Most characters of `nginx -t` output kept in status and logs. */
export const MAX_REASON_CHARS = 2_000;

/** Why the sidecar reports itself degraded. */
export type DegradedReason = "config_rejected" | "reload_failed" | "svid_expired" | "nginx_down";

/** The outcome of the last NGINX start or reload. */
export interface ReloadRecord {
  readonly kind: "start" | "reload";
  readonly result: "success" | "failed";
  readonly at: Date;
  /** Why it failed. */
  readonly error?: string;
  /** Config generation and SVID serial NGINX was asked to load. */
  readonly generation: number;
  readonly serialNumber: string;
}

/** What the sidecar reports about itself (health, metrics, tests). */
export interface SidecarStatus {
  /** The SVID written to the SVID directory, if any. */
  readonly svid?: {
    readonly spiffeId: string;
    readonly serialNumber: string;
    readonly expiresAt: Date;
    readonly filesVersion: number;
  };
  /** Serial of the SVID NGINX loaded at its last successful start or reload. */
  readonly servedSerialNumber?: string;
  readonly config: {
    /** Generation of the configuration NGINX runs with (the last good one). */
    readonly appliedGeneration?: number;
    readonly effectiveMode?: string;
    readonly modeSource?: string;
    /** The newest configuration NGINX rejected, while no newer one was accepted. */
    readonly rejected?: { readonly generation: number; readonly reason: string; readonly at: Date };
  };
  readonly lastReload?: ReloadRecord;
  readonly nginxRunning: boolean;
  readonly nginxRestarts: number;
  readonly degraded: boolean;
  readonly degradedReasons: readonly DegradedReason[];
}

/** Something the controller did, for tests and benchmarks. */
export type SidecarEvent =
  | { readonly type: "svid_written"; readonly serialNumber: string; readonly version: number }
  | { readonly type: "config_applied"; readonly generation: number }
  | { readonly type: "config_rejected"; readonly generation: number; readonly reason: string }
  | { readonly type: "reloaded"; readonly record: ReloadRecord };

/** Dependencies of {@link createSidecarController}. */
export interface SidecarControllerDeps {
  readonly svidFiles: SvidFileStore;
  readonly nginx: NginxController;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Delays between NGINX restarts and reload retries. Default 200 ms doubling to 10 s. */
  readonly backoff?: BackoffOptions;
  /** Told about every step (never about key material). */
  readonly onEvent?: (event: SidecarEvent) => void;
}

/** The sidecar's core loop, from {@link createSidecarController}. */
export interface SidecarController {
  /** Hands over the SVID to use now (the latest wins). */
  offerSvid(svid: WorkloadX509Svid): void;
  /** Hands over the NGINX configuration to use now (the latest wins). */
  offerConfig(update: ProxyConfigUpdate): void;
  /** Runs until `signal` aborts. Rejects only on a bug or a failing port it cannot retry. */
  run(signal: AbortSignal): Promise<void>;
  status(): SidecarStatus;
  /** NGINX runs with a good configuration and the current, unexpired SVID loaded. */
  ready(): boolean;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function excerpt(text: string): string {
  const trimmed = text.trim();
  return trimmed.length <= MAX_REASON_CHARS ? trimmed : `${trimmed.slice(0, MAX_REASON_CHARS)}…`;
}

/**
 * Creates the controller. Its loop, on every change:
 * 1. a new SVID (serial, chain or bundle changed) is written to a fresh directory and the link
 *    swapped ({@link SvidFileStore.swap});
 * 2. a new configuration (once an SVID is on disk, since `nginx -t` loads the certificates) is
 *    tested with `nginx -t`; accepted → installed; rejected → logged, counted, status degraded,
 *    and the last good configuration stays;
 * 3. NGINX is started once both exist (and restarted with backoff when it dies, for `spawn`),
 *    else reloaded after any change; old SVID directories are pruned (current and previous kept)
 *    only after NGINX loaded the new one.
 */
export function createSidecarController(deps: SidecarControllerDeps): SidecarController {
  const { svidFiles, nginx, clock, logger } = deps;
  const emit = (event: SidecarEvent): void => deps.onEvent?.(event);

  let pendingSvid: WorkloadX509Svid | undefined;
  let pendingConfig: ProxyConfigUpdate | undefined;
  let current: WorkloadX509Svid | undefined;
  let currentVersion: number | undefined;
  let previousVersion: number | undefined;
  let applied: ProxyConfigUpdate | undefined;
  let rejected: { generation: number; reason: string; at: Date } | undefined;
  let lastReload: ReloadRecord | undefined;
  let servedSerialNumber: string | undefined;
  let needReload = false;
  let startedOnce = false;
  let startAttempt = 0;
  let reloadAttempt = 0;
  let startedAt: Date | undefined;
  let nginxRestarts = 0;
  // True from a confirmed start until NGINX exits: a master still starting serves nothing yet.
  let nginxUp = false;
  let poke: (() => void) | undefined;

  const wakeUp = (): void => {
    const p = poke;
    poke = undefined;
    p?.();
  };

  const meter = getMeter(SIDECAR_METER);
  const reloads = meter.createCounter(SidecarMetrics.reloads, {
    description: "NGINX starts and reloads by kind and result",
  });
  const configRejections = meter.createCounter(SidecarMetrics.configRejections, {
    description: "Configurations NGINX rejected (nginx -t); the last good one stayed",
  });
  const svidSwaps = meter.createCounter(SidecarMetrics.svidSwaps, {
    description: "SVID directory swaps",
  });
  const restartsCounter = meter.createCounter(SidecarMetrics.nginxRestarts, {
    description: "Restarts of an NGINX that died",
  });

  const degradedReasons = (): DegradedReason[] => {
    const reasons: DegradedReason[] = [];
    if (rejected !== undefined) reasons.push("config_rejected");
    if (lastReload?.result === "failed") reasons.push("reload_failed");
    if (current !== undefined && current.expiresAt.getTime() <= clock.now().getTime()) {
      reasons.push("svid_expired");
    }
    if (startedOnce && nginx.manages && !nginx.running()) reasons.push("nginx_down");
    return reasons;
  };

  const status = (): SidecarStatus => {
    const reasons = degradedReasons();
    return {
      ...(current === undefined || currentVersion === undefined
        ? {}
        : {
            svid: {
              spiffeId: current.spiffeId,
              serialNumber: current.serialNumber,
              expiresAt: current.expiresAt,
              filesVersion: currentVersion,
            },
          }),
      ...(servedSerialNumber === undefined ? {} : { servedSerialNumber }),
      config: {
        ...(applied === undefined
          ? {}
          : {
              appliedGeneration: applied.generation,
              effectiveMode: applied.effectiveMode,
              modeSource: applied.modeSource,
            }),
        ...(rejected === undefined ? {} : { rejected }),
      },
      ...(lastReload === undefined ? {} : { lastReload }),
      nginxRunning: nginx.running(),
      nginxRestarts,
      degraded: reasons.length > 0,
      degradedReasons: reasons,
    };
  };

  meter
    .createObservableGauge(SidecarMetrics.svidExpirySeconds, {
      description: "Seconds until the SVID written for NGINX expires",
      unit: "s",
    })
    .addCallback((result) => {
      if (current !== undefined) {
        result.observe((current.expiresAt.getTime() - clock.now().getTime()) / 1000);
      }
    });
  meter
    .createObservableGauge(SidecarMetrics.configGeneration, {
      description: "Generation of the configuration NGINX runs with",
    })
    .addCallback((result) => {
      if (applied !== undefined) result.observe(applied.generation);
    });
  meter
    .createObservableGauge(SidecarMetrics.degraded, {
      description: "1 while the sidecar is degraded (config rejected, reload failed, …)",
    })
    .addCallback((result) => result.observe(degradedReasons().length > 0 ? 1 : 0));
  meter
    .createObservableGauge(SidecarMetrics.lastReloadSuccess, {
      description: "1 when the last NGINX start or reload succeeded, 0 when it failed",
    })
    .addCallback((result) => {
      if (lastReload !== undefined) result.observe(lastReload.result === "success" ? 1 : 0);
    });

  const record = (
    kind: ReloadRecord["kind"],
    svid: WorkloadX509Svid,
    config: ProxyConfigUpdate,
    error?: unknown,
  ): ReloadRecord => {
    const rec: ReloadRecord = {
      kind,
      result: error === undefined ? "success" : "failed",
      at: clock.now(),
      generation: config.generation,
      serialNumber: svid.serialNumber,
      ...(error === undefined ? {} : { error: errorText(error) }),
    };
    lastReload = rec;
    reloads.add(1, { kind, result: rec.result });
    emit({ type: "reloaded", record: rec });
    return rec;
  };

  const afterLoaded = async (svid: WorkloadX509Svid): Promise<void> => {
    servedSerialNumber = svid.serialNumber;
    const keep = [currentVersion, previousVersion].filter((v): v is number => v !== undefined);
    try {
      await svidFiles.prune(keep);
    } catch (err) {
      logger.warn({ [LogKeys.err]: errorText(err) }, "could not remove old SVID directories");
    }
  };

  const writeSvid = async (svid: WorkloadX509Svid): Promise<void> => {
    if (!svidFilesChanged(current, svid)) {
      current = svid;
      return;
    }
    const written = await svidFiles.swap(svidFilesOf(svid));
    previousVersion = currentVersion;
    currentVersion = written.version;
    current = svid;
    needReload = true;
    svidSwaps.add(1);
    logger.info(
      { ...describeSvid(svid), version: written.version, [LogKeys.path]: written.dir },
      "SVID files written",
    );
    emit({ type: "svid_written", serialNumber: svid.serialNumber, version: written.version });
  };

  const applyConfig = async (update: ProxyConfigUpdate): Promise<void> => {
    if (applied !== undefined && applied.nginxConf === update.nginxConf) {
      applied = update;
      if (rejected !== undefined && update.generation >= rejected.generation) rejected = undefined;
      return;
    }
    const result = await nginx.testConfig(update.nginxConf);
    if (!result.ok) {
      const reason = excerpt(result.output);
      rejected = { generation: update.generation, reason, at: clock.now() };
      configRejections.add(1);
      logger.error(
        {
          generation: update.generation,
          keptGeneration: applied?.generation ?? null,
          nginxOutput: reason,
        },
        applied === undefined
          ? "NGINX rejected the configuration; no good configuration yet, NGINX not started"
          : "NGINX rejected the configuration; keeping the last good one",
      );
      emit({ type: "config_rejected", generation: update.generation, reason });
      return;
    }
    await nginx.installTestedConfig();
    applied = update;
    rejected = undefined;
    needReload = true;
    logger.info(
      {
        generation: update.generation,
        effectiveMode: update.effectiveMode,
        modeSource: update.modeSource,
      },
      "NGINX configuration accepted",
    );
    emit({ type: "config_applied", generation: update.generation });
  };

  const startNginx = async (
    svid: WorkloadX509Svid,
    config: ProxyConfigUpdate,
    signal: AbortSignal,
  ): Promise<void> => {
    if (startAttempt > 0) {
      await clock.sleep(backoffDelayMs(startAttempt - 1, deps.backoff), signal);
      if (signal.aborted) return;
    }
    if (startedOnce) {
      nginxRestarts += 1;
      restartsCounter.add(1);
    }
    needReload = false;
    nginxUp = false;
    try {
      await nginx.start();
    } catch (err) {
      startAttempt += 1;
      record("start", svid, config, err);
      logger.error({ [LogKeys.err]: errorText(err), attempt: startAttempt }, "NGINX start failed");
      return;
    }
    startedOnce = true;
    nginxUp = true;
    startedAt = clock.now();
    startAttempt += 1;
    record("start", svid, config);
    logger.info(
      { generation: config.generation, [LogKeys.serialNumber]: svid.serialNumber },
      "NGINX started",
    );
    await afterLoaded(svid);
  };

  const reloadNginx = async (
    svid: WorkloadX509Svid,
    config: ProxyConfigUpdate,
    signal: AbortSignal,
  ): Promise<void> => {
    if (reloadAttempt > 0) {
      await clock.sleep(backoffDelayMs(reloadAttempt - 1, deps.backoff), signal);
      if (signal.aborted) return;
    }
    needReload = false;
    try {
      await nginx.reload();
    } catch (err) {
      reloadAttempt += 1;
      if (!nginx.manages) nginxUp = false;
      // Retry: the next attempt may find NGINX back (restart) or able to bind again.
      needReload = true;
      record("reload", svid, config, err);
      logger.error(
        { [LogKeys.err]: errorText(err), attempt: reloadAttempt },
        "NGINX reload failed",
      );
      return;
    }
    reloadAttempt = 0;
    // With an external NGINX (signal), a confirmed reload is how we learn it runs.
    nginxUp = true;
    record("reload", svid, config);
    logger.info(
      { generation: config.generation, [LogKeys.serialNumber]: svid.serialNumber },
      "NGINX reloaded",
    );
    await afterLoaded(svid);
  };

  const nginxNeedsStart = (): boolean => nginx.manages && !nginx.running();

  const hasWork = (): boolean =>
    pendingSvid !== undefined ||
    (pendingConfig !== undefined && current !== undefined) ||
    (applied !== undefined && current !== undefined && (nginxNeedsStart() || needReload));

  const step = async (signal: AbortSignal): Promise<void> => {
    const svid = pendingSvid;
    if (svid !== undefined) {
      pendingSvid = undefined;
      try {
        await writeSvid(svid);
      } catch (err) {
        // Retried by the loop unless a newer SVID arrived meanwhile.
        pendingSvid ??= svid;
        throw err;
      }
    }
    const update = pendingConfig;
    if (update !== undefined && current !== undefined) {
      pendingConfig = undefined;
      try {
        await applyConfig(update);
      } catch (err) {
        pendingConfig ??= update;
        throw err;
      }
    }
    if (applied === undefined || current === undefined || signal.aborted) return;
    if (nginxNeedsStart()) {
      await startNginx(current, applied, signal);
    } else if (needReload) {
      await reloadNginx(current, applied, signal);
    }
  };

  return {
    offerSvid(svid) {
      pendingSvid = svid;
      wakeUp();
    },
    offerConfig(update) {
      pendingConfig = update;
      wakeUp();
    },
    async run(signal) {
      const offExit = nginx.onExit((exit) => {
        nginxUp = false;
        const ranMs = startedAt === undefined ? 0 : clock.now().getTime() - startedAt.getTime();
        if (ranMs >= STABLE_RUN_MS) startAttempt = 0;
        if (!signal.aborted) {
          logger.error({ code: exit.code, signal: exit.signal, ranMs }, "NGINX exited; restarting");
        }
        wakeUp();
      });
      const onAbort = (): void => wakeUp();
      let failures = 0;
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        while (!signal.aborted) {
          if (!hasWork()) {
            await new Promise<void>((resolve) => {
              poke = resolve;
            });
            continue;
          }
          try {
            await step(signal);
            failures = 0;
          } catch (err) {
            failures += 1;
            const delayMs = backoffDelayMs(failures - 1, deps.backoff);
            logger.error(
              { [LogKeys.err]: errorText(err), attempt: failures, delayMs },
              "sidecar step failed; retrying",
            );
            await clock.sleep(delayMs, signal);
          }
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
        offExit();
      }
    },
    status,
    ready: () =>
      applied !== undefined &&
      current !== undefined &&
      servedSerialNumber !== undefined &&
      nginxUp &&
      (!nginx.manages || nginx.running()) &&
      current.expiresAt.getTime() > clock.now().getTime(),
  };
}
