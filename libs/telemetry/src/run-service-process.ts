import { readFileSync } from "node:fs";
import { isMeshidError } from "@meshid/errors";
import { LogKeys } from "./log-keys";
import type { Logger } from "./logger";
import { startOpsServer, type HealthReport, type OpsServer } from "./ops-server";
import { TELEMETRY_UNSUPPORTED_CODE, startTelemetry, type Telemetry } from "./sdk";

/** Signal numbers for the 128+n exit code of an immediate stop. */
const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/** The signals that stop a service process gracefully (a second one stops it at once). */
export const STOP_SIGNALS = ["SIGTERM", "SIGINT"] as const;

/**
 * The parts of Node's `process` that {@link runServiceProcess} uses; `main.ts` passes
 * `process`, tests an `EventEmitter` with a fake `exit`.
 */
export interface ServiceProcess {
  /** Subscribes to a stop signal. */
  on(event: (typeof STOP_SIGNALS)[number], listener: (signal: NodeJS.Signals) => void): unknown;
  /** Ends the process at once (second signal, graceful stop timed out). */
  exit(code: number): void;
  /** Where an invalid telemetry configuration is reported before the logger is trusted. */
  readonly stderr: { write(text: string): unknown };
}

/** What {@link runServiceProcess} needs of the service it runs. */
export interface RunningService {
  /** True once the service is up; answers the ops server's `/readyz`. */
  ready(): boolean;
  /** Optional: answers the ops server's `/healthz` body (ok or degraded with reasons). */
  health?(): HealthReport;
  /** Stops the service; called once, on a signal, a failed start or when `done` resolves. */
  stop(): Promise<void>;
}

/** Parameters of {@link runServiceProcess}. */
export interface RunServiceProcessParams<S extends RunningService, Outcome extends string> {
  /** Short name in log lines: `<name> start-up failed: …`, `<name> stopped`. */
  name: string;
  /** `service.name` of the telemetry, e.g. `meshid-ca`. */
  serviceName: string;
  /** `service.version` of the telemetry (see {@link readPackageVersion}). */
  serviceVersion?: string;
  /** Where `OTEL_*` variables are read from (the library never reads `process.env`). */
  env: Readonly<Record<string, string | undefined>>;
  logger: Logger;
  /** Address of the ops server (/healthz, /readyz, /metrics); port 0 picks one. */
  ops: { readonly host: string; readonly port: number };
  /** Signals come from here, and `exit` ends the process at once. */
  process: ServiceProcess;
  /** Longest a graceful stop may take before `process.exit(exitCodes.failure)`, in ms. */
  shutdownTimeoutMs: number;
  /** Returned for an invalid telemetry configuration and for a failed start (or stop timeout). */
  exitCodes: { readonly configError: number; readonly failure: number };
  /**
   * Whether the ops server closes together with the service (`with-service`) or only once the
   * service has stopped (`after-service`, so probes answer until then). Default: `after-service`.
   */
  opsStop?: "with-service" | "after-service";
  /** Starts the service; `signal` aborts on the first stop signal. */
  start(signal: AbortSignal): Promise<S>;
  /** Called once the service is up, to log where it listens. */
  onStarted(service: S, opsUrl: string): void;
  /** Resolves when the service ends by itself; the process then stops as for a signal. */
  done?(service: S): Promise<Outcome>;
  /**
   * After a graceful stop caused by `done` resolving with `outcome`: returns the exit code (and
   * logs why), or `undefined` for the normal `<name> stopped` line and exit code 0.
   */
  exitCodeFor?(outcome: Outcome): number | undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs a service process's lifecycle: installs the SIGTERM/SIGINT handlers (the first stops
 * gracefully, a second exits at once with 128+n), starts telemetry, the ops server and the
 * service, waits for a signal or `done`, then stops everything within `shutdownTimeoutMs`.
 * Config loading and the service itself stay in `main.ts`.
 *
 * Resolves with the exit code for `main.ts` to pass to `process.exit`: 0 after a graceful stop
 * (or a start interrupted by a signal), `exitCodes.configError` for an invalid telemetry
 * configuration, `exitCodes.failure` after a failed start, or what `exitCodeFor` returns.
 * Only the second signal and a timed-out stop call `params.process.exit` themselves.
 * Rejects only if an unexpected error escapes (a bug).
 */
export async function runServiceProcess<S extends RunningService, Outcome extends string = never>(
  params: RunServiceProcessParams<S, Outcome>,
): Promise<number> {
  const { logger, process: proc, exitCodes } = params;
  const stop = new AbortController();
  let signalCount = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signalCount += 1;
    if (signalCount > 1) {
      logger.warn({ signal }, "second signal: exiting now");
      proc.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
      return;
    }
    logger.info({ signal }, "signal received: stopping");
    stop.abort(new Error(`stopped by ${signal}`));
  };
  for (const signal of STOP_SIGNALS) proc.on(signal, onSignal);

  let telemetry: Telemetry | undefined;
  let ops: OpsServer | undefined;
  let service: S | undefined;
  const shutdown = async (): Promise<void> => {
    const results =
      params.opsStop === "with-service"
        ? await Promise.allSettled([service?.stop(), ops?.close()])
        : [
            ...(await Promise.allSettled([service?.stop()])),
            ...(await Promise.allSettled([ops?.close()])),
          ];
    await telemetry?.shutdown().catch((err: unknown) => {
      logger.warn({ [LogKeys.err]: err }, "telemetry shutdown failed");
    });
    for (const result of results) {
      if (result.status === "rejected") {
        const reason: unknown = result.reason;
        logger.warn({ [LogKeys.err]: reason }, "stop failed");
      }
    }
  };

  try {
    try {
      telemetry = await startTelemetry({
        serviceName: params.serviceName,
        serviceVersion: params.serviceVersion,
        env: params.env,
        logger,
      });
    } catch (err) {
      if (isMeshidError(err, TELEMETRY_UNSUPPORTED_CODE)) {
        proc.stderr.write(`invalid telemetry configuration: ${errorMessage(err)}\n`);
        return exitCodes.configError;
      }
      throw err;
    }
    ops = await startOpsServer({
      host: params.ops.host,
      port: params.ops.port,
      isReady: () => service?.ready() ?? false,
      health: () => service?.health?.() ?? { status: "ok" },
      metrics: telemetry.metrics,
      logger,
    });
    logger.info({ [LogKeys.address]: ops.url }, "ops server listening");
    service = await params.start(stop.signal);
    params.onStarted(service, ops.url);
  } catch (err) {
    if (stop.signal.aborted) {
      logger.info({ [LogKeys.err]: err }, "start-up interrupted by a signal");
      await shutdown();
      return 0;
    }
    logger.fatal({ [LogKeys.err]: err }, `${params.name} start-up failed: ${errorMessage(err)}`);
    await shutdown();
    return exitCodes.failure;
  }

  const running = service;
  const stopped = new Promise<"signal">((resolve) =>
    stop.signal.addEventListener("abort", () => resolve("signal"), { once: true }),
  );
  const outcome = stop.signal.aborted
    ? "signal"
    : await Promise.race(params.done === undefined ? [stopped] : [stopped, params.done(running)]);
  const timer = setTimeout(() => {
    logger.error({ timeoutMs: params.shutdownTimeoutMs }, "graceful stop timed out: exiting");
    proc.exit(exitCodes.failure);
  }, params.shutdownTimeoutMs);
  timer.unref();
  await shutdown();
  clearTimeout(timer);
  const code = outcome === "signal" ? undefined : params.exitCodeFor?.(outcome);
  if (code !== undefined) return code;
  logger.info(`${params.name} stopped`);
  return 0;
}

/**
 * Reads `version` from the `package.json` at `packageJsonPath`, for `serviceVersion`;
 * `undefined` when the file is missing, unreadable or has no string version. Never throws.
 */
export function readPackageVersion(packageJsonPath: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(packageJsonPath, "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}
