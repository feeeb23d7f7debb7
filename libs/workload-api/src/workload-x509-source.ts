import { MeshidError } from "@meshid/errors";
import {
  createMutableSvidSource,
  type MutableSvidSource,
  type SvidSource,
  type TlsMaterial,
} from "@meshid/grpc-kit";
import { LogKeys, createNoopLogger, type Logger } from "@meshid/telemetry";
import type { BackoffOptions } from "./backoff";
import { watchX509Context } from "./workload-api-client";
import {
  describeSvid,
  pickDefaultSvid,
  type PickSvid,
  type WorkloadX509Svid,
  type X509Context,
} from "./x509-context";

/** Stable error code when a source is closed before its first SVID arrived. */
export const SOURCE_CLOSED_CODE = "workload_api.source_closed";

/** Parameters of {@link createWorkloadX509Source}. */
export interface CreateWorkloadX509SourceParams {
  /** Absolute path of the Workload API Unix socket. */
  readonly socketPath: string;
  /** Default: no logging. */
  readonly logger?: Logger;
  /** Closes the source when aborted (like `close()`). */
  readonly signal?: AbortSignal;
  /** Which SVID to serve when the agent hands out several. Default: the first (the default SVID). */
  readonly pick?: PickSvid;
  /** Retry delays of the underlying watch. */
  readonly backoff?: BackoffOptions;
}

/** How the watch behind a source ended. */
export type WorkloadX509SourceOutcome =
  { readonly kind: "closed" } | { readonly kind: "failed"; readonly error: Error };

/**
 * A rotating X509-SVID from the Workload API, usable wherever grpc-kit takes an
 * {@link SvidSource} (mTLS servers and channels) or a `BundleSource`. The material follows every
 * rotation and bundle change the agent sends.
 */
export interface WorkloadX509Source extends SvidSource {
  /** The SVID in use now (the picked one of the latest usable message). */
  svid(): WorkloadX509Svid;
  /** The latest full X.509 context (every SVID and bundle). */
  context(): X509Context;
  /** Stops watching; the material stays readable. Safe to call twice. */
  close(): void;
  /** Settles once the watch ended: after `close()`/abort, or when the agent refused for good. */
  done(): Promise<WorkloadX509SourceOutcome>;
}

function materialOf(svid: WorkloadX509Svid): TlsMaterial {
  return { certChainPem: svid.certChainPem, keyPem: svid.keyPem, bundlePem: svid.bundlePem };
}

/**
 * Watches the Workload API (retrying with backoff as {@link watchX509Context} does) and resolves
 * with a {@link WorkloadX509Source} once the first message holding an SVID that `pick` accepts
 * arrived. Later messages whose picked SVID or bundle changed replace the material; a message
 * without an acceptable SVID, or with unusable material, is logged and the previous material
 * kept.
 *
 * @throws MeshidError {@link SOURCE_CLOSED_CODE} (`aborted`) when `signal` aborts first, or the
 *   watch's error when the agent refused the call for good (`workload_api.call_refused`).
 */
export async function createWorkloadX509Source(
  params: CreateWorkloadX509SourceParams,
): Promise<WorkloadX509Source> {
  const logger = params.logger ?? createNoopLogger();
  const pick = params.pick ?? pickDefaultSvid;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  if (params.signal?.aborted === true) controller.abort();
  params.signal?.addEventListener("abort", onAbort, { once: true });

  let mutable: MutableSvidSource | undefined;
  let currentSvid: WorkloadX509Svid | undefined;
  let currentContext: X509Context | undefined;
  let resolveFirst: () => void = () => undefined;
  let rejectFirst: (err: Error) => void = () => undefined;
  const first = new Promise<void>((resolve, reject) => {
    resolveFirst = resolve;
    rejectFirst = reject;
  });

  const apply = (context: X509Context): void => {
    const svid = pick(context.svids);
    if (svid === undefined) {
      logger.warn(
        { offered: context.svids.map((s) => s.spiffeId) },
        "Workload API message holds no SVID this source accepts; keeping the previous one",
      );
      return;
    }
    const material = materialOf(svid);
    try {
      if (mutable === undefined) {
        mutable = createMutableSvidSource(material);
      } else if (
        currentSvid?.serialNumber !== svid.serialNumber ||
        currentSvid.bundlePem !== svid.bundlePem
      ) {
        mutable.set(material);
      }
    } catch (err) {
      logger.error(
        { ...describeSvid(svid), [LogKeys.err]: (err as Error).message },
        "Workload API SVID is unusable for TLS; keeping the previous one",
      );
      return;
    }
    const rotated = currentSvid !== undefined && currentSvid.serialNumber !== svid.serialNumber;
    currentSvid = svid;
    currentContext = context;
    if (rotated) logger.info(describeSvid(svid), "Workload API SVID rotated");
    resolveFirst();
  };

  const done = (async (): Promise<WorkloadX509SourceOutcome> => {
    try {
      for await (const context of watchX509Context({
        socketPath: params.socketPath,
        signal: controller.signal,
        logger,
        ...(params.backoff === undefined ? {} : { backoff: params.backoff }),
      })) {
        apply(context);
      }
      rejectFirst(
        new MeshidError(
          "aborted",
          SOURCE_CLOSED_CODE,
          "Workload API source closed before its first SVID",
        ),
      );
      return { kind: "closed" };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      logger.error({ [LogKeys.err]: error.message }, "Workload API watch stopped");
      rejectFirst(error);
      return { kind: "failed", error };
    } finally {
      params.signal?.removeEventListener("abort", onAbort);
    }
  })();

  await first;
  const source = mutable;
  if (source === undefined) throw new Error("unreachable: first SVID without material");
  const required = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("unreachable: no SVID");
    return value;
  };
  return {
    current: () => source.current(),
    subscribe: (listener) => source.subscribe(listener),
    svid: () => required(currentSvid),
    context: () => required(currentContext),
    close: () => controller.abort(),
    done: () => done,
  };
}
