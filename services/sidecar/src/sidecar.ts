// The sidecar assembly: NGINX binary check → SVID store → controller; the Workload API watch
// feeds SVIDs, proxy-config (or a template file) feeds NGINX configurations; graceful stop in
// reverse order.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createMutableSvidSource, type MutableSvidSource } from "@meshid/grpc-kit";
import { parseSpiffeId } from "@meshid/spiffe";
import { LogKeys, type HealthReport, type Logger } from "@meshid/telemetry";
import {
  describeSvid,
  pickDefaultSvid,
  pickSvidById,
  watchX509Context,
  type BackoffOptions,
  type WorkloadX509Svid,
} from "@meshid/workload-api";
import { createDiskSvidFileStore } from "./adapters/disk-svid-file-store";
import { watchConfigFile } from "./adapters/file-proxy-config-feed";
import { watchProxyConfig } from "./adapters/grpc-proxy-config-feed";
import {
  createNginxProcessController,
  nginxVersionInfo,
} from "./adapters/nginx-process-controller";
import { systemClock } from "./adapters/system-clock";
import { DEFAULT_PROXY_CONFIG_SERVER_ID_PATH, type SidecarConfig } from "./config";
import {
  createSidecarController,
  type SidecarEvent,
  type SidecarStatus,
} from "./domain/sidecar-controller";
import { resolveStreamModule } from "./domain/nginx-modules";
import type { Clock } from "./ports";

/** Parameters of {@link startSidecar}. */
export interface StartSidecarParams {
  readonly config: SidecarConfig;
  readonly logger: Logger;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Aborting it interrupts start-up. */
  readonly signal?: AbortSignal;
  /** Retry delays (Workload API, proxy-config, NGINX restarts). Default 200 ms → 10 s. */
  readonly backoff?: BackoffOptions;
  /** Told about every SVID swap, config decision and reload (tests, benchmarks). */
  readonly onEvent?: (event: SidecarEvent) => void;
}

/** How a running sidecar ended. */
export type SidecarOutcome = "stopped" | "failed";

/** A running sidecar, from {@link startSidecar}. */
export interface RunningSidecar {
  /** NGINX runs with a good configuration and the current, unexpired SVID. */
  ready(): boolean;
  /** `/healthz`: degraded, with the reasons, while the status says so. */
  health(): HealthReport;
  status(): SidecarStatus;
  /** The stream module path in use (resolved from `nginx -V` unless configured). */
  readonly streamModulePath: string | undefined;
  /** Resolves once stopped: `failed` when a part failed for good (the process exits 1). */
  done(): Promise<SidecarOutcome>;
  /** Stops the feeds and the controller, then a spawned NGINX. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts the sidecar: checks that NGINX runs (`nginx -V`, resolving the stream module), creates
 * the prefix and SVID store, then runs the controller and its feeds in the background. Resolves
 * at once; `ready()` turns true once NGINX serves the first SVID with a good configuration.
 *
 * @throws MeshidError `sidecar.nginx.unavailable` when the NGINX binary cannot run,
 *   `sidecar.svid_dir.not_a_link` when `svidDir` is a real directory.
 */
export async function startSidecar(params: StartSidecarParams): Promise<RunningSidecar> {
  const { config, logger } = params;
  const clock = params.clock ?? systemClock;
  const stopController = new AbortController();
  const { signal } = stopController;
  const onOuterAbort = (): void => stopController.abort();
  params.signal?.addEventListener("abort", onOuterAbort, { once: true });

  let streamModulePath = config.nginx.streamModulePath;
  if (streamModulePath === undefined) {
    const resolved = resolveStreamModule(await nginxVersionInfo(config.nginx.binary));
    if (resolved.kind === "dynamic") streamModulePath = resolved.path;
    if (resolved.kind === "missing") {
      logger.warn("NGINX has no stream module: permissive mode and TCP ports will not work");
    }
  }
  // `nginx -t` already needs the log and temp directories of the prefix.
  for (const dir of ["logs", "tmp"]) {
    await mkdir(join(config.nginx.prefix, dir), { recursive: true, mode: 0o700 });
  }
  const svidFiles = await createDiskSvidFileStore({ linkPath: config.svidDir, logger });
  const nginx = createNginxProcessController({
    binary: config.nginx.binary,
    prefix: config.nginx.prefix,
    configFile: config.nginx.configFile,
    manage: config.nginx.manage,
    pidFile: config.nginx.pidFile,
    reloadTimeoutMs: config.nginx.reloadTimeoutSeconds * 1000,
    logger,
  });
  const controller = createSidecarController({
    svidFiles,
    nginx,
    clock,
    logger,
    ...(params.backoff === undefined ? {} : { backoff: params.backoff }),
    ...(params.onEvent === undefined ? {} : { onEvent: params.onEvent }),
  });
  const pick = config.spiffeId === undefined ? pickDefaultSvid : pickSvidById(config.spiffeId);

  let failure: Error | undefined;
  const fail = (what: string, err: unknown): void => {
    failure ??= err instanceof Error ? err : new Error(String(err));
    logger.fatal({ [LogKeys.err]: (err as Error).message }, `${what} failed for good: stopping`);
    stopController.abort();
  };

  // The proxy-config channel presents the same SVID NGINX gets.
  let svidSource: MutableSvidSource | undefined;
  let resolveFirstSvid: (svid: WorkloadX509Svid) => void = () => undefined;
  const firstSvid = new Promise<WorkloadX509Svid>((resolve) => {
    resolveFirstSvid = resolve;
  });
  const offerSvid = (svid: WorkloadX509Svid): void => {
    const material = {
      certChainPem: svid.certChainPem,
      keyPem: svid.keyPem,
      bundlePem: svid.bundlePem,
    };
    try {
      if (svidSource === undefined) svidSource = createMutableSvidSource(material);
      else svidSource.set(material);
    } catch (err) {
      logger.error(
        { ...describeSvid(svid), [LogKeys.err]: (err as Error).message },
        "SVID unusable for TLS; ignored",
      );
      return;
    }
    controller.offerSvid(svid);
    resolveFirstSvid(svid);
  };

  const workloadLoop = (async (): Promise<void> => {
    let missingLogged = false;
    for await (const context of watchX509Context({
      socketPath: config.workloadSocket,
      signal,
      logger,
      ...(params.backoff === undefined ? {} : { backoff: params.backoff }),
    })) {
      const svid = pick(context.svids);
      if (svid === undefined) {
        if (!missingLogged) {
          logger.warn(
            { [LogKeys.spiffeId]: config.spiffeId, offered: context.svids.map((s) => s.spiffeId) },
            "the Workload API does not offer the configured spiffeId; waiting",
          );
        }
        missingLogged = true;
        continue;
      }
      missingLogged = false;
      offerSvid(svid);
    }
  })().catch((err: unknown) => fail("Workload API watch", err));

  const configLoop = (async (): Promise<void> => {
    const pc = config.proxyConfig;
    const layout = {
      svidDir: config.svidDir,
      nginxPrefix: config.nginx.prefix,
      ...(streamModulePath === undefined ? {} : { streamModulePath }),
      ...(config.nginx.user === undefined ? {} : { nginxUser: config.nginx.user }),
    };
    if (pc.kind === "file") {
      for await (const update of watchConfigFile({
        file: pc.file,
        pollIntervalMs: pc.pollIntervalSeconds * 1000,
        values: layout,
        signal,
        logger,
        clock,
      })) {
        controller.offerConfig(update);
      }
      return;
    }
    const aborted = new Promise<undefined>((resolve) =>
      signal.addEventListener("abort", () => resolve(undefined), { once: true }),
    );
    const first = await Promise.race([firstSvid, aborted]);
    if (first === undefined || svidSource === undefined) return;
    const serverId =
      pc.serverId ??
      `spiffe://${parseSpiffeId(first.spiffeId).trustDomain.name}${DEFAULT_PROXY_CONFIG_SERVER_ID_PATH}`;
    for await (const update of watchProxyConfig({
      address: pc.address,
      serverId,
      source: svidSource,
      request: {
        namespace: config.pod.namespace,
        podName: config.pod.name,
        inbound: config.inbound,
        outbound: config.outbound,
        layout,
      },
      signal,
      logger,
      clock,
      ...(params.backoff === undefined ? {} : { backoff: params.backoff }),
    })) {
      controller.offerConfig(update);
    }
  })().catch((err: unknown) => fail("proxy configuration feed", err));

  const controllerLoop = controller.run(signal).catch((err: unknown) => fail("controller", err));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      stopController.abort();
      params.signal?.removeEventListener("abort", onOuterAbort);
      await Promise.allSettled([workloadLoop, configLoop, controllerLoop]);
      await nginx.stop();
      logger.info("sidecar stopped");
    })();
    return stopping;
  };
  const done = new Promise<SidecarOutcome>((resolve) => {
    signal.addEventListener(
      "abort",
      () => {
        void stop().then(() => resolve(failure === undefined ? "stopped" : "failed"));
      },
      { once: true },
    );
  });

  return {
    ready: () => controller.ready(),
    health: () => {
      const status = controller.status();
      return status.degraded
        ? { status: "degraded", reasons: status.degradedReasons }
        : { status: "ok" };
    },
    status: () => controller.status(),
    streamModulePath,
    done: () => done,
    stop,
  };
}
