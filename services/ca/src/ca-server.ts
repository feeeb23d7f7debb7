// The CA assembled in process: store, keys, authorities, domain managers, events, and the two
// gRPC servers (TCP with TLS from the CA's own serving SVID; the admin Unix socket).
import { chmod, mkdir, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { MeshidError } from "@meshid/errors";
import {
  createEventPublisher,
  ensureEventStream,
  connectNats,
  subscribeEvents,
  type EventPayload,
} from "@meshid/events";
import {
  addHealth,
  createGrpcServer,
  createMutableSvidSource,
  type GrpcServer,
  type MutableSvidSource,
  type TlsMaterial,
} from "@meshid/grpc-kit";
import { createKubeClient, type KubeClient } from "@meshid/kube";
import { certificatesToPem, exportPkcs8Pem, generateKeyPair, isKeyType } from "@meshid/pki";
import { meshidCaV1 } from "@meshid/proto";
import { SpiffeId, bundleToPem } from "@meshid/spiffe";
import { LogKeys, createStopStack, type Logger } from "@meshid/telemetry";
import type { NatsConnection } from "nats";
import { createDiskKeyManager } from "./adapters/disk-key-manager";
import { createKubeTokenReviewer } from "./adapters/kube-token-reviewer";
import { createMemoryKeyManager } from "./adapters/memory-key-manager";
import { createSqliteDatastore } from "./adapters/sqlite-datastore";
import {
  createUpstreamAuthority,
  loadUpstreamAuthorityConfig,
} from "./adapters/upstream-authority";
import { createAgentService } from "./api/agent-service";
import { createAuthorityService } from "./api/authority-service";
import {
  adminSocketMiddleware,
  createAuthorizer,
  tcpAuthzMiddleware,
  type Authorizer,
  type CaCallContext,
} from "./api/authz";
import { createBundleService } from "./api/bundle-service";
import { bundleRecordToSpiffeBundle } from "./api/converters";
import type { AuthorityManager } from "./api/deps";
import { createEntryService } from "./api/entry-service";
import { createSvidService } from "./api/svid-service";
import type { CaConfig } from "./config";
import { createAgentManager, type PsatClusterConfig } from "./domain/agent-manager";
import { createAuthorityManager } from "./domain/authority-manager";
import { createEntryManager } from "./domain/entry-manager";
import { createSvidSigner } from "./domain/svid-signer";
import type { CaSettings } from "./domain/types";
import type { Clock, Datastore, EventSink, TokenReviewer, UpstreamAuthority } from "./ports";

/** SPIFFE ID path of the CA's own serving SVID. */
export const CA_SERVER_ID_PATH = "/meshid/ca";
/** DNS SAN of the CA's serving SVID (clients dial `localhost:<port>` in tests). */
export const CA_SERVER_DNS_NAMES: readonly string[] = Object.freeze(["localhost"]);
/** Mode of the admin socket: the CA's own user only. */
export const ADMIN_SOCKET_MODE = 0o600;
/** Mode of the admin socket's directory. */
export const ADMIN_SOCKET_DIRECTORY_MODE = 0o700;
/** Grace period of the gRPC servers on stop, in milliseconds. */
export const CA_SHUTDOWN_GRACE_MS = 5_000;
/** Smallest delay between two re-mints of the serving SVID, in milliseconds. */
const MIN_REMINT_DELAY_MS = 1_000;

/** The gRPC services the CA serves (health comes on top). */
const CA_SERVICE_NAMES = [
  "meshid.ca.v1.EntryService",
  "meshid.ca.v1.AgentService",
  "meshid.ca.v1.SvidService",
  "meshid.ca.v1.BundleService",
  "meshid.ca.v1.AuthorityService",
] as const;

/** Parameters of {@link startCaServer}. */
export interface StartCaServerParams {
  readonly config: CaConfig;
  readonly logger: Logger;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Aborting it stops the background work (rotation, re-minting, config events). */
  readonly signal?: AbortSignal;
  /**
   * k8s_psat token reviewers by cluster name, replacing the Kubernetes-backed ones built from
   * `config.psatClusters` (tests use the testkit API server stand-in or fakes). A cluster must
   * still be configured in `config.psatClusters` for its audience and service accounts.
   */
  readonly tokenReviewers?: ReadonlyMap<string, TokenReviewer>;
}

/** A running CA. */
export interface RunningCa {
  /** The bound TCP port. */
  readonly tcpPort: number;
  /** `localhost:<port>`: the target clients dial (the serving SVID has DNS SAN `localhost`). */
  readonly tcpAddress: string;
  readonly adminSocketPath: string;
  readonly authority: AuthorityManager;
  /** The current trust bundle as PEM. */
  bundlePem(): string;
  /** True once everything is up, until stop. */
  ready(): boolean;
  /** Stops everything in reverse start order; safe to call more than once. */
  stop(): Promise<void>;
}

/** The system clock. */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

const noopEventSink: EventSink = { publish: () => Promise.resolve({}) };

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
      "ca.admin_socket.directory_mode",
      `the admin socket directory ${dir} must not be accessible to group or others ` +
        `(mode ${(info.mode & 0o777).toString(8)}); chmod it 0700`,
    );
  }
}

/** A Kubernetes client for one psat cluster: its kubeconfig file, else the pod's account. */
function psatClusterClient(cluster: CaConfig["psatClusters"][number]): KubeClient {
  try {
    return createKubeClient(
      cluster.kubeconfigFile === undefined ? {} : { kubeconfigFile: cluster.kubeconfigFile },
      { userAgent: "meshid-ca" },
    );
  } catch (err) {
    throw new MeshidError(
      "failed_precondition",
      "ca.config.psat_cluster",
      `psat cluster "${cluster.name}": no usable Kubernetes API connection: ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
}

function buildTokenReviewers(
  config: CaConfig,
  overrides: ReadonlyMap<string, TokenReviewer> | undefined,
  onClient: (client: KubeClient) => void,
): Map<string, PsatClusterConfig> {
  const clusters = new Map<string, PsatClusterConfig>();
  for (const cluster of config.psatClusters) {
    let reviewer = overrides?.get(cluster.name);
    if (reviewer === undefined) {
      const client = psatClusterClient(cluster);
      onClient(client);
      reviewer = createKubeTokenReviewer({ client });
    }
    clusters.set(cluster.name, {
      reviewer,
      audience: cluster.audience,
      allowedServiceAccounts: cluster.allowedServiceAccounts,
    });
  }
  return clusters;
}

/** Reads the settings a `config.updated` event asks for (zero / empty fields mean unchanged). */
export function settingsFromConfigUpdated(payload: EventPayload<"config.updated">): {
  settings: Partial<CaSettings>;
  rotateNow: boolean;
} {
  const settings: { -readonly [K in keyof CaSettings]?: CaSettings[K] } = {};
  if (payload.caTtlSeconds > 0) settings.caTtlSeconds = payload.caTtlSeconds;
  if (payload.svidTtlSeconds > 0) settings.svidTtlSeconds = payload.svidTtlSeconds;
  if (payload.caKeyType !== "") {
    if (!isKeyType(payload.caKeyType)) {
      throw new MeshidError(
        "invalid_argument",
        "ca.config.key_type",
        `config.updated carries an unknown ca_key_type "${payload.caKeyType}"`,
      );
    }
    settings.caKeyType = payload.caKeyType;
  }
  return { settings, rotateNow: payload.rotateNow };
}

/**
 * Starts the CA: opens the datastore and key manager, loads (or creates) the authorities, wires
 * the domain managers and events, and serves the gRPC API on TCP (TLS; mTLS for everything but
 * attestation and health) and on the admin Unix socket. Resolves once both listen.
 * @throws MeshidError when a part cannot start (everything started so far is stopped first).
 */
export async function startCaServer(params: StartCaServerParams): Promise<RunningCa> {
  const { config, logger } = params;
  const clock = params.clock ?? systemClock;
  const stack = createStopStack({ name: "ca", logger, signal: params.signal });
  let running = false;

  try {
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    await ensurePrivateDirectory(dirname(config.adminSocketPath));

    const store: Datastore = await createSqliteDatastore({
      path: config.datastore.path,
      logger,
      now: () => clock.now(),
    });
    stack.defer(() => store.close());

    const keyManager =
      config.keyManager === "memory"
        ? createMemoryKeyManager()
        : await createDiskKeyManager({ dataDir: config.dataDir, logger });

    let upstream: UpstreamAuthority | undefined;
    if (config.upstreamAuthorityFile !== undefined) {
      const upstreamConfig = await loadUpstreamAuthorityConfig(config.upstreamAuthorityFile);
      const created = await createUpstreamAuthority(upstreamConfig, {
        trustDomain: config.trustDomain,
        clock,
        logger,
      });
      upstream = created;
      stack.defer(() => created.close());
    }

    let events: EventSink = noopEventSink;
    let nc: NatsConnection | undefined;
    if (config.natsUrl === undefined) {
      logger.warn("natsUrl is not set: the CA publishes no events");
    } else {
      nc = await connectNats({
        natsUrl: config.natsUrl,
        name: "meshid-ca",
        errorCode: "ca.nats.unavailable",
      });
      const conn = nc;
      stack.defer(async () => {
        await conn.drain().catch(() => conn.close());
      });
      await ensureEventStream(nc);
      events = createEventPublisher({
        nc,
        source: `meshid/ca/${hostname()}`,
        logger,
        now: () => clock.now(),
      });
    }

    const authority = createAuthorityManager({
      trustDomain: config.trustDomain,
      keyManager,
      ...(upstream === undefined ? {} : { upstream }),
      store,
      events,
      clock,
      logger,
      settings: {
        caTtlSeconds: config.caTtlSeconds,
        svidTtlSeconds: config.svidTtlSeconds,
        caKeyType: config.caKeyType,
      },
    });
    await authority.init();
    const authorityRun = authority.run(stack.signal).catch((err: unknown) => {
      if (!stack.signal.aborted) {
        logger.error({ [LogKeys.err]: err }, "ca: the authority rotation loop failed");
      }
    });
    stack.defer(async () => {
      await authorityRun;
    });

    const entries = createEntryManager({
      trustDomain: config.trustDomain,
      store,
      events,
      logger,
      limits: { maxBatchSize: config.limits.maxBatchSize },
    });
    const signer = createSvidSigner({
      trustDomain: config.trustDomain,
      store,
      entries,
      authority,
      events,
      clock,
      logger,
      limits: {
        maxBatchSize: config.limits.maxBatchSize,
        signRatePerAgent: config.limits.signRatePerAgent,
      },
    });
    const agents = createAgentManager({
      trustDomain: config.trustDomain,
      store,
      authority,
      tokenReviewers: buildTokenReviewers(config, params.tokenReviewers, (client) => {
        stack.defer(() => client.close());
      }),
      events,
      clock,
      logger,
      agentSvidTtlSeconds: config.agentSvidTtlSeconds,
    });
    const authorizer: Authorizer = createAuthorizer({
      adminIds: config.adminIds,
      entries,
      agents,
      clock,
    });

    if (nc !== undefined) {
      const subscription = subscribeEvents({
        nc,
        types: ["config.updated"],
        signal: stack.signal,
        logger,
      });
      const loop = (async () => {
        for await (const event of subscription) {
          try {
            const { settings, rotateNow } = settingsFromConfigUpdated(event.data);
            await authority.applySettings(settings, { rotateNow });
            logger.info({ ...settings, rotateNow }, "ca: applied config.updated");
          } catch (err) {
            logger.warn({ [LogKeys.err]: err }, "ca: config.updated refused");
          }
        }
      })();
      stack.defer(async () => {
        await subscription.close();
        await loop;
      });
    }

    // The CA's own serving SVID, re-minted at half-life and on every bundle change.
    const serverId = SpiffeId.fromParts(config.trustDomain, CA_SERVER_ID_PATH);
    const mintServing = async (): Promise<{ material: TlsMaterial; notAfter: Date }> => {
      const active = authority.activeSigner();
      const keys = await generateKeyPair("ec-p256");
      const now = clock.now();
      const leaf = active.issuer.issue({
        spiffeId: serverId.toString(),
        publicKey: keys.publicKey,
        dnsNames: CA_SERVER_DNS_NAMES,
        ttlSeconds: authority.settings().svidTtlSeconds,
        now,
      });
      return {
        material: {
          certChainPem: certificatesToPem([leaf.certDer, ...active.chainDer]),
          keyPem: exportPkcs8Pem(keys.privateKey),
          bundlePem: bundleToPem(bundleRecordToSpiffeBundle(authority.bundle())),
        },
        notAfter: leaf.notAfter,
      };
    };
    const first = await mintServing();
    const serving: MutableSvidSource = createMutableSvidSource(first.material);
    let servingNotAfter = first.notAfter;
    let remintWake: (() => void) | undefined;
    const remint = async (): Promise<void> => {
      try {
        const next = await mintServing();
        serving.set(next.material);
        servingNotAfter = next.notAfter;
        logger.debug(
          { [LogKeys.notAfter]: next.notAfter.toISOString() },
          "ca: serving SVID minted",
        );
      } catch (err) {
        logger.error({ [LogKeys.err]: err }, "ca: could not mint the serving SVID");
      }
    };
    const unsubscribeBundle = authority.onBundleChange(() => {
      void remint();
      remintWake?.();
    });
    stack.defer(() => unsubscribeBundle());
    const remintLoop = (async () => {
      while (!stack.signal.aborted) {
        const remainingMs = servingNotAfter.getTime() - clock.now().getTime();
        const delay = Math.max(MIN_REMINT_DELAY_MS, Math.floor(remainingMs / 2));
        const changed = new Promise<void>((resolve) => {
          remintWake = resolve;
        });
        try {
          // A bundle change re-mints on its own; it restarts the half-life wait.
          const slept = await Promise.race([
            clock.sleep(delay, stack.signal).then(() => true),
            changed.then(() => false),
          ]);
          if (slept) await remint();
        } catch {
          return;
        }
      }
    })();
    stack.defer(async () => {
      remintWake?.();
      await remintLoop;
    });

    const channelOptions = {
      "grpc.max_receive_message_length": config.limits.maxMessageBytes,
      "grpc.max_send_message_length": config.limits.maxMessageBytes,
    };
    const services = {
      entry: createEntryService({
        trustDomain: config.trustDomain,
        entries,
        authorizer,
        maxBatchSize: config.limits.maxBatchSize,
        logger,
      }),
      agent: createAgentService({ trustDomain: config.trustDomain, agents, authority }),
      svid: createSvidService({
        trustDomain: config.trustDomain,
        signer,
        maxBatchSize: config.limits.maxBatchSize,
      }),
      bundle: createBundleService({ authority, signal: stack.signal }),
      authority: createAuthorityService({ authority }),
    };
    const addServices = (
      server: GrpcServer,
      middleware: ReturnType<typeof tcpAuthzMiddleware>,
    ): void => {
      server.with(middleware).add(meshidCaV1.EntryServiceDefinition, services.entry);
      server.with(middleware).add(meshidCaV1.AgentServiceDefinition, services.agent);
      server.with(middleware).add(meshidCaV1.SvidServiceDefinition, services.svid);
      server.with(middleware).add(meshidCaV1.BundleServiceDefinition, services.bundle);
      server.with(middleware).add(meshidCaV1.AuthorityServiceDefinition, services.authority);
      const health = addHealth(server);
      for (const name of CA_SERVICE_NAMES) health.setStatus("healthy", name);
    };

    const tcp = createGrpcServer({
      logger,
      tls: { source: serving, clientCertificate: "request" },
      channelOptions,
    });
    addServices(tcp, tcpAuthzMiddleware(authorizer));
    const tcpPort = await tcp.listen(`${config.listen.host}:${config.listen.port}`);
    stack.defer(() => tcp.shutdown({ graceMs: CA_SHUTDOWN_GRACE_MS }));

    const admin = createGrpcServer({ logger, channelOptions });
    addServices(admin, adminSocketMiddleware());
    await admin.listenUnix(config.adminSocketPath, {
      mode: ADMIN_SOCKET_MODE,
      directoryMode: ADMIN_SOCKET_DIRECTORY_MODE,
    });
    stack.defer(() => admin.shutdown({ graceMs: CA_SHUTDOWN_GRACE_MS }));

    running = true;
    logger.info(
      {
        port: tcpPort,
        adminSocketPath: config.adminSocketPath,
        [LogKeys.spiffeId]: serverId.toString(),
      },
      "ca: serving",
    );
    return {
      tcpPort,
      tcpAddress: `localhost:${tcpPort}`,
      adminSocketPath: config.adminSocketPath,
      authority,
      bundlePem: () => bundleToPem(bundleRecordToSpiffeBundle(authority.bundle())),
      ready: () => running && !stack.signal.aborted,
      stop: () => stack.stop(),
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

export type { CaCallContext };
