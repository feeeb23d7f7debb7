// The stop order of a service's parts: whatever is started is registered right after, and a
// stop (or a failed start) undoes them last-first.
import { LogKeys } from "./log-keys";
import type { Logger } from "./logger";

/** One thing to undo on stop: close a store, shut a server down, … */
export type StopStep = () => Promise<void> | void;

/** Parameters of {@link createStopStack}. */
export interface CreateStopStackParams {
  /** Short service name in messages: `<name> stopping`, `<name>: a part failed to stop`. */
  readonly name: string;
  readonly logger: Logger;
  /** Aborting it aborts {@link StopStack.signal} too (it does not run the steps). */
  readonly signal?: AbortSignal;
}

/** The parts a service started, in order, with one signal for all of them. */
export interface StopStack {
  /** Aborted when the outer signal aborts or {@link StopStack.stop} begins. */
  readonly signal: AbortSignal;
  /** Registers a step; steps run in the reverse order of registration. */
  defer(step: StopStep): void;
  /**
   * Aborts {@link StopStack.signal}, then runs every step last-first; a step that fails is
   * logged and the others still run. Every call returns the same promise.
   */
  stop(): Promise<void>;
}

/** Creates an empty {@link StopStack}. */
export function createStopStack(params: CreateStopStackParams): StopStack {
  const internal = new AbortController();
  const onOuterAbort = (): void => internal.abort(params.signal?.reason);
  params.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const steps: StopStep[] = [];
  let stopping: Promise<void> | undefined;

  const runSteps = async (): Promise<void> => {
    internal.abort(new Error(`${params.name} stopping`));
    params.signal?.removeEventListener("abort", onOuterAbort);
    for (const step of steps.reverse()) {
      try {
        await step();
      } catch (err) {
        params.logger.warn({ [LogKeys.err]: err }, `${params.name}: a part failed to stop`);
      }
    }
    steps.length = 0;
  };

  return {
    signal: internal.signal,
    defer: (step) => {
      steps.push(step);
    },
    stop: () => (stopping ??= runSteps()),
  };
}
