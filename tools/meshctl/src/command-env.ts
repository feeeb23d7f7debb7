import { parseDuration } from "@meshid/config";
import type { Command } from "commander";
import type { CliIo } from "./cli-io";
import {
  openCa,
  openMeshConfig,
  type CaClients,
  type ConnectionFlags,
  type ServiceConnection,
} from "./connection";
import { loadContext, type MeshctlContext } from "./context";
import { usageError, type ExitCodeValue } from "./exit-codes";
import { createOutput, type Output } from "./output";

/** Default deadline of one gRPC call, in milliseconds (`--timeout`). */
export const DEFAULT_TIMEOUT_MS = 15_000;

/** The global options every command sees (flags before or after the command name). */
export interface GlobalFlags extends ConnectionFlags {
  readonly context?: string;
  readonly json?: boolean;
  readonly nats?: string;
  readonly timeout?: string;
}

/** What a command action gets: output, context, lazily opened connections. */
export interface CommandEnv {
  readonly io: CliIo;
  readonly out: Output;
  readonly flags: GlobalFlags;
  /** Deadline of each call in milliseconds. */
  readonly timeoutMs: number;
  /** The context file (loaded on first use). */
  context(): MeshctlContext;
  /** CA clients (connected on first use, closed after the command). */
  ca(): Promise<CaClients>;
  /** proxy-config MeshConfigService (connected on first use, closed after the command). */
  meshConfig(): Promise<Awaited<ReturnType<typeof openMeshConfig>>>;
  /** Registers cleanup run after the command, whatever happened. */
  onClose(close: () => void | Promise<void>): void;
}

/** A command action: returns an exit code (default 0) or throws. */
export type CommandHandler<Options> = (
  env: CommandEnv,
  args: readonly unknown[],
  options: Options,
) => Promise<ExitCodeValue | void>;

/** The part of a run that actions report into. */
export interface RunState {
  exitCode: ExitCodeValue;
  readonly closers: (() => void | Promise<void>)[];
}

function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_MS;
  const seconds = parseDuration(text);
  if (seconds <= 0) throw usageError(`--timeout must be more than 0 (got "${text}")`);
  return Math.round(seconds * 1000);
}

/** Creates the environment of an action of `command`. */
export function createCommandEnv(io: CliIo, command: Command, state: RunState): CommandEnv {
  const flags = command.optsWithGlobals<GlobalFlags>();
  const timeoutMs = parseTimeout(flags.timeout);
  let context: MeshctlContext | undefined;
  let ca: Promise<CaClients> | undefined;
  let meshConfig: ReturnType<typeof openMeshConfig> | undefined;
  const getContext = (): MeshctlContext =>
    (context ??= loadContext({ flag: flags.context, env: io.env, cwd: io.cwd }));
  const track = (conn: ServiceConnection): void => {
    state.closers.push(() => conn.close());
  };
  return {
    io,
    out: createOutput(io, flags.json === true),
    flags,
    timeoutMs,
    context: getContext,
    ca: () =>
      (ca ??= openCa(flags, getContext(), io, timeoutMs).then((c) => {
        track(c.conn);
        return c;
      })),
    meshConfig: () =>
      (meshConfig ??= openMeshConfig(flags, getContext(), io, timeoutMs).then((c) => {
        track(c.conn);
        return c;
      })),
    onClose: (close) => state.closers.push(close),
  };
}

/**
 * Attaches `handler` as the action of `command`: positional arguments as parsed by commander,
 * the command's own options, and a {@link CommandEnv}. The exit code it returns is the run's.
 */
export function defineAction<Options>(
  command: Command,
  io: CliIo,
  state: RunState,
  handler: CommandHandler<Options>,
): Command {
  return command.action(async function (this: Command) {
    const env = createCommandEnv(io, this, state);
    const code = await handler(env, this.processedArgs as unknown[], this.opts() as Options);
    if (code !== undefined) state.exitCode = code;
  });
}

/** Binds {@link defineAction} to one run so command modules stay short. */
export type ActionBinder = <Options>(command: Command, handler: CommandHandler<Options>) => Command;
