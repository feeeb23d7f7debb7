import { MeshidError } from "@meshid/errors";

/** Exit code a service's `main` uses when its configuration is invalid. */
export const CONFIG_ERROR_EXIT_CODE = 2;

/** Stable error code of {@link ConfigError}. */
export const CONFIG_ERROR_CODE = "config.invalid";

/** One thing wrong with a service's configuration. */
export interface ConfigProblem {
  /**
   * Where the offending value came from: an environment variable name, the YAML file path,
   * `"defaults"` (a schema default failed a cross-field check) or `"(not set)"` (a required
   * setting is missing).
   */
  readonly source: string;
  /** Dotted path of the setting (`datastore.url`, `adminIds[1]`); `""` for the whole config. */
  readonly path: string;
  /** What is wrong, without the value itself when it could be secret. */
  readonly message: string;
}

/**
 * Thrown by `loadConfig` when the configuration is invalid. Lists every problem found (file,
 * environment and schema) at once, both in `problems` and in the multi-line `message`.
 * Kind `invalid_argument`, code `config.invalid`.
 */
export class ConfigError extends MeshidError {
  /** Every problem found, in a stable order (file, environment, schema). */
  readonly problems: readonly ConfigProblem[];

  constructor(
    service: string,
    problems: readonly ConfigProblem[],
    options: { cause?: unknown } = {},
  ) {
    super("invalid_argument", CONFIG_ERROR_CODE, formatConfigProblems(service, problems), {
      cause: options.cause,
      details: { service, problemCount: problems.length },
    });
    this.name = "ConfigError";
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })));
  }
}

/** Formats problems as the multi-line message of {@link ConfigError}. */
export function formatConfigProblems(service: string, problems: readonly ConfigProblem[]): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const lines = problems.map(
    (p) => `  - ${p.source}: ${p.path === "" ? "(root)" : p.path}: ${p.message}`,
  );
  return [`invalid configuration for service "${service}" (${count}):`, ...lines].join("\n");
}
