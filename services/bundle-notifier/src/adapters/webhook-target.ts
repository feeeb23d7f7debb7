// The caBundle target: Validating/MutatingWebhookConfigurations labelled `meshid.io/webhook=true`
// and APIServices labelled `meshid.io/apiservice=true` get the bundle PEM as their caBundle.
import { setTimeout as delay } from "node:timers/promises";
import {
  isKubeConflict,
  isKubeNotFound,
  type KubeClient,
  type KubeList,
  type KubeObject,
} from "@meshid/kube";
import { LogKeys, type Logger } from "@meshid/telemetry";
import {
  APISERVICE_LABEL_SELECTOR,
  WEBHOOK_LABEL_SELECTOR,
  caBundleFromPem,
  webhooksWithCaBundle,
  type WebhookWithClientConfig,
} from "../domain/ca-bundle-field";
import { PartialTargetFailure } from "../domain/partial-target-failure";
import type { BundleTarget, TargetWrite } from "../ports";
import {
  DEFAULT_MAX_CONFLICT_RETRIES,
  conflictPauseMs,
  kubeConflictsExhausted,
  kubeRequestFailed,
} from "./kube-failure";

/** Waits `ms`, or less once `signal` aborts (never rejects). */
const pause = (ms: number, signal: AbortSignal): Promise<void> =>
  delay(ms, undefined, { signal }).catch(() => undefined);

/** Name of the webhook target in logs, metrics and health. */
export const WEBHOOKS_TARGET_NAME = "webhooks";

/** Collection path of ValidatingWebhookConfigurations (admissionregistration.k8s.io/v1). */
export const VALIDATING_WEBHOOKS_PATH =
  "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
/** Collection path of MutatingWebhookConfigurations (admissionregistration.k8s.io/v1). */
export const MUTATING_WEBHOOKS_PATH =
  "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
/** Collection path of APIServices (apiregistration.k8s.io/v1). */
export const APISERVICES_PATH = "/apis/apiregistration.k8s.io/v1/apiservices";

/**
 * A Validating/MutatingWebhookConfiguration as the API server sends it; only the caBundle is
 * spelled out, every other field is written back as it was read.
 */
interface WebhookConfiguration extends KubeObject {
  webhooks?: WebhookWithClientConfig[];
}

/** An APIService as the API server sends it (only what is read here spelled out). */
interface ApiService extends KubeObject {
  spec?: { caBundle?: string; insecureSkipTLSVerify?: boolean };
}

/** Parameters of {@link createWebhookTarget}. */
export interface WebhookTargetParams {
  /** The API server client (not closed by the target). */
  readonly client: KubeClient;
  readonly logger: Logger;
  /** Re-reads of one object after a 409 before giving up. Default {@link DEFAULT_MAX_CONFLICT_RETRIES}. */
  readonly maxConflictRetries?: number;
}

/** One kind of labelled object: where it lives and how its caBundle is changed. */
interface CaBundleKindSpec<T extends KubeObject> {
  /** `webhook/validating`, `webhook/mutating`, `apiservice`: prefix of the published target. */
  readonly prefix: string;
  /** The cluster-scoped collection, e.g. {@link APISERVICES_PATH}. */
  readonly path: string;
  readonly labelSelector: string;
  /** The object with the new caBundle, or undefined when it already has it (or must be skipped). */
  withCaBundle(object: T, caBundle: string): T | undefined;
}

/** How one kind of labelled object is listed, read, changed and written back. */
interface CaBundleKind<T extends KubeObject> {
  readonly prefix: string;
  list(signal: AbortSignal): Promise<T[]>;
  read(name: string, signal: AbortSignal): Promise<T>;
  withCaBundle(object: T, caBundle: string): T | undefined;
  /** PUT with the object's resourceVersion: 409 when it changed since it was read. */
  replace(name: string, object: T, signal: AbortSignal): Promise<unknown>;
}

function caBundleKind<T extends KubeObject>(
  client: KubeClient,
  spec: CaBundleKindSpec<T>,
): CaBundleKind<T> {
  const objectPath = (name: string): string => `${spec.path}/${encodeURIComponent(name)}`;
  return {
    prefix: spec.prefix,
    list: async (signal) =>
      (
        await client.request<KubeList<T>>({
          path: spec.path,
          query: { labelSelector: spec.labelSelector },
          signal,
        })
      ).items ?? [],
    read: (name, signal) => client.request<T>({ path: objectPath(name), signal }),
    withCaBundle: (object, caBundle) => spec.withCaBundle(object, caBundle),
    replace: (name, body, signal) =>
      client.request({ method: "PUT", path: objectPath(name), body, signal }),
  };
}

/**
 * Creates the webhook target. Each apply lists the labelled ValidatingWebhookConfigurations,
 * MutatingWebhookConfigurations and APIServices and replaces (with the listed resourceVersion)
 * only those whose caBundle differs: every webhook entry's `clientConfig.caBundle`, or an
 * APIService's `spec.caBundle` (base64 of the PEM bundle). Unlabelled objects are never read
 * or written. On 409 the object is read again and decided again; an object deleted meanwhile
 * is skipped. When one kind fails after others were written, a {@link PartialTargetFailure}
 * carries what was written. APIServices with `insecureSkipTLSVerify` are skipped (the API server refuses a
 * caBundle on them). Objects that appear later get the bundle at the next resync.
 */
export function createWebhookTarget(params: WebhookTargetParams): BundleTarget {
  const { client } = params;
  const logger = params.logger.child({ [LogKeys.component]: "webhook-target" });
  const maxRetries = params.maxConflictRetries ?? DEFAULT_MAX_CONFLICT_RETRIES;

  const webhooksWithNewCaBundle = (
    object: WebhookConfiguration,
    caBundle: string,
  ): WebhookConfiguration | undefined => {
    const webhooks = webhooksWithCaBundle(object.webhooks, caBundle);
    return webhooks === undefined ? undefined : { ...object, webhooks };
  };
  const validating = caBundleKind<WebhookConfiguration>(client, {
    prefix: "webhook/validating",
    path: VALIDATING_WEBHOOKS_PATH,
    labelSelector: WEBHOOK_LABEL_SELECTOR,
    withCaBundle: webhooksWithNewCaBundle,
  });
  const mutating = caBundleKind<WebhookConfiguration>(client, {
    prefix: "webhook/mutating",
    path: MUTATING_WEBHOOKS_PATH,
    labelSelector: WEBHOOK_LABEL_SELECTOR,
    withCaBundle: webhooksWithNewCaBundle,
  });
  const apiServices = caBundleKind<ApiService>(client, {
    prefix: "apiservice",
    path: APISERVICES_PATH,
    labelSelector: APISERVICE_LABEL_SELECTOR,
    withCaBundle: (object, caBundle) => {
      const spec = object.spec;
      if (spec === undefined || spec.caBundle === caBundle) return undefined;
      if (spec.insecureSkipTLSVerify === true) {
        logger.warn(
          { name: object.metadata?.name },
          "APIService has insecureSkipTLSVerify: caBundle not set",
        );
        return undefined;
      }
      return { ...object, spec: { ...spec, caBundle } };
    },
  });

  async function syncOne<T extends KubeObject>(
    kind: CaBundleKind<T>,
    listed: T,
    caBundle: string,
    signal: AbortSignal,
  ): Promise<TargetWrite | undefined> {
    const name = listed.metadata?.name ?? "";
    const target = `${kind.prefix}/${name}`;
    let object = listed;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const updated = kind.withCaBundle(object, caBundle);
      if (updated === undefined) return undefined;
      try {
        await kind.replace(name, updated, signal);
        return { target };
      } catch (err) {
        if (isKubeNotFound(err)) return undefined;
        if (!isKubeConflict(err)) throw kubeRequestFailed(`update ${target}`, err);
      }
      logger.info({ target, attempt: attempt + 1 }, "caBundle write conflicted: reading it again");
      await pause(conflictPauseMs(), signal);
      try {
        object = await kind.read(name, signal);
      } catch (err) {
        if (isKubeNotFound(err)) return undefined;
        throw kubeRequestFailed(`read ${target}`, err);
      }
    }
    throw kubeConflictsExhausted(`update ${target}`, maxRetries + 1);
  }

  async function syncKind<T extends KubeObject>(
    kind: CaBundleKind<T>,
    caBundle: string,
    signal: AbortSignal,
  ): Promise<TargetWrite[]> {
    let objects: T[];
    try {
      objects = await kind.list(signal);
    } catch (err) {
      throw kubeRequestFailed(`list ${kind.prefix}`, err);
    }
    const writes: TargetWrite[] = [];
    for (const object of objects) {
      if (signal.aborted) break;
      const write = await syncOne(kind, object, caBundle, signal);
      if (write !== undefined) writes.push(write);
    }
    return writes;
  }

  return {
    name: WEBHOOKS_TARGET_NAME,
    async apply(bundle, signal) {
      const caBundle = caBundleFromPem(bundle.pem);
      // All three kinds even when one fails, so one broken kind never starves the others.
      const results = await Promise.allSettled([
        syncKind(validating, caBundle, signal),
        syncKind(mutating, caBundle, signal),
        syncKind(apiServices, caBundle, signal),
      ]);
      const writes: TargetWrite[] = [];
      let failure: Error | undefined;
      for (const r of results) {
        if (r.status === "fulfilled") writes.push(...r.value);
        else failure ??= r.reason instanceof Error ? r.reason : new Error(String(r.reason));
      }
      if (failure !== undefined) {
        throw writes.length === 0 ? failure : new PartialTargetFailure(writes, failure);
      }
      return writes;
    },
  };
}
