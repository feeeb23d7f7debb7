export {
  CONFIG_ERROR_CODE,
  CONFIG_ERROR_EXIT_CODE,
  ConfigError,
  formatConfigProblems,
  type ConfigProblem,
} from "./config-error";
export {
  DURATION_INVALID_CODE,
  durationSchema,
  formatDuration,
  parseDuration,
  type DurationSchema,
  type DurationSchemaOptions,
} from "./duration";
export {
  LOG_LEVELS,
  formatListenAddress,
  listenAddressSchema,
  opsSchema,
  logLevelSchema,
  parseListenAddress,
  pathSchema,
  type ListenAddress,
  type ListenAddressSchema,
  type LogLevel,
} from "./common-schemas";
export { deepFreeze } from "./deep-freeze";
export { withInputDefault, type WithInputDefault } from "./input-default";
export {
  configFileEnvVar,
  envPrefix,
  envVarName,
  loadConfig,
  type LoadConfigParams,
} from "./load-config";
