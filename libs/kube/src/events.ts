// Kubernetes Events (core/v1) recorded on the objects a service reports about.
import type { KubeClient } from "./client";
import type { KubeEvent, KubeObjectReference } from "./types";

/** Namespace where Events about cluster-scoped objects are recorded. */
export const CLUSTER_EVENTS_NAMESPACE = "default";

/** One Event to record. */
export interface KubeEventParams {
  /** The object the Event is about (kind, name, namespace for namespaced ones, uid). */
  readonly involvedObject: KubeObjectReference;
  /** Normal or Warning. */
  readonly type: "Normal" | "Warning";
  /** CamelCase machine-readable reason, e.g. `TemplateRenderFailed`. */
  readonly reason: string;
  /** Human-readable message. */
  readonly message: string;
  /** Reporting component, e.g. `meshid-registrar`. */
  readonly component: string;
  /** Time of the Event; defaults to now. */
  readonly now?: Date;
}

/**
 * Records a core/v1 Event about `involvedObject` (in its namespace, or
 * {@link CLUSTER_EVENTS_NAMESPACE} for cluster-scoped objects). Returns the created Event's
 * name. API failures are thrown to the caller, which usually logs and carries on: an Event is
 * a report, never a reason to stop.
 */
export async function recordKubeEvent(
  client: KubeClient,
  params: KubeEventParams,
): Promise<string> {
  const namespace = params.involvedObject.namespace ?? CLUSTER_EVENTS_NAMESPACE;
  // Whole seconds, as metav1.Time is serialised.
  const now = (params.now ?? new Date()).toISOString().replace(/\.\d+Z$/, "Z");
  const body: KubeEvent = {
    apiVersion: "v1",
    kind: "Event",
    metadata: {
      generateName: `${params.involvedObject.name ?? "object"}.`,
      namespace,
    },
    involvedObject: params.involvedObject,
    type: params.type,
    reason: params.reason,
    message: params.message,
    source: { component: params.component },
    reportingComponent: params.component,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
  const created = await client.request<KubeEvent>({
    method: "POST",
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
    body,
  });
  return created.metadata?.name ?? "";
}
