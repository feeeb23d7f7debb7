// The command-line front of every meshid service process: `--config <file>` (or the service's
// `MESHID_<SERVICE>_CONFIG_FILE`), `--help`, service-specific string flags, config loading with
// exit code 2 on a ConfigError, and the crash handlers around the run.
import { parseArgs } from "node:util";
import { CONFIG_ERROR_EXIT_CODE, ConfigError } from "@meshid/config";

/** Exit code after a start-up failure, a crash or an unhandled rejection. */
export const SERVICE_FAILURE_EXIT_CODE = 1;

/** What a service's command line asked for. `flags` is present only when a flag was given. */
export type ServiceCommand =
  | {
      readonly kind: "run";
      readonly configFile?: string;
      readonly flags?: Readonly<Record<string, string>>;
    }
  | { readonly kind: "help" }
  | { readonly kind: "usage_error"; readonly message: string };

/** The command line a service accepts beyond `--config` and `--help`. */
export interface ServiceCommandSpec {
  /** Environment variable naming the config file, e.g. `MESHID_CA_CONFIG_FILE`. */
  readonly configFileEnvVar: string;
  /** Extra `--<name> <value>` flags, e.g. `join-token`; each must not be empty. */
  readonly stringFlags?: readonly string[];
}

/**
 * Parses `--config <file>` / `-c <file>`, `--help` / `-h` and the spec's string flags; without
 * `--config` the file named by `spec.configFileEnvVar` in `env` is used, if set and not empty.
 * Positionals, unknown flags and empty values are usage errors. Never throws.
 */
export function parseServiceCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  spec: ServiceCommandSpec,
): ServiceCommand {
  const stringFlags = spec.stringFlags ?? [];
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries(stringFlags.map((name) => [name, { type: "string" as const }])),
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    return { kind: "usage_error", message: (err as Error).message };
  }
  if (values.help === true) return { kind: "help" };
  if (values.config === "") return { kind: "usage_error", message: "--config needs a file" };
  const flags: Record<string, string> = {};
  for (const name of stringFlags) {
    const value = values[name];
    if (value === "") {
      const what = name.split("-").pop() ?? "value";
      return { kind: "usage_error", message: `--${name} needs a ${what}` };
    }
    if (typeof value === "string") flags[name] = value;
  }
  const fromEnv = env[spec.configFileEnvVar];
  const configFile =
    typeof values.config === "string" ? values.config : fromEnv === "" ? undefined : fromEnv;
  return {
    kind: "run",
    ...(configFile === undefined ? {} : { configFile }),
    ...(Object.keys(flags).length === 0 ? {} : { flags }),
  };
}

/** Where {@link serviceMain} reads its input and writes its messages. */
export interface ServiceMainIo {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** Parameters of {@link serviceMain} and {@link runServiceMain}. */
export interface ServiceMainParams<C> {
  /** Program name in messages, e.g. `meshid-ca`. */
  readonly binary: string;
  /** Usage text printed for `--help` and after a usage error. */
  readonly usage: string;
  readonly command: ServiceCommandSpec;
  /** Loads the configuration; a thrown ConfigError is printed and exits 2. */
  loadConfig(
    command: Extract<ServiceCommand, { kind: "run" }>,
    env: Readonly<Record<string, string | undefined>>,
  ): C;
  /** Runs the service (usually via runServiceProcess); resolves with the exit code. */
  run(config: C): Promise<number>;
}

/**
 * Parses the command line, loads the configuration and runs the service. Resolves with the
 * exit code: 0 after `--help`, 2 ({@link CONFIG_ERROR_EXIT_CODE}) after a usage or config
 * error (every problem printed to stderr), else what `run` resolves with. Other errors reject.
 */
export async function serviceMain<C>(
  params: ServiceMainParams<C>,
  io: ServiceMainIo,
): Promise<number> {
  const command = parseServiceCommand(io.argv, io.env, params.command);
  if (command.kind === "help") {
    io.stdout.write(`${params.usage}\n`);
    return 0;
  }
  if (command.kind === "usage_error") {
    io.stderr.write(`${params.binary}: ${command.message}\n${params.usage}\n`);
    return CONFIG_ERROR_EXIT_CODE;
  }
  let config: C;
  try {
    config = params.loadConfig(command, io.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`${err.message}\n`);
      return CONFIG_ERROR_EXIT_CODE;
    }
    throw err;
  }
  return params.run(config);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The process entry of a service's `main.ts`: runs {@link serviceMain} on this process's argv,
 * environment and stdio, exits with its code (after a turn, so nothing left over, a stray
 * timer or socket, keeps a stopped service alive), and exits 1 with a one-line message on an
 * unhandled rejection, an uncaught exception or a crash.
 */
export function runServiceMain<C>(params: ServiceMainParams<C>): void {
  const fail = (what: string, err: unknown): never => {
    process.stderr.write(`${params.binary}: ${what}: ${errorMessage(err)}\n`);
    process.exit(SERVICE_FAILURE_EXIT_CODE);
  };
  process.on("unhandledRejection", (reason) => fail("unhandled rejection", reason));
  process.on("uncaughtException", (err) => fail("uncaught exception", err));
  serviceMain(params, {
    argv: process.argv.slice(2),
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
  }).then(
    (code) => {
      process.exitCode = code;
      setImmediate(() => process.exit(code)).unref();
    },
    (err: unknown) => fail("crashed", err),
  );
}
