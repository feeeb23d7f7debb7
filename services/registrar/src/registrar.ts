// The registrar assembly: cluster watchers → reconciler (writes through the CA entry client,
// reports template problems, publishes registration events), driven by Lease leader election
// so that only one replica writes; and the graceful stop in reverse order.
import { setTimeout as delay } from "node:timers/promises";
import { hostname } from "node:os";
import {
  createKubeClient,
  createLeaderElector,
  type KubeClient,
  type LeaderElector,
} from "@meshid/kube";
import { parseSpiffeId } from "@meshid/spiffe";
import { getMeter, LogKeys, type Logger } from "@meshid/telemetry";
import { createWorkloadX509Source, type WorkloadX509Source } from "@meshid/workload-api";
import { createGrpcEntryClient } from "./adapters/grpc-entry-client";
import { startClusterWatchers, type ClusterWatchers } from "./adapters/kube-watchers";
import { createKubeTemplateReporter } from "./adapters/kube-template-reporter";
import {
  startNatsRegistrationEvents,
  type NatsRegistrationEvents,
} from "./adapters/nats-registration-events";
import type { RegistrarConfig } from "./config";
import {
  RegistrarMetrics,
  createReconciler,
  type Reconciler,
  type ReconcilerStats,
} from "./domain/reconciler";
import type { ClusterView, Clock, EntryClient, RegistrationEvents } from "./ports";

/** User-Agent of the registrar's Kubernetes API requests (shows in the API server's audit log). */
export const REGISTRAR_USER_AGENT = "meshid-registrar";

/** Parameters of {@link startRegistrar}. */
export interface StartRegistrarParams {
  readonly config: RegistrarConfig;
  readonly logger: Logger;
  /**
   * The Kubernetes API client; the caller owns it (the registrar does not close it). Default:
   * one made from `config.kubeconfigFile`, or in-cluster, and closed when the registrar stops.
   */
  readonly kubeClient?: KubeClient;
  /** Default: the gRPC client of `config.ca`. */
  readonly entryClient?: EntryClient;
  readonly clock?: Clock;
  /** Aborting it interrupts start-up (the registrar is then stopped and start rejects). */
  readonly signal?: AbortSignal;
}

/** What the registrar reports about itself. */
export interface RegistrarStatus {
  readonly identity: string;
  readonly leader: boolean;
  /** The holder of the Lease as last observed (this replica when leading). */
  readonly observedLeader?: string;
  /** Every watch listed at least once. */
  readonly synced: boolean;
  readonly reconciler: ReconcilerStats;
  /** Lists per watched resource (first list and every re-list). */
  readonly listCounts: Readonly<Record<string, number>>;
  readonly natsConnected: boolean;
}

/** A running registrar, from {@link startRegistrar}. */
export interface RunningRegistrar {
  /**
   * Ready when every watch has listed and, on the leader, the last reconcile reached the CA
   * (after at least one full reconcile). A standby is ready once synced.
   */
  ready(): boolean;
  status(): RegistrarStatus;
  /** Resolves once the registrar has stopped. */
  done(): Promise<"stopped">;
  /** Stops everything (releasing the Lease). Safe to call twice; never rejects. */
  stop(): Promise<void>;
}

/** The system clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(Math.max(0, ms), undefined, { signal }).catch(() => undefined),
};

/**
 * The CA entry client of `config.ca`: the local admin socket, or mTLS with the registrar's own
 * SVID from the Workload API (waits for the first SVID; the agent may not be up yet).
 */
async function connectCa(
  config: RegistrarConfig,
  logger: Logger,
  signal: AbortSignal,
  onSource: (source: WorkloadX509Source) => void,
): Promise<EntryClient> {
  const ca = config.ca;
  if (ca.mode === "admin_socket") {
    return createGrpcEntryClient({ target: `unix://${ca.adminSocketPath}` });
  }
  logger.info({ workloadSocketPath: ca.workloadSocketPath }, "fetching the registrar SVID");
  const source = await createWorkloadX509Source({
    socketPath: ca.workloadSocketPath,
    logger,
    signal,
  });
  onSource(source);
  logger.info({ spiffeId: source.svid().spiffeId }, "registrar SVID ready");
  return createGrpcEntryClient({
    target: ca.address,
    tls: { source, serverId: parseSpiffeId(ca.serverId) },
  });
}

const noEvents: RegistrationEvents = { registered: () => undefined, deregistered: () => undefined };

/**
 * Starts the registrar: watches (pods, nodes, namespaces, Services, ClusterSPIFFEIDs), then
 * leader election (or, when disabled, leads at once); the leader reconciles the registrar's
 * entries at the CA. Resolves once the watches have listed (or are retrying in the background).
 */
export async function startRegistrar(params: StartRegistrarParams): Promise<RunningRegistrar> {
  const { config, logger } = params;
  const clock = params.clock ?? systemClock;
  const stopping = new AbortController();
  const onOuterAbort = (): void => stopping.abort(params.signal?.reason);
  params.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const identity = config.leaderElection.identity ?? hostname();

  const loops: Promise<void>[] = [];
  let watchers: ClusterWatchers | undefined;
  let nats: NatsRegistrationEvents | undefined;
  let elector: LeaderElector | undefined;
  let leading = false;
  let entryClient: EntryClient | undefined = params.entryClient;
  let ownKubeClient: KubeClient | undefined;
  let svidSource: WorkloadX509Source | undefined;
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      params.signal?.removeEventListener("abort", onOuterAbort);
      stopping.abort(new Error("registrar stopping"));
      await Promise.allSettled(loops);
      await watchers?.stop().catch(() => undefined);
      await nats?.close().catch(() => undefined);
      entryClient?.close();
      ownKubeClient?.close();
      svidSource?.close();
      logger.info("registrar stopped");
    })();
    return stopped;
  };

  try {
    const kubeClient =
      params.kubeClient ??
      (ownKubeClient = createKubeClient(
        config.kubeconfigFile === undefined ? {} : { kubeconfigFile: config.kubeconfigFile },
        { userAgent: REGISTRAR_USER_AGENT },
      ));
    entryClient ??= await connectCa(config, logger, stopping.signal, (source) => {
      svidSource = source;
    });
    if (config.natsUrl !== undefined) {
      nats = startNatsRegistrationEvents({
        natsUrl: config.natsUrl,
        source: `meshid/registrar/${identity}`,
        logger,
      });
    }
    // The reconciler reads the watchers' view once they exist (events before that are covered
    // by the first full reconcile).
    const view: ClusterView = {
      synced: () => watchers?.synced() ?? false,
      pods: () => watchers?.pods() ?? [],
      pod: (uid) => watchers?.pod(uid),
      node: (name) => watchers?.node(name),
      namespace: (name) => watchers?.namespace(name),
      services: (namespace) => watchers?.services(namespace) ?? [],
      templates: () => watchers?.templates() ?? { valid: [], invalid: [] },
    };
    const reconciler: Reconciler = createReconciler({
      cluster: view,
      entries: entryClient,
      events: nats ?? noEvents,
      problems: createKubeTemplateReporter({ client: kubeClient, logger }),
      selection: {
        injectLabels: config.injectLabels,
        injectAnnotations: config.injectAnnotations,
        ignoredNamespaces: config.ignoredNamespaces,
      },
      trustDomain: config.trustDomain,
      clusterName: config.clusterName,
      batchSize: config.batchSize,
      resyncIntervalMs: config.resyncIntervalSeconds * 1000,
      clock,
      logger,
    });
    watchers = await startClusterWatchers({
      client: kubeClient,
      handlers: {
        podChanged: (uid, ref) => reconciler.podChanged(uid, ref),
        allChanged: () => reconciler.requestFull(),
      },
      logger,
    });
    if (stopping.signal.aborted) throw stopping.signal.reason;
    getMeter("@meshid/registrar")
      .createObservableGauge(RegistrarMetrics.leader, {
        description: "1 while this replica is the leader",
      })
      .addCallback((result) => result.observe(leading ? 1 : 0));

    const lead = (signal: AbortSignal): void => {
      leading = true;
      logger.info({ identity }, "leading: reconciling entries");
      loops.push(
        reconciler.run(signal).finally(() => {
          leading = false;
        }),
      );
    };
    if (config.leaderElection.enabled) {
      const le = config.leaderElection;
      elector = createLeaderElector({
        client: kubeClient,
        leaseName: le.leaseName,
        leaseNamespace: le.leaseNamespace,
        identity,
        leaseDurationMs: le.leaseDurationSeconds * 1000,
        renewDeadlineMs: le.renewDeadlineSeconds * 1000,
        retryPeriodMs: le.retryPeriodSeconds * 1000,
        onStartedLeading: lead,
        onStoppedLeading: () => logger.info({ identity }, "stopped leading"),
        onNewLeader: (holder) => logger.info({ leader: holder }, "leader observed"),
        logger: {
          info: (obj, msg) => logger.info(obj, msg),
          warn: (obj, msg) => logger.warn(obj, msg),
        },
        clock: { now: () => clock.now(), sleep: (ms, signal) => clock.sleep(ms, signal) },
      });
      loops.push(elector.run(stopping.signal));
    } else {
      lead(stopping.signal);
    }

    const status = (): RegistrarStatus => {
      const observedLeader = elector?.status().leader ?? (leading ? identity : undefined);
      return {
        identity,
        leader: leading,
        ...(observedLeader === undefined ? {} : { observedLeader }),
        synced: watchers?.synced() ?? false,
        reconciler: reconciler.stats(),
        listCounts: watchers?.listCounts() ?? {},
        natsConnected: nats?.connected() ?? false,
      };
    };
    return {
      ready: () => {
        if (stopping.signal.aborted || watchers?.synced() !== true) return false;
        if (!leading) return true;
        const s = reconciler.stats();
        return s.caReachable && s.fullReconciles > 0;
      },
      status,
      done: async () => {
        await new Promise<void>((resolve) => {
          if (stopping.signal.aborted) resolve();
          else stopping.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        await stop();
        return "stopped";
      },
      stop,
    };
  } catch (err) {
    logger.error({ [LogKeys.err]: err }, "registrar start-up failed");
    await stop();
    throw err;
  }
}
