// The caBundle target: Validating/MutatingWebhookConfigurations labelled `meshid.io/webhook=true`
// and APIServices labelled `meshid.io/apiservice=true` get the bundle PEM as their caBundle.
import {
  AdmissionregistrationV1Api,
  ApiregistrationV1Api,
  type KubeConfig,
  type V1APIService,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
} from "@kubernetes/client-node";
import { isKubeConflict, isKubeNotFound } from "@meshid/kube";
import { LogKeys, type Logger } from "@meshid/telemetry";
import {
  APISERVICE_LABEL_SELECTOR,
  WEBHOOK_LABEL_SELECTOR,
  caBundleFromPem,
  webhooksWithCaBundle,
} from "../domain/ca-bundle-field";
import { PartialTargetFailure } from "../domain/partial-target-failure";
import type { BundleTarget, TargetWrite } from "../ports";
import {
  DEFAULT_MAX_CONFLICT_RETRIES,
  conflictPauseMs,
  kubeConflictsExhausted,
  kubeRequestFailed,
} from "./kube-failure";

/** Name of the webhook target in logs, metrics and health. */
export const WEBHOOKS_TARGET_NAME = "webhooks";

/** Parameters of {@link createWebhookTarget}. */
export interface WebhookTargetParams {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Re-reads of one object after a 409 before giving up. Default {@link DEFAULT_MAX_CONFLICT_RETRIES}. */
  readonly maxConflictRetries?: number;
}

/** How one kind of labelled object is listed, read, changed and written back. */
interface CaBundleKind<T extends { metadata?: { name?: string } }> {
  /** `webhook/validating`, `webhook/mutating`, `apiservice`: prefix of the published target. */
  readonly prefix: string;
  list(): Promise<T[]>;
  read(name: string): Promise<T>;
  /** The object with the new caBundle, or undefined when it already has it (or must be skipped). */
  withCaBundle(object: T, caBundle: string): T | undefined;
  replace(name: string, object: T): Promise<unknown>;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
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
  const admission = params.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const apiRegistration = params.kubeConfig.makeApiClient(ApiregistrationV1Api);
  const logger = params.logger.child({ [LogKeys.component]: "webhook-target" });
  const maxRetries = params.maxConflictRetries ?? DEFAULT_MAX_CONFLICT_RETRIES;

  const validating: CaBundleKind<V1ValidatingWebhookConfiguration> = {
    prefix: "webhook/validating",
    list: async () =>
      (
        await admission.listValidatingWebhookConfiguration({
          labelSelector: WEBHOOK_LABEL_SELECTOR,
        })
      ).items,
    read: (name) => admission.readValidatingWebhookConfiguration({ name }),
    withCaBundle: (object, caBundle) => {
      const webhooks = webhooksWithCaBundle(object.webhooks, caBundle);
      return webhooks === undefined ? undefined : { ...object, webhooks };
    },
    replace: (name, body) => admission.replaceValidatingWebhookConfiguration({ name, body }),
  };
  const mutating: CaBundleKind<V1MutatingWebhookConfiguration> = {
    prefix: "webhook/mutating",
    list: async () =>
      (await admission.listMutatingWebhookConfiguration({ labelSelector: WEBHOOK_LABEL_SELECTOR }))
        .items,
    read: (name) => admission.readMutatingWebhookConfiguration({ name }),
    withCaBundle: (object, caBundle) => {
      const webhooks = webhooksWithCaBundle(object.webhooks, caBundle);
      return webhooks === undefined ? undefined : { ...object, webhooks };
    },
    replace: (name, body) => admission.replaceMutatingWebhookConfiguration({ name, body }),
  };
  const apiServices: CaBundleKind<V1APIService> = {
    prefix: "apiservice",
    list: async () =>
      (await apiRegistration.listAPIService({ labelSelector: APISERVICE_LABEL_SELECTOR })).items,
    read: (name) => apiRegistration.readAPIService({ name }),
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
    replace: (name, body) => apiRegistration.replaceAPIService({ name, body }),
  };

  async function syncOne<T extends { metadata?: { name?: string } }>(
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
        await kind.replace(name, updated);
        return { target };
      } catch (err) {
        if (isKubeNotFound(err)) return undefined;
        if (!isKubeConflict(err)) throw kubeRequestFailed(`update ${target}`, err);
      }
      logger.info({ target, attempt: attempt + 1 }, "caBundle write conflicted: reading it again");
      await pause(conflictPauseMs(), signal);
      try {
        object = await kind.read(name);
      } catch (err) {
        if (isKubeNotFound(err)) return undefined;
        throw kubeRequestFailed(`read ${target}`, err);
      }
    }
    throw kubeConflictsExhausted(`update ${target}`, maxRetries + 1);
  }

  async function syncKind<T extends { metadata?: { name?: string } }>(
    kind: CaBundleKind<T>,
    caBundle: string,
    signal: AbortSignal,
  ): Promise<TargetWrite[]> {
    let objects: T[];
    try {
      objects = await kind.list();
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
