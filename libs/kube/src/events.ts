// Kubernetes Events (core/v1) recorded on the objects a service reports about.
import type { CoreV1Api, V1ObjectReference } from "@kubernetes/client-node";

/** Namespace where Events about cluster-scoped objects are recorded. */
export const CLUSTER_EVENTS_NAMESPACE = "default";

/** One Event to record. */
export interface KubeEventParams {
  /** The object the Event is about (kind, name, namespace for namespaced ones, uid). */
  readonly involvedObject: V1ObjectReference;
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
export async function recordKubeEvent(core: CoreV1Api, params: KubeEventParams): Promise<string> {
  const namespace = params.involvedObject.namespace ?? CLUSTER_EVENTS_NAMESPACE;
  const now = params.now ?? new Date();
  const created = await core.createNamespacedEvent({
    namespace,
    body: {
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
    },
  });
  return created.metadata?.name ?? "";
}
