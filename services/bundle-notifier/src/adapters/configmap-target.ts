// The bundle ConfigMap target: `bundle.crt` (PEM) and `bundle.spiffe` (JWKS) in one ConfigMap.
import { setTimeout as delay } from "node:timers/promises";
import { isKubeConflict, isKubeNotFound, type KubeClient, type KubeConfigMap } from "@meshid/kube";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type { NotifierBundle } from "../domain/bundle";
import { planConfigMapWrite } from "../domain/configmap-content";
import type { BundleTarget, TargetWrite } from "../ports";
import {
  DEFAULT_MAX_CONFLICT_RETRIES,
  conflictPauseMs,
  kubeConflictsExhausted,
  kubeRequestFailed,
} from "./kube-failure";

/** Waits `ms`, or less once `signal` aborts (never rejects). */
const realPause = (ms: number, signal: AbortSignal): Promise<void> =>
  delay(ms, undefined, { signal }).catch(() => undefined);

/**
 * Default time a ConfigMap may keep a higher sequence than this replica's bundle before the
 * replica concludes that the CA's sequence went backwards (a reset store) and overwrites it:
 * 2 minutes, two default resyncs. A merely lagging replica catches up within milliseconds.
 */
export const DEFAULT_SEQUENCE_REGRESSION_GRACE_MS = 120_000;

/** Label set on a ConfigMap the notifier creates (existing ConfigMaps keep their labels). */
export const MANAGED_BY_LABEL = { "app.kubernetes.io/managed-by": "meshid-bundle-notifier" };

/** Parameters of {@link createConfigMapTarget}. */
export interface ConfigMapTargetParams {
  /** The API server client (not closed by the target). */
  readonly client: KubeClient;
  readonly namespace: string;
  readonly name: string;
  readonly logger: Logger;
  /** Re-reads after a 409 before giving up. Default {@link DEFAULT_MAX_CONFLICT_RETRIES}. */
  readonly maxConflictRetries?: number;
  /** Pause between a conflict and the re-read; default a real 25–150 ms timer. */
  readonly pause?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Default {@link DEFAULT_SEQUENCE_REGRESSION_GRACE_MS}. */
  readonly sequenceRegressionGraceMs?: number;
  /** Current time in ms (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * Creates the ConfigMap target (`configmap/<namespace>/<name>`). Each apply reads the ConfigMap
 * and decides with {@link planConfigMapWrite}: nothing when the bundle keys already match (or a
 * newer sequence is recorded), else create (on 404) or replace with the read resourceVersion,
 * keeping every other key, label and annotation. A 409 (someone else wrote in between, or
 * created it first) means read again and decide again, up to `maxConflictRetries` times; so
 * several replicas converge on the newest bundle without fighting.
 */
export function createConfigMapTarget(params: ConfigMapTargetParams): BundleTarget {
  const { namespace, name } = params;
  const { client } = params;
  const collectionPath = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
  const objectPath = `${collectionPath}/${encodeURIComponent(name)}`;
  const target = `configmap/${namespace}/${name}`;
  const logger = params.logger.child({ [LogKeys.component]: "configmap-target", target });
  const maxRetries = params.maxConflictRetries ?? DEFAULT_MAX_CONFLICT_RETRIES;
  const pause = params.pause ?? realPause;
  const now = params.now ?? Date.now;
  const graceMs = params.sequenceRegressionGraceMs ?? DEFAULT_SEQUENCE_REGRESSION_GRACE_MS;
  /** Since when this replica has been holding `sequence` while the ConfigMap says `present`. */
  let behind: { sequence: number; present: number; since: number } | undefined;

  async function read(signal: AbortSignal): Promise<KubeConfigMap | undefined> {
    try {
      return await client.request<KubeConfigMap>({ path: objectPath, signal });
    } catch (err) {
      if (isKubeNotFound(err)) return undefined;
      throw kubeRequestFailed(`read ${target}`, err);
    }
  }

  async function applyOnce(
    bundle: NotifierBundle,
    signal: AbortSignal,
  ): Promise<"done" | "conflict" | TargetWrite> {
    const current = await read(signal);
    const content =
      current === undefined
        ? undefined
        : {
            ...(current.data === undefined ? {} : { data: current.data }),
            ...(current.metadata?.annotations === undefined
              ? {}
              : { annotations: current.metadata.annotations }),
          };
    let plan = planConfigMapWrite(content, bundle);
    if (plan.action !== "newer_present") behind = undefined;
    if (plan.action === "unchanged") return "done";
    if (plan.action === "newer_present") {
      const present = plan.presentSequence;
      if (behind?.sequence !== bundle.sequenceNumber || behind.present !== present) {
        behind = { sequence: bundle.sequenceNumber, present, since: now() };
      }
      if (now() - behind.since < graceMs) {
        logger.debug(
          { sequenceNumber: bundle.sequenceNumber, presentSequence: present },
          "the ConfigMap already holds a newer bundle",
        );
        return "done";
      }
      logger.warn(
        { sequenceNumber: bundle.sequenceNumber, presentSequence: present },
        "the ConfigMap's bundle sequence stayed ahead of the CA's: the CA's sequence went backwards (store reset?); writing the CA's bundle",
      );
      plan = planConfigMapWrite(content, bundle, { acceptLowerSequence: true });
      if (plan.action !== "write") return "done";
    }
    try {
      if (current === undefined) {
        await client.request({
          method: "POST",
          path: collectionPath,
          signal,
          body: {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name, namespace, labels: MANAGED_BY_LABEL, annotations: plan.annotations },
            data: plan.data,
          } satisfies KubeConfigMap,
        });
      } else {
        // PUT with the read object (its resourceVersion included): a 409 when it changed since.
        await client.request({
          method: "PUT",
          path: objectPath,
          signal,
          body: {
            ...current,
            metadata: { ...current.metadata, annotations: plan.annotations },
            data: plan.data,
          } satisfies KubeConfigMap,
        });
      }
    } catch (err) {
      if (isKubeConflict(err)) return "conflict";
      throw kubeRequestFailed(`${current === undefined ? "create" : "update"} ${target}`, err);
    }
    return { target };
  }

  return {
    name: target,
    async apply(bundle, signal) {
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        const outcome = await applyOnce(bundle, signal);
        if (outcome === "done") return [];
        if (outcome !== "conflict") return [outcome];
        logger.info({ attempt: attempt + 1 }, "ConfigMap write conflicted: reading it again");
        await pause(conflictPauseMs(), signal);
        if (signal.aborted) break;
      }
      throw kubeConflictsExhausted(`write ${target}`, maxRetries + 1);
    },
  };
}
