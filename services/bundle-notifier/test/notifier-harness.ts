// Shared set-up of the whole-notifier suites: bundle.published events collected from a real
// nats-server, polling helpers, and PEM certificate counting.
import { subscribeEvents, type ReceivedEvent } from "@meshid/events";
import type { NatsConnection } from "nats";

/** Generous bound for anything that must happen (the machine may be loaded). */
export const WAIT_MS = 30_000;

/** Polls `check` until it returns a value other than undefined/false. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One received bundle.published, with the local time it arrived. */
export interface PublishedEvent {
  readonly sequenceNumber: number;
  readonly target: string;
  readonly receivedAt: number;
}

/** Collects every bundle.published event seen on `nc` from now on. */
export function collectBundlePublished(nc: NatsConnection): {
  readonly events: PublishedEvent[];
  close(): Promise<void>;
} {
  const events: PublishedEvent[] = [];
  const subscription = subscribeEvents({ nc, types: ["bundle.published"] });
  const pumping = (async () => {
    for await (const event of subscription as AsyncIterable<ReceivedEvent<"bundle.published">>) {
      events.push({
        sequenceNumber: event.data.sequenceNumber,
        target: event.data.target,
        receivedAt: Date.now(),
      });
    }
  })();
  return {
    events,
    async close() {
      await subscription.close();
      await pumping;
    },
  };
}

/** The CERTIFICATE blocks of a PEM text, normalised. */
export function pemCertificates(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (block) => block.replace(/\r?\n/g, "\n"),
  );
}
