// BundleService: the trust bundle, once or as a stream of changes.
import type { meshidCaV1 } from "@meshid/proto";
import { bundleToJwks, bundleToPem } from "@meshid/spiffe";
import type { CaCallContext } from "./authz";
import { bundleRecordToSpiffeBundle, bundleToProto } from "./converters";
import type { AuthorityManager } from "./deps";
import type { BundleRecord } from "../domain/types";

/** Dependencies of {@link createBundleService}. */
export interface BundleServiceDeps {
  readonly authority: Pick<AuthorityManager, "bundle" | "onBundleChange">;
  /** Ends every open WatchBundle stream when aborted (server stop). */
  readonly signal?: AbortSignal;
}

/** Builds a GetBundleResponse (proto bundle, PEM, SPIFFE JWKS) from the stored bundle. */
export function bundleResponse(record: BundleRecord): meshidCaV1.GetBundleResponse {
  const bundle = bundleRecordToSpiffeBundle(record);
  return {
    bundle: bundleToProto(record),
    pem: bundleToPem(bundle),
    spiffeJwks: bundleToJwks(bundle),
  };
}

/** Creates the BundleService implementation (the policy table limits it to agents and admins). */
export function createBundleService(
  deps: BundleServiceDeps,
): meshidCaV1.BundleServiceImplementation<CaCallContext> {
  return {
    getBundle() {
      return Promise.resolve(bundleResponse(deps.authority.bundle()));
    },
    async *watchBundle(_req, ctx) {
      const signal =
        deps.signal === undefined ? ctx.signal : AbortSignal.any([ctx.signal, deps.signal]);
      const pending: BundleRecord[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = deps.authority.onBundleChange((b) => {
        pending.push(b);
        wake?.();
      });
      const onAbort = (): void => wake?.();
      signal.addEventListener("abort", onAbort);
      try {
        let last = deps.authority.bundle();
        yield bundleResponse(last);
        while (!signal.aborted) {
          const next = pending.shift();
          if (next === undefined) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
            continue;
          }
          if (next.sequenceNumber <= last.sequenceNumber) continue;
          last = next;
          yield bundleResponse(next);
        }
      } finally {
        unsubscribe();
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
