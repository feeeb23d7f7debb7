import { MeshidError } from "@meshid/errors";
import {
  DiscardPolicy,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "nats";
import { ALL_EVENTS_SUBJECT } from "./subjects";

/** Name of the JetStream stream that keeps every meshid event. */
export const EVENT_STREAM_NAME = "MESHID_EVENTS";

/** Default maximum age of a stored event: 7 days. */
export const DEFAULT_EVENT_MAX_AGE_SECONDS = 7 * 24 * 60 * 60;
/** Default maximum size of the stream: 1 GiB. */
export const DEFAULT_EVENT_MAX_BYTES = 1024 ** 3;
/** Default de-duplication window (by Nats-Msg-Id = ce-id): 120 s. */
export const DEFAULT_EVENT_DUPLICATE_WINDOW_SECONDS = 120;

/** Limits of the MESHID_EVENTS stream. */
export interface EnsureEventStreamParams {
  /** Events older than this are dropped. Default 7 days. */
  maxAgeSeconds?: number;
  /** Oldest events are dropped beyond this size. Default 1 GiB. */
  maxBytes?: number;
  /** Same ce-id within this window is stored once. Default 120 s. */
  duplicateWindowSeconds?: number;
  /** Stream replicas (1, or 3 in a JetStream cluster). Default 1. */
  replicas?: number;
}

/**
 * Creates the JetStream stream MESHID_EVENTS (subjects `meshid.v1.>`, file storage, limits
 * retention dropping the oldest, de-duplication by Nats-Msg-Id) or updates its limits when it
 * exists; running it again with the same limits changes nothing. Returns the stream info.
 * Throws MeshidError `unavailable` (`events.stream.failed`) when JetStream refuses.
 */
export async function ensureEventStream(
  nc: NatsConnection,
  params: EnsureEventStreamParams = {},
): Promise<StreamInfo> {
  const {
    maxAgeSeconds = DEFAULT_EVENT_MAX_AGE_SECONDS,
    maxBytes = DEFAULT_EVENT_MAX_BYTES,
    duplicateWindowSeconds = DEFAULT_EVENT_DUPLICATE_WINDOW_SECONDS,
    replicas = 1,
  } = params;
  for (const [name, value] of Object.entries({ maxAgeSeconds, maxBytes, duplicateWindowSeconds })) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new MeshidError("invalid_argument", "events.stream.invalid", `${name} must be > 0`);
    }
  }
  if (duplicateWindowSeconds > maxAgeSeconds) {
    throw new MeshidError(
      "invalid_argument",
      "events.stream.invalid",
      "duplicateWindowSeconds must not exceed maxAgeSeconds",
    );
  }
  const config: Partial<StreamConfig> & { name: string } = {
    name: EVENT_STREAM_NAME,
    description: "meshid events (CloudEvents, protobuf JSON); see docs/events.md",
    subjects: [ALL_EVENTS_SUBJECT],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(maxAgeSeconds * 1000),
    max_bytes: maxBytes,
    duplicate_window: nanos(duplicateWindowSeconds * 1000),
    num_replicas: replicas,
  };
  try {
    const jsm = await nc.jetstreamManager();
    const existing = await jsm.streams.info(EVENT_STREAM_NAME).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (existing === undefined) return await jsm.streams.add(config);
    if (sameLimits(existing.config, config)) return existing;
    return await jsm.streams.update(EVENT_STREAM_NAME, config);
  } catch (err) {
    throw new MeshidError(
      "unavailable",
      "events.stream.failed",
      `cannot create or update JetStream stream ${EVENT_STREAM_NAME}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** True for JetStream's "stream not found" API error. */
function isNotFound(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number; code?: number }; code?: string };
  return e.api_error?.err_code === 10059 || e.api_error?.code === 404 || e.code === "404";
}

/** True when the stream already has the wanted subjects and limits. */
function sameLimits(have: StreamConfig, want: Partial<StreamConfig>): boolean {
  return (
    have.subjects.length === 1 &&
    have.subjects[0] === want.subjects?.[0] &&
    have.max_age === want.max_age &&
    have.max_bytes === want.max_bytes &&
    have.duplicate_window === want.duplicate_window &&
    have.num_replicas === want.num_replicas &&
    have.discard === want.discard &&
    have.description === want.description
  );
}
