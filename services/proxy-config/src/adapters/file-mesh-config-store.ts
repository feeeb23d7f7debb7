// MeshConfig in a YAML file (outside Kubernetes): the same document as the resource, written
// atomically (temp file + rename, mode 0600), created with the defaults when missing, polled
// for edits. One proxy-config process per file.
import { setTimeout as delay } from "node:timers/promises";
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { MeshidError } from "@meshid/errors";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { parse, stringify } from "yaml";
import { DEFAULT_MESH_CONFIG_SETTINGS } from "../domain/mesh-config";
import { specFromSettings } from "../domain/mesh-config-manager";
import {
  STORE_CONFLICT_CODE,
  type MeshConfigDocument,
  type MeshConfigStore,
  type WriteMeshConfigParams,
} from "../ports";
import {
  DEFAULT_MESH_CONFIG_NAME,
  MESH_CONFIG_GROUP,
  MESH_CONFIG_KIND,
  MESH_CONFIG_VERSION,
  UPDATED_AT_ANNOTATION,
  resourceSpecFromUpdate,
  updateFromResourceSpec,
  updatedAtOf,
  type MeshConfigResource,
} from "./mesh-config-document";

/** Waits `ms`, or less once `signal` aborts (never rejects). */
const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  delay(ms, undefined, { signal }).catch(() => undefined);

/** Default interval between two checks of the file for edits, in milliseconds. */
export const DEFAULT_FILE_POLL_INTERVAL_MS = 1_000;
/** Error code of a file that is not a MeshConfig document. */
export const FILE_INVALID_CODE = "proxy_config.file.invalid";

/** Dependencies of {@link createFileMeshConfigStore}. */
export interface FileMeshConfigStoreDeps {
  readonly path: string;
  readonly logger: Logger;
  /** Default {@link DEFAULT_FILE_POLL_INTERVAL_MS}. */
  readonly pollIntervalMs?: number;
}

function versionOf(content: string): string {
  return createHash("sha256").update(content).digest("hex").slice(0, 16);
}

function documentOf(path: string, content: string): MeshConfigDocument {
  let parsed: unknown;
  try {
    parsed = parse(content);
  } catch (err) {
    throw new MeshidError(
      "failed_precondition",
      FILE_INVALID_CODE,
      `${path} is not valid YAML: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new MeshidError("failed_precondition", FILE_INVALID_CODE, `${path} is not a MeshConfig`);
  }
  const resource = parsed as Partial<MeshConfigResource>;
  const generation = resource.metadata?.generation;
  const updatedAt = updatedAtOf(resource);
  return {
    spec: updateFromResourceSpec(resource.spec),
    generation: typeof generation === "number" && Number.isInteger(generation) ? generation : 1,
    ...(updatedAt === undefined ? {} : { updatedAt }),
    version: versionOf(content),
  };
}

/** Creates the file-backed {@link MeshConfigStore}. */
export function createFileMeshConfigStore(deps: FileMeshConfigStoreDeps): MeshConfigStore {
  const { path, logger } = deps;
  const pollMs = deps.pollIntervalMs ?? DEFAULT_FILE_POLL_INTERVAL_MS;
  let queue: Promise<unknown> = Promise.resolve();
  const serialize = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };

  const writeAtomically = async (content: string): Promise<void> => {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, content, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  };

  const render = (
    spec: WriteMeshConfigParams["spec"],
    generation: number,
    updatedAt: Date,
  ): string => {
    const resource: MeshConfigResource = {
      apiVersion: `${MESH_CONFIG_GROUP}/${MESH_CONFIG_VERSION}`,
      kind: MESH_CONFIG_KIND,
      metadata: {
        name: DEFAULT_MESH_CONFIG_NAME,
        generation,
        annotations: { [UPDATED_AT_ANNOTATION]: updatedAt.toISOString() },
      },
      spec: resourceSpecFromUpdate(spec),
    };
    // YAML 1.1 quoting ("off"), so kubectl (YAML 1.1) reads the same strings back.
    return `# MeshConfig of meshid proxy-config (written atomically on every update).\n${stringify(resource, { version: "1.1" })}`;
  };

  const readContent = async (): Promise<string | undefined> => {
    try {
      return await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new MeshidError("unavailable", "proxy_config.file.unreadable", `cannot read ${path}`, {
        cause: err,
      });
    }
  };

  const read = (): Promise<MeshConfigDocument> =>
    serialize(async () => {
      const content = await readContent();
      if (content !== undefined) return documentOf(path, content);
      const created = render(specFromSettings(DEFAULT_MESH_CONFIG_SETTINGS), 1, new Date());
      await writeAtomically(created);
      logger.info({ path }, "proxy-config: created the MeshConfig file with the defaults");
      return documentOf(path, created);
    });

  return {
    description: path,
    read,
    write: (params) =>
      serialize(async () => {
        const content = await readContent();
        const current = content === undefined ? undefined : documentOf(path, content);
        if (current?.version !== params.expectedVersion) {
          throw new MeshidError("aborted", STORE_CONFLICT_CODE, `${path} changed meanwhile`);
        }
        const next = render(params.spec, current.generation + 1, params.updatedAt);
        await writeAtomically(next);
        return documentOf(path, next);
      }),
    async *watch(signal) {
      let lastVersion: string | undefined;
      let lastProblem: string | undefined;
      while (!signal.aborted) {
        try {
          const content = await readContent();
          if (content !== undefined) {
            const version = versionOf(content);
            if (version !== lastVersion) {
              lastVersion = version;
              yield documentOf(path, content);
            }
          }
          lastProblem = undefined;
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          if (message !== lastProblem) {
            lastProblem = message;
            logger.warn(
              { [LogKeys.err]: message, path },
              "proxy-config: cannot use the MeshConfig file",
            );
          }
        }
        await sleep(pollMs, signal);
      }
    },
    reportInvalid(document, message) {
      logger.warn(
        { path, generation: document.generation, problems: message },
        "proxy-config: the MeshConfig file is invalid; fix it (the last valid config stays in use)",
      );
      return Promise.resolve();
    },
  };
}
