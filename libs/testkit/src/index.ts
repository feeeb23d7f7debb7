export { getFreePort } from "./ports";
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
