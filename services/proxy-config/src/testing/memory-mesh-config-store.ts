// An in-memory MeshConfigStore for unit tests (same contract as the file and Kubernetes stores).
import { MeshidError } from "@meshid/errors";
import { DEFAULT_MESH_CONFIG_SETTINGS, type MeshConfigUpdate } from "../domain/mesh-config";
import { specFromSettings } from "../domain/mesh-config-manager";
import { STORE_CONFLICT_CODE, type MeshConfigDocument, type MeshConfigStore } from "../ports";

/** A {@link MeshConfigStore} in memory, with a test-side `edit` standing for kubectl. */
export interface MemoryMeshConfigStore extends MeshConfigStore {
  /** Replaces the spec as another writer would (generation + 1, new version). */
  edit(spec: MeshConfigUpdate): void;
  /** The document now (undefined before the first read). */
  peek(): MeshConfigDocument | undefined;
  /** Reports received through reportInvalid. */
  readonly reports: string[];
  /** Makes the next `count` writes fail with a conflict after someone else's `edit`. */
  conflictNext(count: number, spec: MeshConfigUpdate): void;
}

/** Creates a {@link MemoryMeshConfigStore}. */
export function createMemoryMeshConfigStore(): MemoryMeshConfigStore {
  let document: MeshConfigDocument | undefined;
  let version = 0;
  const listeners = new Set<() => void>();
  const reports: string[] = [];
  let conflicts: { count: number; spec: MeshConfigUpdate } | undefined;

  const set = (next: Omit<MeshConfigDocument, "version">): MeshConfigDocument => {
    document = { ...next, version: String(++version) };
    for (const listener of listeners) listener();
    return document;
  };
  const edit = (spec: MeshConfigUpdate): void => {
    set({ spec, generation: (document?.generation ?? 0) + 1 });
  };

  return {
    description: "memory",
    reports,
    peek: () => document,
    edit,
    conflictNext(count, spec) {
      conflicts = { count, spec };
    },
    read() {
      document ??= set({
        spec: specFromSettings(DEFAULT_MESH_CONFIG_SETTINGS),
        generation: 1,
        updatedAt: new Date(),
      });
      return Promise.resolve(document);
    },
    write(params) {
      if (conflicts !== undefined && conflicts.count > 0) {
        conflicts.count--;
        edit(conflicts.spec);
      }
      if (document?.version !== params.expectedVersion) {
        return Promise.reject(new MeshidError("aborted", STORE_CONFLICT_CODE, "changed meanwhile"));
      }
      return Promise.resolve(
        set({
          spec: params.spec,
          generation: document.generation + 1,
          updatedAt: params.updatedAt,
        }),
      );
    },
    async *watch(signal) {
      let seen: string | undefined;
      let wake: (() => void) | undefined;
      const listener = (): void => wake?.();
      listeners.add(listener);
      const onAbort = (): void => wake?.();
      signal.addEventListener("abort", onAbort);
      try {
        while (!signal.aborted) {
          if (document !== undefined && document.version !== seen) {
            seen = document.version;
            yield document;
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      } finally {
        listeners.delete(listener);
        signal.removeEventListener("abort", onAbort);
      }
    },
    reportInvalid(_document, message) {
      reports.push(message);
      return Promise.resolve();
    },
  };
}
