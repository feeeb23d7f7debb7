// Offline checks of rendered objects: schema validation with kubernetes-models (the
// Kubernetes OpenAPI schemas, 4.5.x for Node 20) and helpers that read pod templates.
import type { KubeObject } from "./helm";

interface ValidatableModel {
  validate(): void;
}
type ModelClass = new (data: unknown) => ValidatableModel;

/**
 * Validates an object against the Kubernetes schema of its apiVersion and kind.
 * @throws Error naming the object when the kind is unknown or the object is invalid.
 */
export function validateKubeObject(obj: KubeObject): void {
  const where = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
  // kubernetes-models lays out one module per kind: <group>/<version>/<Kind> ("v1/Pod").
  const modulePath = `kubernetes-models/${obj.apiVersion}/${obj.kind}`;
  let model: ModelClass | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(modulePath) as Record<string, ModelClass | undefined>;
    model = mod[obj.kind];
  } catch {
    model = undefined;
  }
  if (model === undefined) throw new Error(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
  try {
    new model(obj).validate();
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
  }
}

/** A container as the checks read it. */
export interface Container {
  readonly name: string;
  readonly image: string;
  readonly args?: readonly string[];
  readonly command?: readonly string[];
  readonly env?: readonly EnvVar[];
  readonly ports?: readonly { name?: string; containerPort: number }[];
  readonly volumeMounts?: readonly { name: string; mountPath: string; readOnly?: boolean }[];
  readonly securityContext?: SecurityContext;
  readonly resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readonly livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readonly readinessProbe?: { httpGet?: { path: string; port: string | number } };
}

/** The container security settings the checks look at. */
export interface SecurityContext {
  readonly runAsNonRoot?: boolean;
  readonly runAsUser?: number;
  readonly allowPrivilegeEscalation?: boolean;
  readonly readOnlyRootFilesystem?: boolean;
  readonly privileged?: boolean;
  readonly capabilities?: { drop?: readonly string[]; add?: readonly string[] };
}

/** One environment variable of a container. */
export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
  };
}

/** A volume of a pod spec. */
export interface Volume {
  readonly name: string;
  readonly configMap?: { name: string; items?: readonly { key: string; path: string }[] };
  readonly hostPath?: { path: string; type?: string };
  readonly emptyDir?: object;
  readonly projected?: { sources: readonly { serviceAccountToken?: { audience?: string } }[] };
  readonly secret?: { secretName: string };
}

/** The pod spec fields the checks look at. */
export interface PodSpec {
  readonly serviceAccountName?: string;
  readonly automountServiceAccountToken?: boolean;
  readonly hostPID?: boolean;
  readonly hostNetwork?: boolean;
  readonly hostIPC?: boolean;
  readonly securityContext?: SecurityContext & {
    fsGroup?: number;
    fsGroupChangePolicy?: string;
    seccompProfile?: { type: string };
  };
  readonly initContainers?: readonly Container[];
  readonly containers: readonly Container[];
  readonly volumes?: readonly Volume[];
}

/** A workload (Deployment, StatefulSet, DaemonSet) with its pod template. */
export interface Workload {
  readonly object: KubeObject;
  readonly replicas?: number;
  readonly podLabels: Record<string, string>;
  readonly podAnnotations: Record<string, string>;
  readonly pod: PodSpec;
  readonly volumeClaimTemplates: readonly { metadata: { name: string } }[];
}

const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet"]);

/** The workloads among rendered objects. */
export function workloadsOf(objects: readonly KubeObject[]): Workload[] {
  return objects
    .filter((o) => WORKLOAD_KINDS.has(o.kind))
    .map((object) => {
      const spec = object.spec as {
        replicas?: number;
        template: {
          metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
          spec: PodSpec;
        };
        volumeClaimTemplates?: { metadata: { name: string } }[];
      };
      return {
        object,
        ...(spec.replicas === undefined ? {} : { replicas: spec.replicas }),
        podLabels: spec.template.metadata.labels ?? {},
        podAnnotations: spec.template.metadata.annotations ?? {},
        pod: spec.template.spec,
        volumeClaimTemplates: spec.volumeClaimTemplates ?? [],
      };
    });
}

/** The one object of a kind and name. @throws Error when it is missing. */
export function findObject(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} rendered`);
  return found;
}

/** Values the downward API would give, for resolving `fieldRef` variables in tests. */
export const FAKE_FIELD_VALUES: Readonly<Record<string, string>> = Object.freeze({
  "spec.nodeName": "node-a",
  "status.hostIP": "10.0.0.10",
  "status.podIP": "10.1.0.20",
  "metadata.name": "pod-0",
  "metadata.namespace": "meshid",
  "spec.serviceAccountName": "default",
});

/**
 * The environment a container would see (only its `env` list): literal values with `$(VAR)`
 * references expanded as the kubelet does, `fieldRef` from {@link FAKE_FIELD_VALUES}, secret
 * and ConfigMap references as placeholders.
 * @throws Error on a fieldRef the fake values do not cover.
 */
export function resolveEnv(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of container.env ?? []) {
    if (v.value !== undefined) {
      env[v.name] = v.value.replace(
        /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
        (whole, name: string) => env[name] ?? whole,
      );
    } else if (v.valueFrom?.fieldRef !== undefined) {
      const value = FAKE_FIELD_VALUES[v.valueFrom.fieldRef.fieldPath];
      if (value === undefined)
        throw new Error(`unexpected fieldRef ${v.valueFrom.fieldRef.fieldPath}`);
      env[v.name] = value;
    } else if (
      v.valueFrom?.secretKeyRef !== undefined ||
      v.valueFrom?.configMapKeyRef !== undefined
    ) {
      env[v.name] = "placeholder-from-reference";
    } else {
      env[v.name] = "";
    }
  }
  return env;
}

/** The value following `--config` in a container's args, if any. */
export function configArg(container: Container): string | undefined {
  const args = [...(container.command ?? []), ...(container.args ?? [])];
  const i = args.indexOf("--config");
  return i >= 0 ? args[i + 1] : undefined;
}

/** The volume mount under which `path` lies (longest mount path wins), if any. */
export function mountFor(
  container: Container,
  path: string,
): { name: string; mountPath: string; readOnly?: boolean } | undefined {
  let best: { name: string; mountPath: string; readOnly?: boolean } | undefined;
  for (const m of container.volumeMounts ?? []) {
    const prefix = m.mountPath.endsWith("/") ? m.mountPath : `${m.mountPath}/`;
    if (path === m.mountPath || path.startsWith(prefix)) {
      if (best === undefined || m.mountPath.length > best.mountPath.length) best = m;
    }
  }
  return best;
}

/**
 * The text of a file a container reads from a ConfigMap volume (`path` under a mount of a
 * configMap volume; the key is the rest of the path, or mapped through `items`).
 * @throws Error when the path is not on a ConfigMap volume or the ConfigMap/key is missing.
 */
export function configMapFile(
  objects: readonly KubeObject[],
  pod: PodSpec,
  container: Container,
  path: string,
): string {
  const mount = mountFor(container, path);
  if (mount === undefined) throw new Error(`${container.name}: ${path} is on no volume`);
  const volume = pod.volumes?.find((v) => v.name === mount.name);
  if (volume?.configMap === undefined) {
    throw new Error(`${container.name}: ${path} is not on a ConfigMap volume`);
  }
  const rest = path.slice(mount.mountPath.length).replace(/^\//, "");
  const key = volume.configMap.items?.find((i) => i.path === rest)?.key ?? rest;
  const cm = findObject(objects, "ConfigMap", volume.configMap.name);
  const data = (cm.data ?? {}) as Record<string, string>;
  const text = data[key];
  if (text === undefined) throw new Error(`ConfigMap ${volume.configMap.name} has no key ${key}`);
  return text;
}

/** Every container of a pod, init containers first. */
export function allContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}
