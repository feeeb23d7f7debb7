import { isMeshidError } from "@meshid/errors";
import { Command, CommanderError, Option } from "commander";
import type { CliIo } from "./cli-io";
import { defineAction, type ActionBinder, type RunState } from "./command-env";
import { registerAgentCommands } from "./commands/agent";
import { registerAuthorityCommands } from "./commands/authority";
import { registerBundleCommands } from "./commands/bundle";
import { registerEntryCommands } from "./commands/entry";
import { registerEventsCommands } from "./commands/events";
import { registerMeshConfigCommands } from "./commands/mesh-config";
import { registerStatusCommand } from "./commands/status";
import { registerSvidCommands } from "./commands/svid";
import { registerTokenCommands } from "./commands/token";
import { grpcStatusName } from "./connection-errors";
import {
  EXIT_CODES_HELP,
  ExitCode,
  USAGE_ERROR_CODE,
  exitCodeForError,
  type ExitCodeValue,
} from "./exit-codes";

/** meshctl's version (the package version). */
export const MESHCTL_VERSION = "0.1.0";

/** Environment variable that makes meshctl print stack traces of errors. */
export const DEBUG_ENV = "MESHCTL_DEBUG";

const ENVIRONMENT_HELP = [
  "Environment:",
  "  MESHCTL_CONTEXT              context file (default .meshid/meshctl.yaml)",
  "  MESHCTL_CA_SOCKET            CA admin socket (like --ca-socket)",
  "  MESHCTL_CA_ADDRESS           CA mTLS address (like --ca-address)",
  "  MESHCTL_PROXY_CONFIG_SOCKET  proxy-config admin socket",
  "  MESHCTL_NATS_URL             NATS URL (like --nats)",
  "  SPIFFE_ENDPOINT_SOCKET       Workload API socket (svid fetch, mTLS identity)",
  "  MESHCTL_DEBUG=1              print stack traces of errors",
].join("\n");

/** Builds the command tree of one run; output goes to `io`. */
export function buildProgram(io: CliIo, state: RunState): Command {
  const program = new Command("meshctl")
    .description("meshctl: the command-line client of meshid (SPIFFE identities for NGINX meshes)")
    .version(MESHCTL_VERSION, "-V, --version")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError("(add --help for usage)")
    .option("--context <file>", "context file (default .meshid/meshctl.yaml, or $MESHCTL_CONTEXT)")
    .option("--json", "machine-readable JSON output")
    .option("--ca-socket <path>", "CA admin Unix socket (every caller there is admin)")
    .option("--ca-address <host:port>", "CA mTLS address (use localhost, not an IP)")
    .option(
      "--ca-server-id <spiffe-id>",
      "expected SPIFFE ID of the CA (default spiffe://<td>/meshid/ca)",
    )
    .option("--proxy-config-socket <path>", "proxy-config admin Unix socket")
    .option("--proxy-config-address <host:port>", "proxy-config mTLS address")
    .option("--proxy-config-server-id <spiffe-id>", "expected SPIFFE ID of proxy-config")
    .option("--cert <file>", "client X509-SVID (PEM chain) for mTLS")
    .option("--key <file>", "private key of --cert (PEM)")
    .option("--bundle <file>", "trust bundle (PEM) to verify servers")
    .option("--workload-socket <path>", "Workload API socket to take meshctl's SVID from (mTLS)")
    .option("--nats <url>", "NATS URL (events)")
    .addOption(
      new Option("--timeout <duration>", "deadline of each call").default(undefined, "15s"),
    )
    .addHelpText("after", `\n${ENVIRONMENT_HELP}`)
    // "afterAll": every subcommand's --help lists the exit codes too.
    .addHelpText("afterAll", `\n${EXIT_CODES_HELP}\n`);

  const bind: ActionBinder = (command, handler) => defineAction(command, io, state, handler);
  registerEntryCommands(program, bind);
  registerAgentCommands(program, bind);
  registerTokenCommands(program, bind);
  registerBundleCommands(program, bind);
  registerAuthorityCommands(program, bind);
  registerMeshConfigCommands(program, bind);
  registerSvidCommands(program, bind);
  registerEventsCommands(program, bind);
  registerStatusCommand(program, bind);
  return program;
}

/** Prints an error of a command run: `error: <message> (<STATUS>)`, stack only with MESHCTL_DEBUG. */
function reportError(io: CliIo, err: unknown): void {
  const debug = io.env[DEBUG_ENV] === "1" || io.env[DEBUG_ENV] === "true";
  if (isMeshidError(err)) {
    const status = grpcStatusName(err);
    io.stderr.write(`error: ${err.message}${status === undefined ? "" : ` (${status})`}\n`);
    if (
      err.code === USAGE_ERROR_CODE ||
      err.code.startsWith("spiffe.") ||
      err.code.startsWith("config.")
    ) {
      io.stderr.write("(add --help for usage)\n");
    }
  } else {
    io.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
  }
  if (debug) {
    let e: unknown = err;
    while (e instanceof Error) {
      io.stderr.write(`${e.stack ?? e.message}\n`);
      e = e.cause;
      if (e !== undefined) io.stderr.write("caused by: ");
    }
  }
}

/**
 * Runs meshctl with `argv` (the arguments after the program name) and returns its exit code
 * (see {@link ExitCode}). Never throws and never calls `process.exit`: the real process and
 * in-process tests use it the same way.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<ExitCodeValue> {
  const state: RunState = { exitCode: ExitCode.ok, closers: [] };
  try {
    const program = buildProgram(io, state);
    await program.parseAsync([...argv], { from: "user" });
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end with 0; a group without its subcommand shows help and is a usage error.
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") {
        return ExitCode.ok;
      }
      if (err.code === "commander.help" && err.exitCode === 0) return ExitCode.ok;
      return ExitCode.usage;
    }
    reportError(io, err);
    return exitCodeForError(err);
  } finally {
    for (const close of state.closers.splice(0).reverse()) {
      try {
        await close();
      } catch {
        // Closing is best effort; the command's outcome is already decided.
      }
    }
  }
}

export { ExitCode, type ExitCodeValue } from "./exit-codes";
export { type CliIo, processIo } from "./cli-io";
