// An agent identity attested at a real CA process with a join token, and the gRPC CA client
// that uses its SVID: the start of the tests that drive the CA client or the entry sync
// directly, without a whole agent.
import { join } from "node:path";
import { createMutableSvidSource, type MutableSvidSource } from "@meshid/grpc-kit";
import type { Logger } from "@meshid/telemetry";
import { createFakeClock, type MeshidCaProcess } from "@meshid/testkit";
import { createDiskAgentIdentityStore } from "../src/adapters/agent-identity-store";
import { readBundleFile } from "../src/adapters/bundle-file";
import {
  createGrpcAgentAttestationClient,
  createGrpcCaClient,
  type GrpcCaClient,
} from "../src/adapters/grpc-ca-client";
import { createNodeAttestationTokenSource } from "../src/adapters/node-attestation-token";
import { createAgentIdentity, type AgentIdentity } from "../src/domain/agent-identity";

/** What {@link attestAgentAtCa} returns. */
export interface AttestedCaClient {
  readonly identity: AgentIdentity<MutableSvidSource>;
  /** The agent's SPIFFE ID string. */
  readonly agentId: string;
  /** The CA client over mTLS with the agent's SVID (close it when done). */
  readonly client: GrpcCaClient;
}

/**
 * Attests a new agent at `ca` (join token, data in `<dir>/agent`, a fake clock frozen at now)
 * and opens the CA client with its SVID.
 */
export async function attestAgentAtCa(
  ca: MeshidCaProcess,
  dir: string,
  logger: Logger,
): Promise<AttestedCaClient> {
  const token = await ca.createJoinToken();
  const trustDomain = ca.trustDomain;
  const identity = createAgentIdentity({
    trustDomain,
    readBootstrapBundle: () => readBundleFile({ path: ca.bundleFile, trustDomain }),
    tokenSource: createNodeAttestationTokenSource({ type: "join_token", joinToken: token }),
    client: createGrpcAgentAttestationClient({
      address: ca.address,
      serverId: ca.serverId,
      logger,
    }),
    store: createDiskAgentIdentityStore({ dataDir: join(dir, "agent"), logger }),
    clock: createFakeClock(new Date()),
    logger,
    createSvidSource: createMutableSvidSource,
  });
  await identity.start();
  const client = createGrpcCaClient({
    address: ca.address,
    serverId: ca.serverId,
    svidSource: identity.svidSource(),
    logger,
  });
  return { identity, agentId: identity.current().spiffeId, client };
}
