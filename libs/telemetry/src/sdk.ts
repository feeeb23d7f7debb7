// The only file that loads the OpenTelemetry SDK, and only when startTelemetry runs (dynamic
// imports), so importing @meshid/telemetry for a Logger or withSpan never loads the SDK.
import { MeshidError } from "@meshid/errors";
import { context, diag, DiagLogLevel, metrics, propagation, trace } from "@opentelemetry/api";
import type { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { LogKeys } from "./log-keys";
import { createNoopLogger, type Logger } from "./logger";
import { startOpsServer, type MetricsHandler, type OpsServer } from "./ops-server";

// Stable semantic-convention keys, spelled out: @opentelemetry/semantic-conventions is ≈ 400 KB
// of source to load for two strings.
const ATTR_SERVICE_NAME = "service.name";
const ATTR_SERVICE_VERSION = "service.version";

/** Content type of the Prometheus text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Stable error code for an `OTEL_*` setting this package cannot honour. */
export const TELEMETRY_UNSUPPORTED_CODE = "telemetry.exporter.unsupported";

/** Parameters of {@link startTelemetry}. */
export interface StartTelemetryParams {
  /** `service.name` resource attribute, e.g. `meshid-ca`. */
  serviceName: string;
  /** `service.version` resource attribute. */
  serviceVersion?: string;
  /**
   * Metrics: by default a Prometheus reader whose text is returned as `metrics` for the ops
   * server; `{ host, port }` additionally serves it on its own HTTP server (`metricsUrl`;
   * port 0 picks one); `false` turns metrics off.
   */
  metrics?: { host: string; port: number } | false;
  /** Where `OTEL_*` variables are read from. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Receives OpenTelemetry's own warnings and errors (export failures). Default: none. */
  logger?: Logger;
}

/** Running telemetry, from {@link startTelemetry}. */
export interface Telemetry {
  /** Flushes and stops traces and metrics and unregisters the globals. Safe to call twice. */
  shutdown(): Promise<void>;
  /** Prometheus text source for `startOpsServer({ metrics })`; absent when metrics are off. */
  readonly metrics?: MetricsHandler;
  /** URL of the standalone metrics endpoint when `metrics: { host, port }` was given. */
  readonly metricsUrl?: string;
}

function listFromEnv(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");
}

function otlpTracesUrl(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (tracesEndpoint) return tracesEndpoint;
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (endpoint) return `${endpoint.replace(/\/+$/, "")}/v1/traces`;
  return undefined;
}

function unsupported(message: string): MeshidError {
  return new MeshidError("invalid_argument", TELEMETRY_UNSUPPORTED_CODE, message);
}

/**
 * The trace exporters `OTEL_TRACES_EXPORTER` (comma-separated) asks for: `[]` when unset or
 * `none` (nothing exported), else some of `otlp` (OTLP over HTTP to
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`,
 * default `http://localhost:4318/v1/traces`) and `console` (stdout).
 *
 * @throws MeshidError `telemetry.exporter.unsupported` for other exporters or the grpc protocol.
 */
export function traceExportersFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): ("otlp" | "console")[] {
  const names = [...new Set(listFromEnv(env.OTEL_TRACES_EXPORTER))];
  if (names.length === 0 || names.includes("none")) return [];
  return names.map((name) => {
    switch (name) {
      case "otlp": {
        const protocol = (
          env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL
        )?.trim();
        if (protocol === "grpc") {
          throw unsupported(
            'OTEL_EXPORTER_OTLP_PROTOCOL "grpc" is not supported; use http/json or http/protobuf (sent as JSON over HTTP)',
          );
        }
        return "otlp";
      }
      case "console":
        return "console";
      default:
        throw unsupported(
          `OTEL_TRACES_EXPORTER "${name}" is not supported (use otlp, console or none)`,
        );
    }
  });
}

async function createSpanProcessors(
  env: Readonly<Record<string, string | undefined>>,
): Promise<SpanProcessor[]> {
  const exporters = traceExportersFromEnv(env);
  if (exporters.length === 0) return [];
  const base = await import("@opentelemetry/sdk-trace-base");
  const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
  return exporters.map((name) => {
    if (name === "console") return new base.SimpleSpanProcessor(new base.ConsoleSpanExporter());
    const url = otlpTracesUrl(env);
    return new base.BatchSpanProcessor(
      new OTLPTraceExporter({
        ...(url === undefined ? {} : { url }),
        // Our own agent factory: the exporter's default one loads node:http through an
        // import() inside node_modules, which jest (CommonJS) cannot run.
        httpAgentOptions: async (protocol: string) =>
          protocol === "http:"
            ? new (await import("node:http")).Agent({ keepAlive: true })
            : new (await import("node:https")).Agent({ keepAlive: true }),
      }),
    );
  });
}

function isTrue(value: string | undefined): boolean {
  return value?.trim().toLowerCase() === "true";
}

function diagLoggerFor(logger: Logger): Parameters<typeof diag.setLogger>[0] {
  const log = logger.child({ [LogKeys.component]: "opentelemetry" });
  const write =
    (fn: (obj: object, msg?: string) => void) =>
    (message: string, ...args: unknown[]): void =>
      fn(
        args.length > 0 ? { args: args.map((a) => (a instanceof Error ? a.message : a)) } : {},
        message,
      );
  return {
    error: write(log.error.bind(log)),
    warn: write(log.warn.bind(log)),
    info: write(log.info.bind(log)),
    debug: write(log.debug.bind(log)),
    verbose: write(log.trace.bind(log)),
  };
}

/**
 * Starts OpenTelemetry for a service (call once, from `main.ts`): W3C trace-context
 * propagator and AsyncLocalStorage context manager registered globally, traces exported as
 * `OTEL_TRACES_EXPORTER` says (default: none, see {@link traceExportersFromEnv}), and a
 * Prometheus metric reader served through the returned `metrics` handler. No
 * auto-instrumentation is enabled: nice-grpc-opentelemetry middleware makes the RPC spans
 * (the grpc-js instrumentation would double them). `OTEL_SDK_DISABLED=true` turns it all off.
 *
 * @throws MeshidError `telemetry.exporter.unsupported` for an exporter we cannot honour;
 *   the standalone metrics server's listen error.
 */
export async function startTelemetry(params: StartTelemetryParams): Promise<Telemetry> {
  const env = params.env ?? process.env;
  if (isTrue(env.OTEL_SDK_DISABLED)) {
    return { shutdown: () => Promise.resolve() };
  }
  const spanProcessors = await createSpanProcessors(env);
  // The tracer and meter providers themselves, not @opentelemetry/sdk-node's NodeSDK: NodeSDK
  // loads every exporter, propagator and the logs SDK whether used or not (≈ 29 MiB RSS and
  // 0.6 s of start-up in every service, measured in docs/architecture.md "Memory").
  const [
    { AsyncLocalStorageContextManager },
    sdkMetrics,
    { W3CTraceContextPropagator },
    prometheus,
    resources,
  ] = await Promise.all([
    import("@opentelemetry/context-async-hooks"),
    import("@opentelemetry/sdk-metrics"),
    import("@opentelemetry/core"),
    import("@opentelemetry/exporter-prometheus"),
    import("@opentelemetry/resources"),
  ]);

  let handler: MetricsHandler | undefined;
  let reader: InstanceType<typeof prometheus.PrometheusExporter> | undefined;
  if (params.metrics !== false) {
    const exporter = new prometheus.PrometheusExporter({ preventServerStart: true });
    const serializer = new prometheus.PrometheusSerializer();
    reader = exporter;
    handler = {
      contentType: PROMETHEUS_CONTENT_TYPE,
      collect: async () => {
        const { resourceMetrics, errors } = await exporter.collect();
        if (errors.length > 0) diag.warn("metrics collection errors", ...errors);
        return serializer.serialize(resourceMetrics);
      },
    };
  }

  // The detectors NodeSDK runs by default: OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME, the
  // process and the host; our service name and version win over all of them.
  const resource = resources
    .defaultResource()
    .merge(
      resources.detectResources({
        detectors: [resources.envDetector, resources.processDetector, resources.hostDetector],
      }),
    )
    .merge(
      resources.resourceFromAttributes({
        [ATTR_SERVICE_NAME]: params.serviceName,
        ...(params.serviceVersion === undefined
          ? {}
          : { [ATTR_SERVICE_VERSION]: params.serviceVersion }),
      }),
    );
  if (params.logger !== undefined) {
    diag.setLogger(diagLoggerFor(params.logger), {
      logLevel: DiagLogLevel.WARN,
      suppressOverrideMessage: true,
    });
  }
  const providers: Providers = {
    tracer:
      spanProcessors.length > 0
        ? new (await import("@opentelemetry/sdk-trace-node")).NodeTracerProvider({
            resource,
            spanProcessors,
          })
        : undefined,
    meter: new sdkMetrics.MeterProvider({
      resource,
      readers: reader === undefined ? [] : [reader],
    }),
  };
  const propagator = new W3CTraceContextPropagator();
  if (providers.tracer !== undefined) {
    // Also registers the AsyncLocalStorage context manager.
    providers.tracer.register({ propagator });
  } else {
    // Nothing exported: keep the API's non-recording tracer (spans cost nothing) but still
    // carry incoming trace context through, as NodeSDK did.
    const contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
    propagation.setGlobalPropagator(propagator);
  }
  metrics.setGlobalMeterProvider(providers.meter);

  let server: OpsServer | undefined;
  if (params.metrics !== undefined && params.metrics !== false && handler !== undefined) {
    try {
      server = await startOpsServer({
        host: params.metrics.host,
        port: params.metrics.port,
        isReady: () => true,
        metrics: handler,
        logger: params.logger ?? createNoopLogger(),
      });
    } catch (err) {
      await stopProviders(providers);
      throw err;
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    metrics: handler,
    metricsUrl: server === undefined ? undefined : `${server.url}/metrics`,
    shutdown: () => {
      stopping ??= (async () => {
        try {
          await server?.close();
        } finally {
          await stopProviders(providers);
        }
      })();
      return stopping;
    },
  };
}

interface Providers {
  /** Absent when no traces are exported. */
  readonly tracer: NodeTracerProvider | undefined;
  readonly meter: MeterProvider;
}

async function stopProviders(providers: Providers): Promise<void> {
  try {
    await Promise.all([providers.tracer?.shutdown(), providers.meter.shutdown()]);
  } finally {
    // Unregister so a later startTelemetry (tests, restarts) can register again.
    trace.disable();
    metrics.disable();
    propagation.disable();
    context.disable();
    diag.disable();
  }
}
