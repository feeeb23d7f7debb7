export {
  EVENT_CATALOG,
  EVENT_TYPES,
  eventTypeFromCeType,
  isEventType,
  type EventCodec,
  type EventDefinition,
  type EventPayload,
  type EventType,
} from "./catalog";
export { CE_HEADERS, CE_SPEC_VERSION, EVENT_CONTENT_TYPE } from "./cloud-event-headers";
export {
  consumeEventsDurable,
  type ConsumeEventsDurableParams,
  type DurableEvent,
  type DurableEventConsumer,
  type EventDeliverPolicy,
} from "./consume-events-durable";
export {
  decodeEventMessage,
  type DecodeEventResult,
  type EventMessage,
  type MalformedReason,
  type ReceivedEvent,
} from "./decode-event";
export {
  createEventPublisher,
  type EventPublisher,
  type EventPublisherDeps,
  type PublishEventOptions,
} from "./event-publisher";
export {
  DEFAULT_EVENT_DUPLICATE_WINDOW_SECONDS,
  DEFAULT_EVENT_MAX_AGE_SECONDS,
  DEFAULT_EVENT_MAX_BYTES,
  EVENT_STREAM_NAME,
  ensureEventStream,
  type EnsureEventStreamParams,
} from "./event-stream";
export { TRACER_NAME, type EventsLogger } from "./events-logger";
export {
  MALFORMED_COUNTER_NAME,
  type EventConsumerObservability,
  type EventSubscriptionStats,
  type MalformedEventInfo,
} from "./malformed-reporter";
export { assertNoSecretMaterial } from "./secret-guard";
export {
  AGENT_WAKEUP_SUBJECT_PREFIX,
  ALL_AGENT_WAKEUPS_SUBJECT,
  ALL_EVENTS_SUBJECT,
  EVENT_SUBJECT_PREFIX,
  agentWakeupSubject,
  isAgentWakeupSubject,
} from "./subjects";
export {
  subjectsForTypes,
  subscribeEvents,
  type EventSubscription,
  type SubscribeEventsParams,
} from "./subscribe-events";
export {
  DEFAULT_NATS_CONNECT_RETRY_INITIAL_MS,
  DEFAULT_NATS_CONNECT_RETRY_MAX_MS,
  connectNats,
  connectNatsWithRetry,
  redactNatsUrl,
  type ConnectNatsParams,
  type ConnectNatsWithRetryParams,
} from "./connect-nats";
