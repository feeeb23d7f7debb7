// The notifier's NATS side: `bundle.updated` wake-ups in, `bundle.published` out.
import { hostname } from "node:os";
import {
  connectNatsWithRetry,
  createEventPublisher,
  subscribeEvents,
  type EventPayload,
  type EventPublisher,
} from "@meshid/events";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { Events, type ConnectionOptions, type NatsConnection } from "nats";
import type { BundlePublishedSink } from "../ports";

/** Parameters of {@link startNatsEvents}. */
export interface StartNatsEventsParams {
  /** NATS URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly natsUrl: string;
  readonly logger: Logger;
  /** CloudEvents source of `bundle.published`. Default `meshid/bundle-notifier/<hostname>`. */
  readonly source?: string;
  /** Connects to NATS (default: nats.js `connect`). */
  readonly connect?: (options: ConnectionOptions) => Promise<NatsConnection>;
}

/** The notifier's NATS connection, made in the background. */
export interface NatsEvents extends BundlePublishedSink {
  /**
   * Sequence numbers of `bundle.updated` events, and a synthetic -1 after every reconnect
   * (events may have been missed: re-check). Ends on `close()`. Iterate once.
   */
  readonly wakeups: AsyncIterable<number>;
  /** True while connected. */
  connected(): boolean;
  /** Unsubscribes, drains and closes the connection. Safe to call twice. */
  close(): Promise<void>;
}

/** Marker pushed after a reconnect: lower than any real sequence number. */
export const RECONNECT_WAKEUP = -1;

/**
 * Starts the NATS side of the notifier. It connects in the background (retrying with backoff,
 * then reconnecting forever), so an unreachable NATS never blocks the notifier: the WatchBundle
 * stream alone still delivers every change. `publish` drops the event (resolves) while not
 * connected: `bundle.published` is a notification, the targets are the truth.
 */
export function startNatsEvents(params: StartNatsEventsParams): NatsEvents {
  const logger = params.logger.child({ [LogKeys.component]: "nats-events" });
  const source = params.source ?? `meshid/bundle-notifier/${hostname()}`;
  const stop = new AbortController();
  const queue: number[] = [];
  let wake: (() => void) | undefined;
  let nc: NatsConnection | undefined;
  let publisher: EventPublisher | undefined;
  let isConnected = false;
  let iterated = false;

  const push = (sequence: number): void => {
    queue.push(sequence);
    const w = wake;
    wake = undefined;
    w?.();
  };

  async function watchStatus(conn: NatsConnection): Promise<void> {
    for await (const status of conn.status()) {
      if (status.type === Events.Disconnect) {
        isConnected = false;
        logger.warn("NATS disconnected");
      } else if (status.type === Events.Reconnect) {
        isConnected = true;
        logger.info("NATS reconnected");
        push(RECONNECT_WAKEUP);
      }
    }
  }

  async function pump(): Promise<void> {
    const conn = await connectNatsWithRetry({
      natsUrl: params.natsUrl,
      name: "meshid-bundle-notifier",
      logger,
      signal: stop.signal,
      whileDown: "the bundle stream still delivers changes",
      ...(params.connect === undefined ? {} : { connect: params.connect }),
    });
    if (conn === undefined) return;
    nc = conn;
    publisher = createEventPublisher({ nc: conn, source, logger });
    isConnected = true;
    logger.info("listening for bundle.updated");
    void watchStatus(conn).catch(() => undefined);
    const subscription = subscribeEvents({
      nc: conn,
      types: ["bundle.updated"],
      signal: stop.signal,
      logger,
    });
    for await (const event of subscription) push(event.data.sequenceNumber);
  }

  const pumping = pump().catch((err: unknown) => {
    if (!stop.signal.aborted) logger.warn({ [LogKeys.err]: err }, "bundle.updated listener failed");
  });

  return {
    connected: () => isConnected,
    async publish(payload: EventPayload<"bundle.published">) {
      const conn = nc;
      if (publisher === undefined || conn === undefined || conn.isClosed() || !isConnected) return;
      await publisher.publish("bundle.published", payload, { subject: payload.target });
    },
    async close() {
      if (!stop.signal.aborted) {
        stop.abort();
        const w = wake;
        wake = undefined;
        w?.();
      }
      const conn = nc;
      nc = undefined;
      isConnected = false;
      if (conn !== undefined && !conn.isClosed()) await conn.drain().catch(() => undefined);
      await pumping;
    },
    wakeups: {
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
    },
  };
}
