// The bundle-notifier assembly: CA client → targets → NATS events → dispatcher, and the graceful
// stop in reverse order.
import { createKubeClient, type KubeClient, type KubeConnectionSettings } from "@meshid/kube";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { createConfigMapTarget } from "./adapters/configmap-target";
import { createFileTarget } from "./adapters/file-target";
import { createGrpcCaBundleClient } from "./adapters/grpc-ca-bundle-client";
import { startNatsEvents, type NatsEvents } from "./adapters/nats-events";
import { createWebhookTarget } from "./adapters/webhook-target";
import type { BundleNotifierConfig } from "./config";
import {
  createBundleDispatcher,
  type BundleDispatcher,
  type BundleDispatcherStatus,
} from "./domain/bundle-dispatcher";
import type { BundleTarget, CaBundleClient, Clock } from "./ports";
import { openCaConnection } from "./adapters/ca-connection";

/** Parameters of {@link startBundleNotifier}. */
export interface StartBundleNotifierParams {
  readonly config: BundleNotifierConfig;
  readonly logger: Logger;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /**
   * Kubernetes API client for the ConfigMap and webhook targets (the caller closes it); default:
   * a client per distinct `kubeconfigFile` of the targets, or for the in-cluster service
   * account, closed when the notifier stops.
   */
  readonly kubeClient?: KubeClient;
  /** Aborting it interrupts start-up (everything started is stopped and start rejects). */
  readonly signal?: AbortSignal;
}

/** What the notifier reports about itself (health, tests). */
export interface BundleNotifierStatus extends BundleDispatcherStatus {
  /** True while connected to NATS (false without `natsUrl`). */
  readonly natsConnected: boolean;
}

/** A running bundle-notifier, from {@link startBundleNotifier}. */
export interface RunningBundleNotifier {
  /** True while the CA stream is open and every target has been written (or found current) once. */
  ready(): boolean;
  status(): BundleNotifierStatus;
  /** Resolves once the notifier has stopped (after {@link RunningBundleNotifier.stop}). */
  done(): Promise<"stopped">;
  /** Stops everything in reverse start order. Safe to call twice; never rejects. */
  stop(): Promise<void>;
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error("aborted");
}

/** The system clock (`setTimeout` sleeps that reject with the signal's reason on abort). */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/** `User-Agent` of the notifier's Kubernetes requests (audit logs name the writer). */
export const BUNDLE_NOTIFIER_USER_AGENT = "meshid-bundle-notifier";

/** The targets of one notifier and the Kubernetes clients made for them. */
export interface NotifierTargets {
  readonly targets: BundleTarget[];
  /** Closes the Kubernetes clients {@link createTargets} made (not one passed in). */
  close(): void;
}

/**
 * Builds the enabled targets (ConfigMap, webhooks, file) in that order. The Kubernetes targets
 * use `kubeClient` when given, else one client per distinct `kubeconfigFile` (or the in-cluster
 * service account).
 *
 * @throws KubeConfigError when a target's kubeconfig cannot be used, or neither a kubeconfig
 *   is set nor the process runs in a pod.
 */
export function createTargets(
  config: BundleNotifierConfig,
  logger: Logger,
  kubeClient: KubeClient | undefined,
): NotifierTargets {
  const made = new Map<string, KubeClient>();
  const clientFor = (settings: { readonly kubeconfigFile?: string }): KubeClient => {
    if (kubeClient !== undefined) return kubeClient;
    const key = settings.kubeconfigFile ?? "";
    let client = made.get(key);
    if (client === undefined) {
      const connection: KubeConnectionSettings =
        settings.kubeconfigFile === undefined ? {} : { kubeconfigFile: settings.kubeconfigFile };
      client = createKubeClient(connection, { userAgent: BUNDLE_NOTIFIER_USER_AGENT });
      made.set(key, client);
    }
    return client;
  };
  const close = (): void => {
    for (const client of made.values()) client.close();
    made.clear();
  };

  const targets: BundleTarget[] = [];
  const { configMap, webhooks, file } = config.targets;
  try {
    if (configMap !== undefined) {
      targets.push(
        createConfigMapTarget({
          client: clientFor(configMap),
          namespace: configMap.namespace,
          name: configMap.name,
          logger,
        }),
      );
    }
    if (webhooks !== undefined) {
      targets.push(createWebhookTarget({ client: clientFor(webhooks), logger }));
    }
  } catch (err) {
    close();
    throw err;
  }
  if (file !== undefined) targets.push(createFileTarget(file));
  return { targets, close };
}

/**
 * Starts the notifier: the CA connection (admin socket, or mTLS with the SVID from the node
 * agent), the targets, NATS (`bundle.updated` wake-ups, `bundle.published`) when `natsUrl` is
 * set, and the dispatcher that follows WatchBundle and writes every target. Resolves at once:
 * an unreachable CA or API server is retried in the background (see `ready()`).
 *
 * @throws KubeConfigError (a kubeconfig that cannot be used, or none and not in a pod), or the
 *   Workload API's error when the notifier's own SVID cannot be obtained (mTLS mode).
 */
export async function startBundleNotifier(
  params: StartBundleNotifierParams,
): Promise<RunningBundleNotifier> {
  const { config, logger } = params;
  const clock = params.clock ?? systemClock;
  const stopping = new AbortController();
  const signal = stopping.signal;
  const onOuterAbort = (): void => stopping.abort(params.signal?.reason);
  params.signal?.addEventListener("abort", onOuterAbort, { once: true });

  let built: NotifierTargets | undefined;
  let caClient: CaBundleClient | undefined;
  let closeCaConnection: (() => Promise<void>) | undefined;
  let nats: NatsEvents | undefined;
  let dispatcher: BundleDispatcher | undefined;
  let running: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      params.signal?.removeEventListener("abort", onOuterAbort);
      stopping.abort(new Error("bundle-notifier stopping"));
      await running;
      await nats?.close().catch(() => undefined);
      caClient?.close();
      await closeCaConnection?.().catch(() => undefined);
      built?.close();
      logger.info("bundle-notifier stopped");
    })();
    return stopped;
  };

  try {
    built = createTargets(config, logger, params.kubeClient);
    const { targets } = built;
    const connection = await openCaConnection({ ca: config.ca, logger, signal });
    closeCaConnection = () => connection.close();
    caClient = createGrpcCaBundleClient({
      target: connection.target,
      ...(connection.tls === undefined ? {} : { tls: connection.tls }),
    });
    if (config.natsUrl !== undefined) {
      nats = startNatsEvents({ natsUrl: config.natsUrl, logger });
    }
    dispatcher = createBundleDispatcher({
      ca: caClient,
      targets,
      ...(nats === undefined ? {} : { wakeups: nats.wakeups, published: nats }),
      clock,
      logger,
      retry: config.caRetry,
      resyncIntervalMs: config.resyncIntervalSeconds * 1000,
    });
    running = dispatcher.run(signal);
    logger.info(
      {
        targets: targets.map((t) => t.name),
        ca: connection.description,
        [LogKeys.trustDomain]: config.trustDomain,
      },
      "bundle-notifier started",
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const d = dispatcher;
  return {
    ready: () => !signal.aborted && d.ready(),
    status: () => ({ ...d.status(), natsConnected: nats?.connected() ?? false }),
    done: async () => {
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener("abort", () => resolve(), { once: true });
      });
      await stop();
      return "stopped";
    },
    stop,
  };
}
