export { getFreePort } from "./ports";
export { SERVICE_NODE_FLAGS } from "./service-node-flags";
export { createTempDir, type TempDir } from "./temp-dir";
export {
  COMMON_BINARY_DIRS,
  requireBinary,
  lookupSystemUser,
  spawnManaged,
  waitForPort,
  stopProcess,
  stopAllManagedProcesses,
  listManagedProcesses,
  listProcesses,
  listProcessTree,
  isProcessAlive,
  runCommand,
  type RequireBinaryParams,
  type SystemUser,
  type ProcessExit,
  type SpawnManagedParams,
  type ManagedProcess,
  type WaitParams,
  type WaitForPortParams,
  type StopProcessParams,
  type ProcessInfo,
  type RunCommandParams,
  type CommandResult,
} from "./process";
export {
  startPostgres,
  findPostgresBinDir,
  POSTGRES_TEST_DATABASE,
  POSTGRES_TEST_USER,
  type StartPostgresParams,
  type PostgresServer,
} from "./postgres";
export {
  startNginx,
  nginxPrefixDirectives,
  checkNginxPrefixConfig,
  type NginxPrefixDirectives,
  type NginxConfigContext,
  type NginxConfig,
  type StartNginxParams,
  type NginxConfigTestResult,
  type NginxServer,
} from "./nginx";
export { describeContract, type ContractAdapter, type ContractSubject } from "./contract";
export {
  findNatsServerBinary,
  startNatsCluster,
  startNatsServer,
  type NatsCluster,
  type NatsServer,
  type StartNatsClusterParams,
  type StartNatsServerParams,
} from "./nats-server";
export {
  startKubeApiServer,
  createSelfSignedStandInTls,
  startKubeletStandIn,
  type DeleteKubeObjectParams,
  type FailNextParams,
  type IssueServiceAccountTokenParams,
  type KubeApiRequest,
  type KubeApiServer,
  type KubeApiServerOptions,
  type KubeletStandIn,
  type KubeletStandInOptions,
  type KubeObject,
  type KubeObjectMeta,
  type KubeObjectRef,
  type ListKubeObjectsParams,
  type SelfSignedStandInTlsParams,
  type ServiceAccountTokenClaims,
  type StandInTlsOptions,
} from "./kube";
export {
  createTestCa,
  TEST_CA_TTL_SECONDS,
  TEST_SVID_TTL_SECONDS,
  type CreateTestCaParams,
  type IssueTestSvidParams,
  type IssueTestIntermediateParams,
  type TestCa,
  type TestCaSigner,
  type TestIntermediateCa,
  type TestSvid,
  writeSvidFiles,
  type SvidFiles,
} from "./test-ca";
export { createFakeClock, type FakeClock } from "./fake-clock";
export {
  startMeshidCa,
  MESHID_CA_MAIN,
  DEFAULT_CA_START_TIMEOUT_MS,
  DEFAULT_JOIN_TOKEN_TTL_SECONDS,
  type StartMeshidCaParams,
  type MeshidCaProcess,
  type MeshidCaAdminClients,
  type CreateTestJoinTokenParams,
  openCaAdmin,
} from "./meshid-ca-process";
export {
  startMeshidAgent,
  MESHID_AGENT_MAIN,
  DEFAULT_AGENT_START_TIMEOUT_MS,
  type StartMeshidAgentParams,
  type MeshidAgentProcess,
} from "./meshid-agent-process";
export {
  startMeshidService,
  meshidServiceMain,
  DEFAULT_SERVICE_READY_TIMEOUT_MS,
  type StartMeshidServiceParams,
  type MeshidServiceProcess,
} from "./meshid-service-process";
