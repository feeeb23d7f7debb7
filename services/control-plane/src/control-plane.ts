// Hosts ca, registrar, bundle-notifier and proxy-config in one process: each is started with
// its own start function, configuration and logger, exactly as on its own; only the process
// around them (telemetry, ops server, signals) is shared.
import { startBundleNotifier } from "@meshid/bundle-notifier/dist/notifier";
import { startCaServer } from "@meshid/ca/dist/ca-server";
import { startProxyConfig } from "@meshid/proxy-config/dist/proxy-config";
import { startRegistrar } from "@meshid/registrar/dist/registrar";
import type { LogLevel } from "@meshid/config";
import { LogKeys, createLogger, type HealthReport, type Logger } from "@meshid/telemetry";
import { HOSTED_SERVICES, SERVICE_NAMES, type HostedConfigs, type HostedService } from "./config";

/** One hosted service once started. */
interface Hosted {
  readonly service: HostedService;
  /** The service's own running handle (each start function returns one of this shape). */
  readonly running: {
    ready(): boolean;
    stop(): Promise<void>;
    /** Resolves if the service ends by itself. */
    done?(): Promise<unknown>;
  };
}

/** The running control plane. */
export interface RunningControlPlane {
  /** The hosted services, in start order. */
  readonly services: readonly HostedService[];
  /** Where each hosted service listens, for the start-up log line. */
  readonly listening: Readonly<Record<string, unknown>>;
  /** True when every hosted service is ready. */
  ready(): boolean;
  /** `degraded` naming the services not ready (after start-up). */
  health(): HealthReport;
  /** Resolves with the service's name if one ends by itself. */
  done(): Promise<string>;
  /** Stops the services in reverse start order; safe to call twice; never rejects. */
  stop(): Promise<void>;
}

/** Parameters of {@link startControlPlane}. */
export interface StartControlPlaneParams {
  readonly services: HostedConfigs;
  /** Log lines of the control plane itself; each service gets its own logger at its level. */
  readonly logger: Logger;
  /** Makes each service's logger (default: createLogger, as the service's main does). */
  readonly createServiceLogger?: (service: string, level: LogLevel) => Logger;
  /** Aborting it interrupts start-up and background work of every service. */
  readonly signal?: AbortSignal;
}

/**
 * Starts the configured services in order (the CA first: the others dial it), each awaited
 * before the next, so a failure names its service; on a failure the ones already started are
 * stopped before the error is rethrown.
 */
export async function startControlPlane(
  params: StartControlPlaneParams,
): Promise<RunningControlPlane> {
  const { services: configs, signal } = params;
  const makeLogger =
    params.createServiceLogger ??
    ((service: string, level: LogLevel) => createLogger({ service, level }));
  const started: Hosted[] = [];
  const listening: Record<string, unknown> = {};

  const stopAll = async (): Promise<void> => {
    for (const hosted of [...started].reverse()) {
      await hosted.running.stop().catch((err: unknown) => {
        params.logger.warn(
          { [LogKeys.err]: err, service: SERVICE_NAMES[hosted.service] },
          "stopping a hosted service failed",
        );
      });
    }
  };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= stopAll());

  try {
    for (const service of HOSTED_SERVICES) {
      const hosted = await startOne(service);
      if (hosted !== undefined) started.push(hosted);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  async function startOne(service: HostedService): Promise<Hosted | undefined> {
    const name = SERVICE_NAMES[service];
    switch (service) {
      case "ca": {
        const loaded = configs.ca;
        if (loaded === undefined) return undefined;
        const logger = makeLogger(name, loaded.config.logLevel);
        for (const warning of loaded.warnings) logger.warn(warning);
        const ca = await startCaServer({ config: loaded.config, logger, signal });
        listening.ca = { address: ca.tcpAddress, adminSocketPath: ca.adminSocketPath };
        return { service, running: ca };
      }
      case "registrar": {
        const config = configs.registrar;
        if (config === undefined) return undefined;
        const registrar = await startRegistrar({
          config,
          logger: makeLogger(name, config.logLevel),
          signal,
        });
        return { service, running: registrar };
      }
      case "bundleNotifier": {
        const config = configs.bundleNotifier;
        if (config === undefined) return undefined;
        const notifier = await startBundleNotifier({
          config,
          logger: makeLogger(name, config.logLevel),
          signal,
        });
        return { service, running: notifier };
      }
      case "proxyConfig": {
        const config = configs.proxyConfig;
        if (config === undefined) return undefined;
        const proxyConfig = await startProxyConfig({
          config,
          logger: makeLogger(name, config.logLevel),
          signal,
        });
        listening["proxy-config"] = {
          address: proxyConfig.tcpAddress,
          adminSocketPath: proxyConfig.adminSocketPath,
        };
        return { service, running: proxyConfig };
      }
    }
  }

  const notReady = (): string[] =>
    started.filter((h) => !h.running.ready()).map((h) => SERVICE_NAMES[h.service]);
  const ended = started.flatMap(({ service, running }) =>
    running.done === undefined ? [] : [running.done().then(() => SERVICE_NAMES[service])],
  );
  return {
    services: started.map((h) => h.service),
    listening,
    ready: () => stopped === undefined && notReady().length === 0,
    health: () => {
      const waiting = notReady();
      return waiting.length === 0
        ? { status: "ok" }
        : { status: "degraded", reasons: waiting.map((s) => `${s} is not ready`) };
    },
    done: () => (ended.length === 0 ? new Promise<string>(() => undefined) : Promise.race(ended)),
    stop,
  };
}
