// Test harness for the CA's gRPC API: a CA started in process with startCaServer, admin
// clients over the Unix socket, and "agents" that attest over server-TLS and then use mTLS.
import {
  createGrpcChannel,
  createGrpcClient,
  createMutableSvidSource,
  createStaticBundleSource,
  type MutableSvidSource,
} from "@meshid/grpc-kit";
import { certificatesToPem, createCsr, exportPkcs8Pem, generateKeyPair } from "@meshid/pki";
import { meshidCaV1, type meshidTypesV1 } from "@meshid/proto";
import { SpiffeId } from "@meshid/spiffe";
import { createNoopLogger, type Logger } from "@meshid/telemetry";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { CA_SERVER_ID_PATH, startCaServer, type RunningCa } from "../ca-server";
import { buildCaConfig, type CaConfig } from "../config";
import type { Clock, TokenReviewer } from "../ports";

type Channel = ReturnType<typeof createGrpcChannel>;

/** The typed clients of every CA service on one channel. */
export interface CaClients {
  readonly entry: meshidCaV1.EntryServiceClient;
  readonly agent: meshidCaV1.AgentServiceClient;
  readonly svid: meshidCaV1.SvidServiceClient;
  readonly bundle: meshidCaV1.BundleServiceClient;
  readonly authority: meshidCaV1.AuthorityServiceClient;
}

/** An attested test agent with an mTLS channel. */
export interface TestAgent {
  readonly spiffeId: SpiffeId;
  readonly svid: meshidTypesV1.X509Svid;
  /** Its SVID + the CA bundle; `set` it to rotate. */
  readonly source: MutableSvidSource;
  readonly clients: CaClients;
  /** Private key PEM of the agent SVID. */
  readonly keyPem: string;
}

/** Options of {@link startCaHarness}. */
export interface StartCaHarnessParams {
  readonly natsUrl?: string;
  readonly trustDomain?: string;
  readonly adminIds?: readonly string[];
  readonly psatClusters?: readonly {
    name: string;
    audience?: string;
    allowedServiceAccounts: string[];
    kubeconfigFile?: string;
  }[];
  readonly tokenReviewers?: ReadonlyMap<string, TokenReviewer>;
  readonly maxBatchSize?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A running CA with helpers. */
export interface CaHarness {
  readonly ca: RunningCa;
  readonly config: CaConfig;
  readonly dir: TempDir;
  /** Clients over the admin Unix socket (every caller is admin). */
  readonly admin: CaClients;
  /** The CA's serving SPIFFE ID. */
  readonly serverId: SpiffeId;
  /** A DER CSR for a fresh ec-p256 key (and the key PEM). */
  newCsr(): Promise<{ csr: Uint8Array; keyPem: string }>;
  /** Clients over server-TLS only (no client certificate). */
  anonymousClients(): CaClients;
  /** Clients over mTLS presenting `source`. */
  mtlsClients(source: MutableSvidSource): CaClients;
  /** Creates a join token and attests with it. */
  attestAgent(): Promise<TestAgent>;
  /** Closes every channel, stops the CA, removes the temp dir. */
  close(): Promise<void>;
}

function clientsOn(channel: Channel): CaClients {
  const options = { deadlineMs: 20_000 };
  return {
    entry: createGrpcClient(meshidCaV1.EntryServiceDefinition, channel, options),
    agent: createGrpcClient(meshidCaV1.AgentServiceDefinition, channel, options),
    svid: createGrpcClient(meshidCaV1.SvidServiceDefinition, channel, options),
    bundle: createGrpcClient(meshidCaV1.BundleServiceDefinition, channel, options),
    authority: createGrpcClient(meshidCaV1.AuthorityServiceDefinition, channel, options),
  };
}

/** Starts a CA in a temp dir (memory keys, SQLite, 127.0.0.1:0) with admin clients. */
export async function startCaHarness(params: StartCaHarnessParams = {}): Promise<CaHarness> {
  const dir = await createTempDir("meshid-ca-api-");
  const channels: Channel[] = [];
  let ca: RunningCa | undefined;
  try {
    const { config } = buildCaConfig({
      trustDomain: params.trustDomain ?? "example.org",
      dataDir: dir.path,
      listen: "127.0.0.1:0",
      keyManager: "memory",
      logLevel: "silent",
      ...(params.natsUrl === undefined ? {} : { natsUrl: params.natsUrl }),
      ...(params.adminIds === undefined ? {} : { adminIds: [...params.adminIds] }),
      ...(params.psatClusters === undefined
        ? {}
        : { psatClusters: params.psatClusters.map((c) => ({ ...c })) }),
      ...(params.maxBatchSize === undefined
        ? {}
        : { limits: { maxBatchSize: params.maxBatchSize } }),
    });
    const running = await startCaServer({
      config,
      logger: params.logger ?? createNoopLogger(),
      ...(params.clock === undefined ? {} : { clock: params.clock }),
      ...(params.tokenReviewers === undefined ? {} : { tokenReviewers: params.tokenReviewers }),
    });
    ca = running;
    const serverId = SpiffeId.fromParts(config.trustDomain, CA_SERVER_ID_PATH);
    const open = (channel: Channel): CaClients => {
      channels.push(channel);
      return clientsOn(channel);
    };
    const admin = open(createGrpcChannel({ target: `unix://${config.adminSocketPath}` }));
    const newCsr = async (): Promise<{ csr: Uint8Array; keyPem: string }> => {
      const keys = await generateKeyPair("ec-p256");
      const csr = await createCsr({ privateKey: keys.privateKey, publicKey: keys.publicKey });
      return { csr, keyPem: exportPkcs8Pem(keys.privateKey) };
    };
    const anonymousClients = (): CaClients =>
      open(
        createGrpcChannel({
          target: running.tcpAddress,
          tls: {
            bundleSource: createStaticBundleSource({ bundlePem: running.bundlePem() }),
            serverId,
          },
        }),
      );
    const mtlsClients = (source: MutableSvidSource): CaClients =>
      open(createGrpcChannel({ target: running.tcpAddress, tls: { source, serverId } }));
    return {
      ca: running,
      config,
      dir,
      admin,
      serverId,
      newCsr,
      anonymousClients,
      mtlsClients,
      async attestAgent() {
        const { token } = await admin.agent.createJoinToken({ ttlSeconds: 600 });
        const { csr, keyPem } = await newCsr();
        const res = await anonymousClients().agent.attestAgent({
          attestationType: "join_token",
          token,
          csr: Buffer.from(csr),
        });
        const svid = res.svid;
        if (svid === undefined || svid.spiffeId === undefined) throw new Error("no SVID");
        const source = createMutableSvidSource({
          certChainPem: certificatesToPem(svid.certChain),
          keyPem,
          bundlePem: running.bundlePem(),
        });
        return {
          spiffeId: SpiffeId.fromParts(svid.spiffeId.trustDomain, svid.spiffeId.path),
          svid,
          source,
          clients: mtlsClients(source),
          keyPem,
        };
      },
      async close() {
        for (const channel of channels) channel.close();
        await running.stop();
        await dir.cleanup();
      },
    };
  } catch (err) {
    for (const channel of channels) channel.close();
    await ca?.stop();
    await dir.cleanup();
    throw err;
  }
}
