import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { isIP, type AddressInfo } from "node:net";
import { LogKeys } from "./log-keys";
import type { Logger } from "./logger";

/** Source of the Prometheus text served at `/metrics` (what `startTelemetry` returns as `metrics`). */
export interface MetricsHandler {
  /** Content type of {@link MetricsHandler.collect}'s text. */
  readonly contentType: string;
  /** Collects all metrics now and returns them in the Prometheus text format. */
  collect(): Promise<string>;
}

/**
 * What `/healthz` reports. `degraded` still answers 200 (the process is alive and serving, so a
 * liveness probe must not restart it) with the reasons in the body, for people and monitors.
 */
export interface HealthReport {
  readonly status: "ok" | "degraded";
  /** Short reasons, e.g. `config_rejected`; only meaningful when degraded. */
  readonly reasons?: readonly string[];
}

/** Parameters of {@link startOpsServer}. */
export interface StartOpsServerParams {
  /** Address to listen on, e.g. `0.0.0.0` or `127.0.0.1`. */
  host: string;
  /** TCP port; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Decides `/readyz`: true → 200, false or a throw → 503. */
  isReady: () => boolean | Promise<boolean>;
  /** Decides the body of `/healthz`; without it (or when it throws) the answer is `ok`. */
  health?: () => HealthReport;
  /** Serves `/metrics` when given; otherwise `/metrics` is 404. */
  metrics?: MetricsHandler;
  /** Logs failures of readiness checks and metric collection. */
  logger: Logger;
  /** Closes the server when aborted (same as `close()`). */
  signal?: AbortSignal;
}

/** A running ops server. */
export interface OpsServer {
  /** Base URL, e.g. `http://127.0.0.1:9090`. */
  readonly url: string;
  /** The port actually bound. */
  readonly port: number;
  /** Stops listening and closes open connections. Safe to call twice. */
  close(): Promise<void>;
}

function send(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = "text/plain; charset=utf-8",
): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(body);
}

function healthBody(params: StartOpsServerParams, logger: Logger): string {
  let report: HealthReport = { status: "ok" };
  try {
    report = params.health?.() ?? report;
  } catch (err) {
    logger.warn({ [LogKeys.err]: err }, "health check failed");
  }
  if (report.status === "ok") return "ok\n";
  const reasons = report.reasons ?? [];
  return reasons.length === 0 ? "degraded\n" : `degraded: ${reasons.join(", ")}\n`;
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  params: StartOpsServerParams,
  logger: Logger,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    send(res, 405, "method not allowed\n");
    return;
  }
  switch (path) {
    case "/healthz":
      send(res, 200, healthBody(params, logger));
      return;
    case "/readyz": {
      let ready = false;
      try {
        ready = await params.isReady();
      } catch (err) {
        logger.warn({ [LogKeys.err]: err }, "readiness check failed");
      }
      send(res, ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
      return;
    }
    case "/metrics": {
      if (params.metrics === undefined) break;
      try {
        send(res, 200, await params.metrics.collect(), params.metrics.contentType);
      } catch (err) {
        logger.error({ [LogKeys.err]: err }, "metrics collection failed");
        send(res, 500, "metrics collection failed\n");
      }
      return;
    }
    default:
      break;
  }
  send(res, 404, "not found\n");
}

/**
 * Starts the operations HTTP server: `/healthz` (200 while the process lives: "ok", or
 * "degraded: <reasons>" when `health()` says so),
 * `/readyz` (200 when `isReady()` is true, else 503) and `/metrics` (Prometheus text from
 * `metrics`). Only GET and HEAD are allowed.
 *
 * @throws the listen error (e.g. EADDRINUSE) if the port cannot be bound.
 */
export async function startOpsServer(params: StartOpsServerParams): Promise<OpsServer> {
  const logger = params.logger.child({ [LogKeys.component]: "ops-server" });
  const server = createServer((req, res) => {
    handle(req, res, params, logger).catch((err: unknown) => {
      logger.error({ [LogKeys.err]: err }, "ops request failed");
      if (!res.headersSent) send(res, 500, "internal error\n");
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: params.host, port: params.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => logger.error({ [LogKeys.err]: err }, "ops server error"));
  const { port } = server.address() as AddressInfo;
  const host = isIP(params.host) === 6 ? `[${params.host}]` : params.host;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    params.signal?.removeEventListener("abort", onAbort);
    closing ??= new Promise<void>((resolve, reject) => {
      server.close((err) => (err === undefined ? resolve() : reject(err)));
      server.closeAllConnections();
    });
    return closing;
  };
  function onAbort(): void {
    close().catch((err: unknown) => logger.warn({ [LogKeys.err]: err }, "ops server close failed"));
  }
  if (params.signal?.aborted === true) onAbort();
  else params.signal?.addEventListener("abort", onAbort, { once: true });
  return { url: `http://${host}:${port}`, port, close };
}
