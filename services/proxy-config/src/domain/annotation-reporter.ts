// Reports pods whose mtls-mode annotation is ignored (mesh strict) or invalid, once per pod and
// value, whenever a pod or the mesh mode changes.
import type { PodDirectory, PodEventRecorder, PodInfo } from "../ports";
import { resolveEffectiveMode } from "./effective-mode";
import type { MeshConfig } from "./mesh-config";

/** Dependencies of {@link startAnnotationReporter}. */
export interface AnnotationReporterDeps {
  readonly pods: PodDirectory;
  readonly meshConfig: {
    current(): MeshConfig;
    subscribe(listener: (config: MeshConfig) => void): () => void;
  };
  readonly recorder: PodEventRecorder;
}

/** A running reporter. */
export interface AnnotationReporter {
  /** Events recorded so far. */
  recorded(): number;
  stop(): void;
}

/**
 * Checks every known pod now, then each pod on change and all pods when the mesh config
 * changes. A pod is reported again only when its annotation value or the reason changes (or a
 * pod of the same name is recreated: new uid).
 */
export function startAnnotationReporter(deps: AnnotationReporterDeps): AnnotationReporter {
  const reported = new Map<string, string>();
  let recorded = 0;

  const check = (pod: PodInfo): void => {
    const key = `${pod.namespace}/${pod.name}`;
    const effective = resolveEffectiveMode(
      deps.meshConfig.current().mtlsMode,
      pod.mtlsModeAnnotation,
    );
    const report = effective.report;
    if (report === undefined) {
      reported.delete(key);
      return;
    }
    const signature = `${pod.uid}\n${report.reason}\n${report.value}`;
    if (reported.get(key) === signature) return;
    reported.set(key, signature);
    recorded++;
    void deps.recorder.record(pod, report);
  };

  const unsubscribePods = deps.pods.subscribe((pod, change) => {
    if (change === "delete") reported.delete(`${pod.namespace}/${pod.name}`);
    else check(pod);
  });
  const unsubscribeMesh = deps.meshConfig.subscribe(() => {
    for (const pod of deps.pods.list()) check(pod);
  });
  for (const pod of deps.pods.list()) check(pod);

  return {
    recorded: () => recorded,
    stop() {
      unsubscribePods();
      unsubscribeMesh();
    },
  };
}
