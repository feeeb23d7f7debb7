export { LogKeys, type LogKey } from "./log-keys";
export {
  REDACTED,
  REDACTED_PATHS,
  REDACTED_PRIVATE_KEY,
  createLogger,
  createNoopLogger,
  redactPrivateKeys,
  type CreateLoggerParams,
  type LogFn,
  type Logger,
} from "./logger";
export {
  createMemoryLogger,
  type CreateMemoryLoggerParams,
  type MemoryLogger,
} from "./memory-logger";
export {
  startOpsServer,
  type HealthReport,
  type MetricsHandler,
  type OpsServer,
  type StartOpsServerParams,
} from "./ops-server";
export { extractTraceContext, injectTraceContext, type HeaderCarrier } from "./propagation";
export {
  PROMETHEUS_CONTENT_TYPE,
  TELEMETRY_UNSUPPORTED_CODE,
  traceExportersFromEnv,
  startTelemetry,
  type StartTelemetryParams,
  type Telemetry,
} from "./sdk";
export {
  STOP_SIGNALS,
  readPackageVersion,
  runServiceProcess,
  type RunServiceProcessParams,
  type RunningService,
  type ServiceProcess,
} from "./run-service-process";
export { getMeter, getTracer, withSpan } from "./with-span";
export {
  SERVICE_FAILURE_EXIT_CODE,
  parseServiceCommand,
  runServiceMain,
  serviceMain,
  type ServiceCommand,
  type ServiceCommandSpec,
  type ServiceMainIo,
  type ServiceMainParams,
} from "./service-main";
export {
  createStopStack,
  type CreateStopStackParams,
  type StopStack,
  type StopStep,
} from "./stop-stack";
