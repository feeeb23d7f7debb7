// proxy-config assembled in process: its own SVID, NATS, the MeshConfig store and manager, the
// pod informer and Event reporter, and the two gRPC servers (TCP with mTLS; the admin Unix
// socket).
import { readFile, mkdir, chmod, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { MeshidError } from "@meshid/errors";
import { connectNats, createEventPublisher, ensureEventStream } from "@meshid/events";
import {
  addHealth,
  createGrpcServer,
  createStaticSvidSource,
  type GrpcServer,
  type SvidSource,
} from "@meshid/grpc-kit";
import {
  KubeConfigError,
  createKubeClient,
  type KubeClient,
  type KubeConnectionSettings,
} from "@meshid/kube";
import { meshidProxyconfigV1 } from "@meshid/proto";
import { LogKeys, createStopStack, getMeter, type Logger, type StopStack } from "@meshid/telemetry";
import type { BatchObservableCallback } from "@opentelemetry/api";
import { createWorkloadX509Source } from "@meshid/workload-api";
import { createFileMeshConfigStore } from "./adapters/file-mesh-config-store";
import { createKubeMeshConfigStore } from "./adapters/kube-mesh-config-store";
import { createKubePodEventRecorder, startKubePodDirectory } from "./adapters/kube-pods";
import { createNatsConfigPublisher } from "./adapters/nats-config-publisher";
import { adminSocketMiddleware, tcpAuthzMiddleware } from "./api/authz";
import { createMeshConfigService } from "./api/mesh-config-service";
import { createProxyConfigService } from "./api/proxy-config-service";
import type { ProxyConfigConfig } from "./config";
import { startAnnotationReporter, type AnnotationReporter } from "./domain/annotation-reporter";
import { MTLS_MODES, type MeshConfig } from "./domain/mesh-config";
import { createMeshConfigManager, type MeshConfigManager } from "./domain/mesh-config-manager";
import { createProxyConfigHub } from "./domain/proxy-config-hub";
import type { ConfigUpdatedPublisher, MeshConfigStore, PodDirectory } from "./ports";

/** Mode of the admin socket: the service's own user only. */
export const ADMIN_SOCKET_MODE = 0o600;
/** Mode of the admin socket's directory. */
export const ADMIN_SOCKET_DIRECTORY_MODE = 0o700;
/** Grace period of the gRPC servers on stop, in milliseconds. */
export const SHUTDOWN_GRACE_MS = 5_000;
/** Meter name of proxy-config's metrics. */
export const METER_NAME = "@meshid/proxy-config";
/** Metric names. */
export const Metrics = {
  mtlsMode: "meshid_proxy_config_mtls_mode",
  generation: "meshid_proxy_config_mesh_config_generation",
  watchStreams: "meshid_proxy_config_watch_streams",
  eventsRecorded: "meshid_proxy_config_pod_events_recorded",
  configUpdatedPublished: "meshid_proxy_config_config_updated_published",
} as const;

/** User-Agent of proxy-config's Kubernetes API requests. */
const USER_AGENT = "meshid-proxy-config";

const SERVICE_NAMES = [
  "meshid.proxyconfig.v1.MeshConfigService",
  "meshid.proxyconfig.v1.ProxyConfigService",
] as const;

/** Parameters of {@link startProxyConfig}. */
export interface StartProxyConfigParams {
  readonly config: ProxyConfigConfig;
  readonly logger: Logger;
  /**
   * Replaces the client built from `config.kubernetes` (tests: the API server stand-in); used
   * only when `config.kubernetes` is set. The caller keeps it and closes it.
   */
  readonly kubeClient?: KubeClient;
  /** Aborting it interrupts start-up and stops background work. */
  readonly signal?: AbortSignal;
  /** Default `() => new Date()`. */
  readonly now?: () => Date;
}

/** What proxy-config reports about itself. */
export interface ProxyConfigStatus {
  readonly meshConfig: MeshConfig;
  readonly openWatchStreams: number;
  readonly podEventsRecorded: number;
  readonly configUpdatedPublished: number;
  readonly configUpdatedFailures: number;
}

/** A running proxy-config. */
export interface RunningProxyConfig {
  readonly tcpPort: number;
  /** `localhost:<port>`. */
  readonly tcpAddress: string;
  readonly adminSocketPath: string;
  status(): ProxyConfigStatus;
  ready(): boolean;
  /** Stops everything in reverse start order; safe to call twice; never rejects. */
  stop(): Promise<void>;
}

async function ensurePrivateDirectory(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode: ADMIN_SOCKET_DIRECTORY_MODE });
  if (created !== undefined) {
    await chmod(dir, ADMIN_SOCKET_DIRECTORY_MODE);
    return;
  }
  const info = await stat(dir);
  if ((info.mode & 0o077) !== 0) {
    throw new MeshidError(
      "failed_precondition",
      "proxy_config.admin_socket.directory_mode",
      `the admin socket directory ${dir} must not be accessible to group or others ` +
        `(mode ${(info.mode & 0o777).toString(8)}); chmod it 0700`,
    );
  }
}

async function svidSourceOf(
  config: ProxyConfigConfig,
  logger: Logger,
  stack: StopStack,
): Promise<SvidSource> {
  if (config.tls.kind === "workload_api") {
    const source = await createWorkloadX509Source({
      socketPath: config.tls.socketPath,
      logger,
      signal: stack.signal,
    });
    stack.defer(() => source.close());
    return source;
  }
  const [certChainPem, keyPem, bundlePem] = await Promise.all([
    readFile(config.tls.certFile, "utf8"),
    readFile(config.tls.keyFile, "utf8"),
    readFile(config.tls.bundleFile, "utf8"),
  ]);
  return createStaticSvidSource({ certChainPem, keyPem, bundlePem });
}

/**
 * The Kubernetes client of `settings` (kubeconfig file, else the in-cluster service account),
 * closed when the stack stops.
 * @throws MeshidError `proxy_config.kube.config` when the kubeconfig or the in-cluster setup
 *   cannot be used.
 */
function ownKubeClient(settings: KubeConnectionSettings, stack: StopStack): KubeClient {
  let client: KubeClient;
  try {
    client = createKubeClient(settings, { userAgent: USER_AGENT });
  } catch (err) {
    if (!(err instanceof KubeConfigError)) throw err;
    throw new MeshidError(
      "failed_precondition",
      "proxy_config.kube.config",
      `cannot use the Kubernetes connection: ${err.message}`,
      { cause: err },
    );
  }
  stack.defer(() => client.close());
  return client;
}

/**
 * Starts proxy-config: loads the MeshConfig (creating the defaults when missing), follows its
 * changes and the pods, and serves MeshConfigService and ProxyConfigService on TCP (mTLS) and
 * the admin socket. Resolves once both listen.
 * @throws MeshidError when a part cannot start (everything started so far is stopped first).
 */
export async function startProxyConfig(
  params: StartProxyConfigParams,
): Promise<RunningProxyConfig> {
  const { config, logger } = params;
  const now = params.now ?? (() => new Date());
  const stack = createStopStack({ name: "proxy-config", logger, signal: params.signal });
  let running = false;

  try {
    await ensurePrivateDirectory(dirname(config.adminSocketPath));
    const svidSource = await svidSourceOf(config, logger, stack);

    let publisher: ConfigUpdatedPublisher | undefined;
    if (config.natsUrl === undefined) {
      logger.warn(
        "natsUrl is not set: config.updated is not published (the CA keeps its settings)",
      );
    } else {
      const nc = await connectNats({
        natsUrl: config.natsUrl,
        name: "meshid-proxy-config",
        errorCode: "proxy_config.nats.unavailable",
      });
      const conn = nc;
      stack.defer(async () => {
        await conn.drain().catch(() => conn.close());
      });
      await ensureEventStream(nc);
      publisher = createNatsConfigPublisher(
        createEventPublisher({ nc, source: `meshid/proxy-config/${hostname()}`, logger, now }),
      );
    }

    const kubeClient =
      config.kubernetes === undefined
        ? undefined
        : (params.kubeClient ?? ownKubeClient(config.kubernetes, stack));

    let store: MeshConfigStore;
    if (config.meshConfig.kind === "kubernetes") {
      if (kubeClient === undefined) {
        throw new MeshidError(
          "failed_precondition",
          "proxy_config.kube.disabled",
          "meshConfig.source kubernetes needs kubernetes.enabled",
        );
      }
      store = createKubeMeshConfigStore({
        client: kubeClient,
        name: config.meshConfig.name,
        logger,
      });
    } else {
      store = createFileMeshConfigStore({ path: config.meshConfig.path, logger });
    }

    const meshConfig: MeshConfigManager = createMeshConfigManager({
      store,
      ...(publisher === undefined ? {} : { publisher }),
      logger,
      now,
    });
    await meshConfig.init(stack.signal);
    const managerRun = meshConfig.run(stack.signal).catch((err: unknown) => {
      if (!stack.signal.aborted) {
        logger.error({ [LogKeys.err]: err }, "proxy-config: following the MeshConfig failed");
      }
    });
    stack.defer(async () => {
      await managerRun;
    });

    let pods: PodDirectory | undefined;
    let podsSynced = (): boolean => true;
    let reporter: AnnotationReporter | undefined;
    if (kubeClient !== undefined) {
      const directory = await startKubePodDirectory({ client: kubeClient, logger });
      stack.defer(() => directory.stop());
      pods = directory;
      podsSynced = () => directory.synced();
      const started = startAnnotationReporter({
        pods: directory,
        meshConfig,
        recorder: createKubePodEventRecorder({ client: kubeClient, logger, now }),
      });
      stack.defer(() => started.stop());
      reporter = started;
    }

    const hub = createProxyConfigHub({ meshConfig, ...(pods === undefined ? {} : { pods }) });
    const maxWatchStreams = config.limits.maxWatchStreams;
    const services = {
      mesh: createMeshConfigService({ meshConfig }),
      proxy: createProxyConfigService({ hub, maxWatchStreams }),
    };
    const addServices = (
      server: GrpcServer,
      middleware: ReturnType<typeof tcpAuthzMiddleware>,
    ): void => {
      server.with(middleware).add(meshidProxyconfigV1.MeshConfigServiceDefinition, services.mesh);
      server.with(middleware).add(meshidProxyconfigV1.ProxyConfigServiceDefinition, services.proxy);
      const health = addHealth(server);
      for (const name of SERVICE_NAMES) health.setStatus("healthy", name);
    };

    const tcp = createGrpcServer({
      logger,
      tls: { source: svidSource, clientCertificate: "require" },
    });
    addServices(
      tcp,
      tcpAuthzMiddleware({ trustDomain: config.trustDomain, adminIds: config.adminIds }),
    );
    const tcpPort = await tcp.listen(`${config.listen.host}:${config.listen.port}`);
    stack.defer(() => tcp.shutdown({ graceMs: SHUTDOWN_GRACE_MS }));

    const admin = createGrpcServer({ logger });
    addServices(admin, adminSocketMiddleware());
    await admin.listenUnix(config.adminSocketPath, {
      mode: ADMIN_SOCKET_MODE,
      directoryMode: ADMIN_SOCKET_DIRECTORY_MODE,
    });
    stack.defer(() => admin.shutdown({ graceMs: SHUTDOWN_GRACE_MS }));

    const status = (): ProxyConfigStatus => ({
      meshConfig: meshConfig.current(),
      openWatchStreams: hub.openStreams(),
      podEventsRecorded: reporter?.recorded() ?? 0,
      configUpdatedPublished: meshConfig.stats().published,
      configUpdatedFailures: meshConfig.stats().publishFailures,
    });

    const meter = getMeter(METER_NAME);
    const modeGauge = meter.createObservableGauge(Metrics.mtlsMode, {
      description: "The mesh mTLS mode (1 for the current mode, 0 for the others)",
    });
    const generationGauge = meter.createObservableGauge(Metrics.generation, {
      description: "Generation of the MeshConfig in use",
    });
    const streamsGauge = meter.createObservableGauge(Metrics.watchStreams, {
      description: "Open WatchProxyConfig streams",
    });
    const eventsCounter = meter.createObservableCounter(Metrics.eventsRecorded, {
      description: "Kubernetes Events recorded about pod mtls-mode annotations",
    });
    const publishedCounter = meter.createObservableCounter(Metrics.configUpdatedPublished, {
      description: "config.updated events published",
    });
    const observables = [modeGauge, generationGauge, streamsGauge, eventsCounter, publishedCounter];
    const observeAll: BatchObservableCallback = (result) => {
      if (!running || stack.signal.aborted) return;
      const s = status();
      for (const mode of MTLS_MODES) {
        result.observe(modeGauge, s.meshConfig.mtlsMode === mode ? 1 : 0, { mode });
      }
      result.observe(generationGauge, s.meshConfig.generation);
      result.observe(streamsGauge, s.openWatchStreams);
      result.observe(eventsCounter, s.podEventsRecorded);
      result.observe(publishedCounter, s.configUpdatedPublished);
    };
    meter.addBatchObservableCallback(observeAll, observables);
    stack.defer(() => meter.removeBatchObservableCallback(observeAll, observables));

    running = true;
    logger.info(
      {
        port: tcpPort,
        adminSocketPath: config.adminSocketPath,
        store: store.description,
        mtlsMode: meshConfig.current().mtlsMode,
        generation: meshConfig.current().generation,
        kubernetes: kubeClient !== undefined,
      },
      "proxy-config: serving",
    );
    return {
      tcpPort,
      tcpAddress: `localhost:${tcpPort}`,
      adminSocketPath: config.adminSocketPath,
      status,
      // Before the first pod list, renderings would ignore annotations: not ready yet.
      ready: () => running && !stack.signal.aborted && podsSynced(),
      stop: () => stack.stop(),
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}
