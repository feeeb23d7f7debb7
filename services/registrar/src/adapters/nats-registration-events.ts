// pod.registered / pod.deregistered on NATS, published after the CA accepted the write.
import {
  connectNatsWithRetry,
  createEventPublisher,
  redactNatsUrl,
  type EventPublisher,
} from "@meshid/events";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type { NatsConnection } from "nats";
import type { PodRef, RegistrationEvents } from "../ports";

/** Registration events published over a NATS connection. */
export interface NatsRegistrationEvents extends RegistrationEvents {
  connected(): boolean;
  close(): Promise<void>;
}

/** Parameters of {@link startNatsRegistrationEvents}. */
export interface StartNatsRegistrationEventsParams {
  readonly natsUrl: string;
  /** CloudEvents source, e.g. `meshid/registrar/<pod name>`. */
  readonly source: string;
  readonly logger: Logger;
}

function spiffeIdProto(id: string): { trustDomain: string; path: string } {
  const m = /^spiffe:\/\/([^/]+)(\/.*)?$/.exec(id);
  return { trustDomain: m?.[1] ?? "", path: m?.[2] ?? "" };
}

/**
 * Connects to NATS in the background (reconnecting forever) and publishes registration events
 * while connected; events that find no connection are dropped (they are notifications: the
 * entries themselves are at the CA). Never throws from `registered`/`deregistered`.
 */
export function startNatsRegistrationEvents(
  params: StartNatsRegistrationEventsParams,
): NatsRegistrationEvents {
  let nc: NatsConnection | undefined;
  let publisher: EventPublisher | undefined;
  const stop = new AbortController();
  const connecting = (async () => {
    const conn = await connectNatsWithRetry({
      natsUrl: params.natsUrl,
      name: params.source,
      logger: params.logger,
      signal: stop.signal,
      whileDown: "registration events are dropped meanwhile",
    });
    if (conn === undefined) return;
    nc = conn;
    publisher = createEventPublisher({ nc: conn, source: params.source, logger: params.logger });
    params.logger.info({ natsUrl: redactNatsUrl(params.natsUrl) }, "connected to NATS");
  })();

  const publish = (
    type: "pod.registered" | "pod.deregistered",
    pod: PodRef,
    spiffeId: string,
    entryId: string,
  ): void => {
    if (publisher === undefined || nc === undefined || nc.isClosed()) return;
    publisher
      .publish(
        type,
        {
          namespace: pod.namespace,
          podName: pod.name,
          podUid: pod.uid,
          spiffeId: spiffeIdProto(spiffeId),
          entryId,
        },
        { subject: entryId },
      )
      .catch((err: unknown) => {
        params.logger.warn({ [LogKeys.err]: (err as Error).message, type }, "event publish failed");
      });
  };

  return {
    registered: (pod, spiffeId, entryId) => publish("pod.registered", pod, spiffeId, entryId),
    deregistered: (pod, spiffeId, entryId) => publish("pod.deregistered", pod, spiffeId, entryId),
    connected: () => nc !== undefined && !nc.isClosed(),
    async close() {
      stop.abort();
      await connecting;
      if (nc !== undefined && !nc.isClosed()) await nc.drain().catch(() => undefined);
    },
  };
}
