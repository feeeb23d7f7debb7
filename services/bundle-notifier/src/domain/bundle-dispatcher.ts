// The heart of the notifier: follows the CA's bundle (WatchBundle stream, re-opened with backoff;
// bundle.updated wake-ups re-fetch it) and brings every target up to the latest bundle, each
// target on its own so a failing one never delays the others.
import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";
import type { Meter } from "@opentelemetry/api";
import type {
  BundlePublishedSink,
  BundleTarget,
  CaBundleClient,
  Clock,
  TargetWrite,
} from "../ports";
import { backoffDelayMs } from "./backoff";
import { shouldAcceptBundle, type BundleOrigin, type NotifierBundle } from "./bundle";
import { PartialTargetFailure } from "./partial-target-failure";

/** Meter name of the notifier's metrics. */
export const BUNDLE_NOTIFIER_METER = "@meshid/bundle-notifier";
/** Counter: objects written, by `target` (`configmap/meshid/meshid-bundle`, `file:/…`, …). */
export const METRIC_WRITES = "meshid_bundle_notifier_writes_total";
/** Counter: failed target applies (by target name) and failed CA streams (`target="ca"`). */
export const METRIC_ERRORS = "meshid_bundle_notifier_errors_total";
/** Gauge: sequence number of the bundle each target last reached, by target name. */
export const METRIC_LAST_SEQUENCE = "meshid_bundle_notifier_last_sequence";
/** Gauge: 1 while the WatchBundle stream is open, else 0. */
export const METRIC_CA_CONNECTED = "meshid_bundle_notifier_ca_connected";
/** The `target` attribute of CA stream errors. */
export const CA_ERROR_TARGET = "ca";

/** Dependencies of {@link createBundleDispatcher}. */
export interface BundleDispatcherDeps {
  readonly ca: Pick<CaBundleClient, "watchBundle" | "getBundle">;
  /** Where the bundle goes; at least one. */
  readonly targets: readonly BundleTarget[];
  /** Sequence numbers from `bundle.updated` events; without them only the stream informs. */
  readonly wakeups?: AsyncIterable<number>;
  /** Receives one `bundle.published` per object written; failures are logged only. */
  readonly published?: BundlePublishedSink;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Backoff of the stream re-opens and of failing targets, in milliseconds. */
  readonly retry: { readonly initialDelayMs: number; readonly maxDelayMs: number };
  /** Every target is re-applied this often (drift, deleted objects, new labelled webhooks). */
  readonly resyncIntervalMs: number;
  /** Jitter source in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /** Default: the global meter {@link BUNDLE_NOTIFIER_METER}. */
  readonly meter?: Meter;
}

/** What one target has done so far. */
export interface TargetStatus {
  readonly name: string;
  /** True after its first successful apply (it stays true). */
  readonly ready: boolean;
  /** Sequence number of the bundle it last reached. */
  readonly lastSequenceNumber?: number;
  /** Objects written so far. */
  readonly writes: number;
  /** Failed applies so far. */
  readonly errors: number;
  /** Message of the last failure, cleared by the next success. */
  readonly lastError?: string;
}

/** What the dispatcher reports (health, tests). */
export interface BundleDispatcherStatus {
  /** True while the WatchBundle stream is open. */
  readonly caConnected: boolean;
  /** How many times a stream was opened. */
  readonly streamOpens: number;
  /** How many stream attempts failed (connection refused, stream broken, bad answer). */
  readonly caStreamFailures: number;
  /** The bundle held now, if any. */
  readonly sequenceNumber?: number;
  readonly targets: readonly TargetStatus[];
}

/** The bundle follower and target writer, from {@link createBundleDispatcher}. */
export interface BundleDispatcher {
  /** Runs until `signal` aborts; never rejects. Call once. */
  run(signal: AbortSignal): Promise<void>;
  /** True while the CA stream is open and every target has succeeded at least once. */
  ready(): boolean;
  status(): BundleDispatcherStatus;
}

interface MutableTargetStatus {
  name: string;
  ready: boolean;
  lastSequenceNumber?: number;
  writes: number;
  errors: number;
  lastError?: string;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Resolves when `signal` aborts (never rejects). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * Creates the dispatcher. The stream's first message after every (re)open is taken as the CA's
 * present bundle; later messages and GetBundle answers only when their sequence is higher. A
 * wake-up naming a sequence the notifier does not hold yet (or arriving while the stream is
 * down) re-fetches with GetBundle — the stream may have stalled silently — and cuts a pending
 * re-open delay short. Each target applies the latest bundle whenever it changes and every
 * `resyncIntervalMs`; a failed apply is retried with capped, jittered exponential backoff.
 */
export function createBundleDispatcher(deps: BundleDispatcherDeps): BundleDispatcher {
  const { clock, retry } = deps;
  const logger = deps.logger.child({ [LogKeys.component]: "bundle-dispatcher" });
  const random = deps.random ?? Math.random;
  const meter = deps.meter ?? getMeter(BUNDLE_NOTIFIER_METER);
  const writesCounter = meter.createCounter(METRIC_WRITES, {
    description: "Bundle writes by target object",
  });
  const errorsCounter = meter.createCounter(METRIC_ERRORS, {
    description: "Failed bundle target applies and CA streams",
  });

  const states: MutableTargetStatus[] = deps.targets.map((t) => ({
    name: t.name,
    ready: false,
    writes: 0,
    errors: 0,
  }));
  let latest: NotifierBundle | undefined;
  /** Bumped on every accepted bundle and every resync; targets compare it with theirs. */
  let version = 0;
  const waiters = new Set<() => void>();
  let caConnected = false;
  let streamOpens = 0;
  let caStreamFailures = 0;
  let kickStreamRetry: (() => void) | undefined;
  let started = false;

  meter
    .createObservableGauge(METRIC_LAST_SEQUENCE, {
      description: "Sequence number of the bundle each target last reached",
    })
    .addCallback((result) => {
      for (const s of states) {
        if (s.lastSequenceNumber !== undefined) {
          result.observe(s.lastSequenceNumber, { target: s.name });
        }
      }
    });
  meter
    .createObservableGauge(METRIC_CA_CONNECTED, {
      description: "1 while the CA WatchBundle stream is open",
    })
    .addCallback((result) => result.observe(caConnected ? 1 : 0));

  const bump = (): void => {
    version++;
    for (const wake of [...waiters]) wake();
  };

  /** Resolves on the next bump or when `signal` aborts. */
  const nextChange = (signal: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      waiters.add(done);
      if (signal.aborted) done();
      else signal.addEventListener("abort", done, { once: true });
    });

  const offer = (bundle: NotifierBundle, origin: BundleOrigin): void => {
    if (!shouldAcceptBundle(latest, bundle, origin)) return;
    const previous = latest?.sequenceNumber;
    latest = bundle;
    logger.info(
      { sequenceNumber: bundle.sequenceNumber, previousSequenceNumber: previous, origin },
      "bundle received",
    );
    bump();
  };

  /** Sleeps `ms` unless `signal` aborts or a wake-up asks for an early retry. */
  const retryPause = async (ms: number, signal: AbortSignal): Promise<void> => {
    const kick = new AbortController();
    kickStreamRetry = () => kick.abort();
    try {
      await clock.sleep(ms, AbortSignal.any([signal, kick.signal]));
    } catch {
      // Aborted or kicked: the caller checks `signal`.
    } finally {
      kickStreamRetry = undefined;
    }
  };

  async function followStream(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      let opened = false;
      try {
        for await (const bundle of deps.ca.watchBundle(signal)) {
          if (!opened) {
            opened = true;
            attempt = 0;
            streamOpens++;
            if (!caConnected) logger.info("WatchBundle stream open");
            caConnected = true;
            offer(bundle, "stream-open");
          } else {
            offer(bundle, "stream");
          }
        }
        if (signal.aborted) return;
        logger.warn("the CA ended the WatchBundle stream; re-opening");
      } catch (err) {
        if (signal.aborted) return;
        caStreamFailures++;
        errorsCounter.add(1, { target: CA_ERROR_TARGET });
        const delayMs = backoffDelayMs({
          attempt,
          initialMs: retry.initialDelayMs,
          maxMs: retry.maxDelayMs,
          random,
        });
        if (caConnected || attempt === 0) {
          logger.warn({ [LogKeys.err]: errorText(err), retryMs: delayMs }, "WatchBundle failed");
        } else {
          logger.debug({ [LogKeys.err]: errorText(err), retryMs: delayMs }, "WatchBundle failed");
        }
        caConnected = false;
        attempt++;
        await retryPause(delayMs, signal);
        continue;
      }
      caConnected = false;
      await retryPause(
        backoffDelayMs({
          attempt: 0,
          initialMs: retry.initialDelayMs,
          maxMs: retry.maxDelayMs,
          random,
        }),
        signal,
      );
    }
  }

  async function followWakeups(wakeups: AsyncIterable<number>, signal: AbortSignal): Promise<void> {
    const iterator = wakeups[Symbol.asyncIterator]();
    const stop = aborted(signal).then(() => ({ done: true, value: undefined }) as const);
    try {
      while (!signal.aborted) {
        const next = await Promise.race([iterator.next(), stop]);
        if (next.done === true) return;
        const sequence = next.value;
        const held = latest?.sequenceNumber;
        if (caConnected && held !== undefined && sequence <= held) continue;
        logger.debug(
          { sequenceNumber: sequence, heldSequenceNumber: held },
          "bundle.updated wake-up",
        );
        kickStreamRetry?.();
        try {
          offer(await deps.ca.getBundle(signal), "fetch");
        } catch (err) {
          if (signal.aborted) return;
          logger.warn({ [LogKeys.err]: errorText(err) }, "GetBundle after a wake-up failed");
        }
      }
    } finally {
      // Not awaited: an async generator parked in its own await answers return() only later.
      void iterator.return?.()?.catch(() => undefined);
    }
  }

  async function resync(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await clock.sleep(deps.resyncIntervalMs, signal);
      } catch {
        return;
      }
      logger.debug("resync: re-applying every target");
      bump();
    }
  }

  async function runTarget(
    target: BundleTarget,
    state: MutableTargetStatus,
    signal: AbortSignal,
  ): Promise<void> {
    let seen = 0;
    let failures = 0;
    while (!signal.aborted) {
      const bundle = latest;
      if (bundle === undefined || (seen === version && failures === 0)) {
        await nextChange(signal);
        continue;
      }
      seen = version;
      const startedAt = clock.now().getTime();
      const recordWrites = async (writes: readonly TargetWrite[]): Promise<void> => {
        for (const write of writes) {
          state.writes++;
          writesCounter.add(1, { target: write.target });
          logger.info(
            {
              target: write.target,
              sequenceNumber: bundle.sequenceNumber,
              [LogKeys.durationMs]: clock.now().getTime() - startedAt,
            },
            "bundle written",
          );
          await deps.published
            ?.publish({ sequenceNumber: bundle.sequenceNumber, target: write.target })
            .catch((err: unknown) => {
              logger.warn({ [LogKeys.err]: errorText(err) }, "publishing bundle.published failed");
            });
        }
      };
      try {
        const writes = await target.apply(bundle, signal);
        if (!state.ready) logger.info({ target: target.name }, "target ready");
        failures = 0;
        state.ready = true;
        state.lastSequenceNumber = bundle.sequenceNumber;
        delete state.lastError;
        await recordWrites(writes);
      } catch (err) {
        if (err instanceof PartialTargetFailure) await recordWrites(err.writes);
        if (signal.aborted) return;
        const delayMs = backoffDelayMs({
          attempt: failures,
          initialMs: retry.initialDelayMs,
          maxMs: retry.maxDelayMs,
          random,
        });
        failures++;
        state.errors++;
        state.lastError = errorText(err);
        errorsCounter.add(1, { target: target.name });
        logger.warn(
          { target: target.name, [LogKeys.err]: errorText(err), retryMs: delayMs },
          "writing the bundle failed",
        );
        try {
          await clock.sleep(delayMs, signal);
        } catch {
          return;
        }
      }
    }
  }

  return {
    async run(signal) {
      if (started) throw new Error("bundle dispatcher: run() called twice");
      started = true;
      const loops: Promise<void>[] = [
        followStream(signal),
        resync(signal),
        ...deps.targets.map((t, i) => runTarget(t, states[i] as MutableTargetStatus, signal)),
      ];
      if (deps.wakeups !== undefined) loops.push(followWakeups(deps.wakeups, signal));
      const results = await Promise.allSettled(loops);
      for (const r of results) {
        if (r.status === "rejected") {
          logger.error({ [LogKeys.err]: r.reason as unknown }, "a notifier loop failed");
        }
      }
      caConnected = false;
    },
    ready: () => caConnected && states.every((s) => s.ready),
    status: () => ({
      caConnected,
      streamOpens,
      caStreamFailures,
      ...(latest === undefined ? {} : { sequenceNumber: latest.sequenceNumber }),
      targets: states.map((s) => ({ ...s })),
    }),
  };
}
