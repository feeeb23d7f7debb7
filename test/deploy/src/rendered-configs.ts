// The configuration every service container of a rendered chart would start with: its
// `--config` file read from the ConfigMap volume, its environment, and the result of loading
// both with the service's own schema.
import { HOSTED_SERVICES, SERVICE_NAMES } from "@meshid/control-plane/src/config";
import { parse } from "yaml";
import type { KubeObject } from "./helm";
import {
  type Container,
  type PodSpec,
  configArg,
  configMapFile,
  resolveEnv,
  workloadsOf,
} from "./manifests";
import { type LoadedServiceConfig, loadServiceConfig } from "./service-configs";

/** One service container and the configuration it would load. */
export interface RenderedServiceConfig {
  /** The service (= container name: `ca`, `bundle-notifier`, …; or a hosted service's name). */
  readonly service: string;
  /**
   * Set for a service the control plane hosts in its process (`control-plane`): its file is
   * the one the control plane's `<service>.configFile` names, its environment the container's.
   */
  readonly hostedBy?: string;
  readonly pod: PodSpec;
  readonly container: Container;
  /** Path given with `--config`. */
  readonly configPath: string;
  /** The file as rendered (before defaults). */
  readonly fileText: string;
  /** The file parsed as YAML (only what the chart wrote). */
  readonly file: Record<string, unknown>;
  /** The container's environment (fieldRefs resolved to fake values). */
  readonly env: Record<string, string>;
  /** The outcome of loading file + env with the service's schema. */
  readonly loaded: LoadedServiceConfig;
}

/**
 * Every container started with `--config` in the rendered objects, with its configuration;
 * for the control plane, also each service it hosts (enabled with a `configFile`), right after it.
 */
export function renderedServiceConfigs(objects: readonly KubeObject[]): RenderedServiceConfig[] {
  const out: RenderedServiceConfig[] = [];
  for (const workload of workloadsOf(objects)) {
    for (const container of workload.pod.containers) {
      const configPath = configArg(container);
      if (configPath === undefined) continue;
      const env = resolveEnv(container);
      const read = (service: string, path: string, hostedBy?: string): RenderedServiceConfig => {
        const fileText = configMapFile(objects, workload.pod, container, path);
        return {
          service,
          ...(hostedBy === undefined ? {} : { hostedBy }),
          pod: workload.pod,
          container,
          configPath: path,
          fileText,
          file: parse(fileText) as Record<string, unknown>,
          env,
          loaded: loadServiceConfig(service, fileText, env),
        };
      };
      const own = read(container.name, configPath);
      out.push(own);
      if (container.name !== "control-plane") continue;
      for (const key of HOSTED_SERVICES) {
        const hosted = own.file[key] as { enabled?: boolean; configFile?: string } | undefined;
        if (hosted?.enabled !== true || hosted.configFile === undefined) continue;
        out.push(read(SERVICE_NAMES[key], hosted.configFile, container.name));
      }
    }
  }
  return out;
}

/** Every string leaf of a parsed YAML value with its dotted key path. */
export function stringLeaves(value: unknown, path = ""): { path: string; value: string }[] {
  if (typeof value === "string") return [{ path, value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringLeaves(v, `${path}[${i}]`));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, v]) =>
      stringLeaves(v, path === "" ? k : `${path}.${k}`),
    );
  }
  return [];
}

/** The value at a dotted path of a loaded configuration. */
export function at(config: Record<string, unknown>, path: string): unknown {
  let current: unknown = config;
  for (const key of path.split(".")) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
