// Gives the memory of a minting burst back to the operating system once the burst is over.
import { createMemoryReleaser, memoryReleaseSupport, type MemoryReleaser } from "@meshid/memory";
import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";

/** Counter: memory releases run after minting bursts. */
export const METRIC_MEMORY_RELEASES = "meshid_agent_memory_releases_total";
/** Counter: resident memory given back by those releases, in bytes. */
export const METRIC_MEMORY_RELEASED_BYTES = "meshid_agent_memory_released_bytes_total";

/** Parameters of {@link startMemoryRelease}. */
export interface MemoryReleaseParams {
  /** SVIDs minted since the last release that make one worth it; 0 turns releasing off. */
  readonly afterMinted: number;
  /** Quiet time after the last minted SVID, in ms. */
  readonly quietMs: number;
  readonly logger: Logger;
}

/**
 * Starts releasing memory after minting bursts (a full GC, then `malloc_trim`: see
 * `@meshid/memory`), counted in {@link METRIC_MEMORY_RELEASES} and
 * {@link METRIC_MEMORY_RELEASED_BYTES}. Returns undefined when `afterMinted` is 0.
 */
export function startMemoryRelease(params: MemoryReleaseParams): MemoryReleaser | undefined {
  const { logger } = params;
  if (params.afterMinted === 0) return undefined;
  const support = memoryReleaseSupport();
  if (!support.trim) {
    logger.warn(
      { reason: support.reason },
      "memory is only garbage-collected after minting bursts, not given back to the OS",
    );
  }
  const meter = getMeter("@meshid/agent");
  const releases = meter.createCounter(METRIC_MEMORY_RELEASES, {
    description: "Memory releases (full GC, then malloc_trim) after minting bursts",
  });
  const releasedBytes = meter.createCounter(METRIC_MEMORY_RELEASED_BYTES, {
    description: "Resident memory given back to the OS after minting bursts",
    unit: "By",
  });
  return createMemoryReleaser({
    minWork: params.afterMinted,
    quietMs: params.quietMs,
    onRelease: (result, minted) => {
      const released = Math.max(0, result.rssBeforeBytes - result.rssAfterBytes);
      releases.add(1);
      releasedBytes.add(released);
      logger.debug(
        {
          minted,
          rssBeforeBytes: result.rssBeforeBytes,
          rssAfterBytes: result.rssAfterBytes,
          gcMs: Math.round(result.gcMs * 10) / 10,
          trimMs: Math.round(result.trimMs * 10) / 10,
        },
        "memory given back after minting",
      );
    },
    onError: (err) => {
      logger.warn({ [LogKeys.err]: String(err) }, "memory release failed");
    },
  });
}
