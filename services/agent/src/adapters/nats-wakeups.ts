import { agentWakeupSubject, connectNatsWithRetry, subscribeEvents } from "@meshid/events";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { Events, type ConnectionOptions, type NatsConnection } from "nats";

/** Parameters of {@link startNatsWakeups}. */
export interface StartNatsWakeupsParams {
  /** NATS URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly natsUrl: string;
  /** This agent's SPIFFE ID string; the wake-ups come on agentWakeupSubject(agentId). */
  readonly agentId: string;
  readonly logger: Logger;
  /** Client name shown by the server (default `meshid-agent`). */
  readonly name?: string;
  /** Connects to NATS (default: nats.js `connect`); tests inject failures here. */
  readonly connect?: (options: ConnectionOptions) => Promise<NatsConnection>;
  /** First retry delay of the initial connection (default 500 ms, doubling up to 10 s). */
  readonly connectRetryInitialMs?: number;
}

/** The agent's NATS wake-ups: revision hints, 0 after every (re)connect. Iterate once. */
export interface NatsWakeups extends AsyncIterable<number> {
  /** True while connected to NATS. */
  connected(): boolean;
  /** The NATS connection once made (for publishing events), else undefined. */
  connection(): NatsConnection | undefined;
  /** Unsubscribes, closes the connection and ends the iteration. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts listening for this agent's wake-ups (AgentWakeup events on
 * `agentWakeupSubject(agentId)`) and yields each one's revision. It connects in the background
 * (retrying with backoff until it succeeds, then reconnecting forever), so an unreachable NATS
 * never blocks the agent: the entry sync's reconcile covers the gap. After every connect and
 * reconnect it yields a synthetic 0 (a full sync), since wake-ups sent meanwhile were lost.
 */
export function startNatsWakeups(params: StartNatsWakeupsParams): NatsWakeups {
  const logger = params.logger.child({ [LogKeys.component]: "nats-wakeups" });
  const subject = agentWakeupSubject(params.agentId);
  const stop = new AbortController();
  const queue: number[] = [];
  let wake: (() => void) | undefined;
  let nc: NatsConnection | undefined;
  let isConnected = false;
  let iterated = false;

  const push = (revision: number): void => {
    queue.push(revision);
    const w = wake;
    wake = undefined;
    w?.();
  };

  async function watchStatus(conn: NatsConnection): Promise<void> {
    for await (const status of conn.status()) {
      if (status.type === Events.Disconnect) {
        isConnected = false;
        logger.warn("NATS disconnected; wake-ups paused");
      } else if (status.type === Events.Reconnect) {
        isConnected = true;
        logger.info("NATS reconnected: full entry sync");
        push(0);
      }
    }
  }

  async function pump(): Promise<void> {
    const conn = await connectNatsWithRetry({
      natsUrl: params.natsUrl,
      name: params.name ?? "meshid-agent",
      logger,
      signal: stop.signal,
      whileDown: "entries still reconcile",
      ...(params.connect === undefined ? {} : { connect: params.connect }),
      ...(params.connectRetryInitialMs === undefined
        ? {}
        : { initialDelayMs: params.connectRetryInitialMs }),
    });
    if (conn === undefined) return;
    nc = conn;
    isConnected = true;
    logger.info({ natsSubject: subject }, "listening for wake-ups");
    void watchStatus(conn).catch(() => undefined);
    const subscription = subscribeEvents({
      nc: conn,
      types: ["agent.wakeup"],
      natsSubject: subject,
      signal: stop.signal,
      logger,
    });
    // Wake-ups sent before the subscription existed were lost.
    push(0);
    for await (const event of subscription) {
      push(event.data.revision);
    }
  }

  const pumping = pump().catch((err: unknown) => {
    if (!stop.signal.aborted) logger.warn({ [LogKeys.err]: err }, "wake-up listener failed");
  });

  const close = async (): Promise<void> => {
    if (!stop.signal.aborted) {
      stop.abort();
      const w = wake;
      wake = undefined;
      w?.();
    }
    const conn = nc;
    nc = undefined;
    isConnected = false;
    if (conn !== undefined && !conn.isClosed()) await conn.close().catch(() => undefined);
    await pumping;
  };

  return {
    connected: () => isConnected,
    connection: () => nc,
    close,
    async *[Symbol.asyncIterator]() {
      if (iterated) throw new Error("NATS wake-ups: iterate only once");
      iterated = true;
      while (!stop.signal.aborted) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}
