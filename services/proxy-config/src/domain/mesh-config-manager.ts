// The MeshConfig as this replica knows it: validated updates (persist, then publish
// config.updated) and changes made by anyone else through the store (re-validated; an invalid
// edit is reported and the last good config kept). The store is the truth: replicas are
// stateless and converge on it.
import { formatDuration } from "@meshid/config";
import { MeshidError, isMeshidError } from "@meshid/errors";
import { LogKeys, type Logger } from "@meshid/telemetry";
import {
  STORE_CONFLICT_CODE,
  type ConfigUpdatedPublisher,
  type MeshConfigDocument,
  type MeshConfigStore,
} from "../ports";
import {
  DEFAULT_MESH_CONFIG_SETTINGS,
  MeshConfigErrorCode,
  meshConfigInvalidError,
  resolveMeshConfigUpdate,
  sameSettings,
  type MeshConfig,
  type MeshConfigSettings,
  type MeshConfigUpdate,
} from "./mesh-config";

/** How often an update re-reads and retries after losing a write race (without expected generation). */
export const UPDATE_CONFLICT_RETRIES = 5;

/** Dependencies of {@link createMeshConfigManager}. */
export interface MeshConfigManagerDeps {
  readonly store: MeshConfigStore;
  /** Without it nothing is published (no NATS configured). */
  readonly publisher?: ConfigUpdatedPublisher;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** Parameters of {@link MeshConfigManager.update}. */
export interface UpdateMeshConfigParams {
  readonly update: MeshConfigUpdate;
  /** Ask the CA to rotate its authority at once. */
  readonly rotateNow: boolean;
  /** When set, the update fails with `aborted` if the config is at another generation. */
  readonly expectedGeneration?: number;
}

/** Result of {@link MeshConfigManager.update}. */
export interface UpdateMeshConfigResult {
  readonly config: MeshConfig;
  readonly warnings: readonly string[];
}

/** The MeshConfig of this replica. */
export interface MeshConfigManager {
  /** Reads the store (creating the defaults when missing). Call once before anything else. */
  init(signal?: AbortSignal): Promise<void>;
  /** The last valid config. */
  current(): MeshConfig;
  /**
   * Validates `params.update` against the current config, persists it and publishes
   * `config.updated` (complete settings plus `rotateNow`). An update that changes nothing is
   * not written; with `rotateNow` it is still published.
   * @throws MeshidError `invalid_argument` naming every bad field (nothing changed); `aborted`
   *   when `expectedGeneration` is stale or the write kept losing races.
   */
  update(params: UpdateMeshConfigParams, signal?: AbortSignal): Promise<UpdateMeshConfigResult>;
  /** Calls `listener` after every change of the current config; returns an unsubscribe. */
  subscribe(listener: (config: MeshConfig) => void): () => void;
  /** Follows the store's changes until `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
  /** How many `config.updated` events were published, and how many publishes failed. */
  stats(): { readonly published: number; readonly publishFailures: number };
}

/** Resolves a stored document: its settings, or the problems of an invalid spec. */
export function settingsFromDocument(
  document: MeshConfigDocument,
): { ok: true; settings: MeshConfigSettings } | { ok: false; message: string } {
  const resolved = resolveMeshConfigUpdate(DEFAULT_MESH_CONFIG_SETTINGS, document.spec);
  if (resolved.ok) return { ok: true, settings: resolved.settings };
  return { ok: false, message: resolved.problems.map((p) => p.message).join("; ") };
}

/** The spec strings of `settings`, as stores persist them. */
export function specFromSettings(settings: MeshConfigSettings): Required<MeshConfigUpdate> {
  return {
    mtlsMode: settings.mtlsMode,
    caTtl: formatDuration(settings.caTtlSeconds),
    svidTtl: formatDuration(settings.svidTtlSeconds),
    caKeyType: settings.caKeyType,
  };
}

/**
 * CloudEvents id of the `config.updated` for a document: the same on every replica, so JetStream
 * drops the copies replicas publish for one change. A rotation request (`rotateAt`) is an
 * action of its own and gets its own id.
 */
export function configUpdatedEventId(document: MeshConfigDocument, rotateAt?: Date): string {
  const at = document.updatedAt?.getTime() ?? 0;
  const base = `meshconfig-${document.generation}-${at}-${document.version}`;
  return rotateAt === undefined ? base : `${base}-rotate-${rotateAt.getTime()}`;
}

/** Creates the {@link MeshConfigManager}. */
export function createMeshConfigManager(deps: MeshConfigManagerDeps): MeshConfigManager {
  const { store, publisher, logger } = deps;
  let current: MeshConfig | undefined;
  let lastInvalidVersion: string | undefined;
  const listeners = new Set<(config: MeshConfig) => void>();
  let published = 0;
  let publishFailures = 0;

  const requireCurrent = (): MeshConfig => {
    if (current === undefined) {
      throw new MeshidError("unavailable", "proxy_config.not_ready", "MeshConfig not loaded yet");
    }
    return current;
  };

  const adopt = (settings: MeshConfigSettings, document: MeshConfigDocument): void => {
    const next: MeshConfig = Object.freeze({
      ...settings,
      generation: document.generation,
      updatedAt: document.updatedAt ?? current?.updatedAt ?? deps.now(),
    });
    const changed =
      current === undefined ||
      !sameSettings(current, next) ||
      current.generation !== next.generation;
    current = next;
    if (!changed) return;
    for (const listener of listeners) {
      try {
        listener(next);
      } catch (err) {
        logger.warn({ [LogKeys.err]: err }, "proxy-config: a MeshConfig listener failed");
      }
    }
  };

  const publish = async (
    settings: MeshConfigSettings,
    document: MeshConfigDocument,
    rotateNow: boolean,
  ): Promise<string | undefined> => {
    if (publisher === undefined) return undefined;
    try {
      await publisher.publish(settings, {
        rotateNow,
        id: configUpdatedEventId(document, rotateNow ? deps.now() : undefined),
      });
      published++;
      return undefined;
    } catch (err) {
      publishFailures++;
      logger.error(
        { [LogKeys.err]: err, generation: document.generation },
        "proxy-config: config.updated could not be published",
      );
      return (
        "the change is saved but config.updated could not be published: the CA applies it " +
        "with the next published change"
      );
    }
  };

  const observe = async (document: MeshConfigDocument): Promise<void> => {
    const resolved = settingsFromDocument(document);
    if (!resolved.ok) {
      if (lastInvalidVersion === document.version) return;
      lastInvalidVersion = document.version;
      logger.warn(
        { generation: document.generation, problems: resolved.message },
        "proxy-config: the stored MeshConfig is invalid; keeping the last valid one",
      );
      await store.reportInvalid(document, resolved.message).catch((err: unknown) => {
        logger.warn(
          { [LogKeys.err]: err },
          "proxy-config: could not report the invalid MeshConfig",
        );
      });
      return;
    }
    const before = current;
    adopt(resolved.settings, document);
    // Changed by someone else (kubectl, another replica): tell the CA too. Replicas publish
    // with the same event id, so JetStream keeps one.
    if (before !== undefined && !sameSettings(before, resolved.settings)) {
      logger.info(
        { generation: document.generation, mtlsMode: resolved.settings.mtlsMode },
        "proxy-config: MeshConfig changed in the store",
      );
      await publish(resolved.settings, document, false);
    }
  };

  return {
    async init(signal) {
      const document = await store.read(signal);
      const resolved = settingsFromDocument(document);
      if (resolved.ok) {
        adopt(resolved.settings, document);
        return;
      }
      // Start with the defaults rather than not at all; the report says what to fix.
      adopt(DEFAULT_MESH_CONFIG_SETTINGS, document);
      lastInvalidVersion = undefined;
      await observe(document);
    },

    current: requireCurrent,

    async update(params, signal) {
      for (let attempt = 0; ; attempt++) {
        const document = await store.read(signal);
        if (
          params.expectedGeneration !== undefined &&
          document.generation !== params.expectedGeneration
        ) {
          throw new MeshidError(
            "aborted",
            MeshConfigErrorCode.staleGeneration,
            `MeshConfig is at generation ${document.generation}, not ${params.expectedGeneration}`,
            { details: { generation: document.generation } },
          );
        }
        const stored = settingsFromDocument(document);
        const base = stored.ok ? stored.settings : requireCurrent();
        const resolved = resolveMeshConfigUpdate(base, params.update);
        if (!resolved.ok) throw meshConfigInvalidError(resolved.problems);
        let written = document;
        if (!stored.ok || !sameSettings(stored.settings, resolved.settings)) {
          try {
            written = await store.write(
              {
                spec: specFromSettings(resolved.settings),
                expectedVersion: document.version,
                updatedAt: deps.now(),
              },
              signal,
            );
          } catch (err) {
            if (!isMeshidError(err, STORE_CONFLICT_CODE)) throw err;
            if (params.expectedGeneration !== undefined || attempt >= UPDATE_CONFLICT_RETRIES) {
              throw new MeshidError(
                "aborted",
                MeshConfigErrorCode.staleGeneration,
                "MeshConfig changed while this update was applied; read it again and retry",
                { cause: err },
              );
            }
            continue;
          }
          adopt(resolved.settings, written);
        } else if (!params.rotateNow) {
          adopt(resolved.settings, document);
          return { config: requireCurrent(), warnings: resolved.warnings };
        }
        const warnings = [...resolved.warnings];
        const failure = await publish(resolved.settings, written, params.rotateNow);
        if (failure !== undefined) warnings.push(failure);
        logger.info(
          {
            generation: written.generation,
            mtlsMode: resolved.settings.mtlsMode,
            caTtlSeconds: resolved.settings.caTtlSeconds,
            svidTtlSeconds: resolved.settings.svidTtlSeconds,
            caKeyType: resolved.settings.caKeyType,
            rotateNow: params.rotateNow,
          },
          "proxy-config: MeshConfig updated",
        );
        return { config: requireCurrent(), warnings };
      }
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async run(signal) {
      for await (const document of store.watch(signal)) {
        await observe(document);
      }
    },

    stats: () => ({ published, publishFailures }),
  };
}
