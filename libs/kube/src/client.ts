// A small Kubernetes REST client: JSON requests and watch streams over one keep-alive agent.
// It replaces @kubernetes/client-node in the services, which loads ≈ 2,500 generated model
// classes at import (≈ 55–65 MiB RSS per process, measured in docs/architecture.md "Memory")
// for the dozen calls meshid makes.
import http from "node:http";
import https from "node:https";
import { KubeApiError } from "./api-errors";
import {
  KubeConfigError,
  loadKubeConnection,
  type KubeConnection,
  type KubeConnectionSettings,
} from "./kube-config";
import type { KubeObject, KubeStatus } from "./types";

/** Default time limit of a request that is not a watch. */
export const KUBE_REQUEST_TIMEOUT_MS = 30_000;
/** Largest response body accepted (a list of every pod of a big cluster fits). */
export const KUBE_MAX_RESPONSE_BYTES = 256 * 2 ** 20;
/** Largest single watch event line accepted. */
export const KUBE_MAX_WATCH_LINE_BYTES = 16 * 2 ** 20;

/** Content types of PATCH. */
export const PATCH_TYPES = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
} as const;

/** Query parameters; undefined values are left out. */
export type KubeQuery = Readonly<Record<string, string | number | boolean | undefined>>;

/** One API request. */
export interface KubeRequest {
  readonly method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Absolute API path, e.g. `/api/v1/namespaces/meshid/configmaps/meshid-bundle`. */
  readonly path: string;
  readonly query?: KubeQuery;
  /** JSON body (POST, PUT, PATCH). */
  readonly body?: unknown;
  /** Default `application/json`; for PATCH, one of {@link PATCH_TYPES} (default merge). */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** Default {@link KUBE_REQUEST_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/** One event of a watch stream. */
export interface KubeWatchEvent<T extends KubeObject = KubeObject> {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
  readonly object: T;
}

/** A watch: the collection path plus list options. */
export interface KubeWatchRequest {
  readonly path: string;
  readonly query?: KubeQuery;
  readonly signal?: AbortSignal;
  /**
   * A watch that receives nothing for this long is treated as a dead connection and fails.
   * Default: the `timeoutSeconds` asked of the server (else 10 minutes) plus 30 s.
   */
  readonly idleTimeoutMs?: number;
}

/** The client. */
export interface KubeClient {
  /** The API server, e.g. `https://10.96.0.1:443`. */
  readonly server: string;
  /** The context's (or service account's) namespace, if known. */
  readonly namespace?: string;
  /**
   * Sends one request and returns the parsed JSON body (undefined when empty).
   *
   * @throws KubeApiError for a non-2xx answer (code, reason and message of the Status);
   *   network errors and timeouts as they come; the signal's reason when aborted.
   */
  request<T = unknown>(req: KubeRequest): Promise<T>;
  /**
   * Opens a watch (`?watch=true`) and calls `onEvent` for each event until the server ends the
   * stream (resolves) or the signal aborts it (resolves). An ERROR event (e.g. 410 Expired)
   * rejects with a KubeApiError carrying its Status.
   */
  watch<T extends KubeObject = KubeObject>(
    req: KubeWatchRequest,
    onEvent: (event: KubeWatchEvent<T>) => void,
  ): Promise<void>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

function statusOf(body: string, code: number, fallback: string): KubeStatus {
  try {
    const parsed = JSON.parse(body) as KubeStatus;
    if (parsed !== null && typeof parsed === "object" && parsed.kind === "Status") return parsed;
  } catch {
    // Not a Status: a proxy's page or an empty body.
  }
  return { kind: "Status", status: "Failure", code, message: body.trim() || fallback };
}

function withQuery(path: string, query: KubeQuery | undefined): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs === "" ? path : `${path}${path.includes("?") ? "&" : "?"}${qs}`;
}

/**
 * Creates a client for a connection (or the settings to load one with
 * {@link loadKubeConnection}).
 *
 * @throws KubeConfigError when the settings cannot be used.
 */
export function createKubeClient(
  source: KubeConnectionSettings | KubeConnection,
  options: { readonly userAgent?: string } = {},
): KubeClient {
  const conn = "server" in source ? source : loadKubeConnection(source);
  let base: URL;
  try {
    base = new URL(conn.server);
  } catch {
    throw new KubeConfigError(`the API server URL "${conn.server}" is not a URL`);
  }
  const secure = base.protocol === "https:";
  if (!secure && base.protocol !== "http:") {
    throw new KubeConfigError(
      `unsupported API server URL ${conn.server} (use https:// or http://)`,
    );
  }
  const agent = secure
    ? new https.Agent({
        keepAlive: true,
        ca: conn.ca,
        cert: conn.clientCert,
        key: conn.clientKey,
        rejectUnauthorized: !conn.insecureSkipTlsVerify,
        servername: conn.tlsServerName,
      })
    : new http.Agent({ keepAlive: true });
  const basePath = base.pathname.replace(/\/+$/, "");
  const userAgent = options.userAgent ?? "meshid";

  const open = async (
    method: string,
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<http.ClientRequest> => {
    const token = await conn.token();
    const auth =
      token !== undefined
        ? { authorization: `Bearer ${token}` }
        : conn.basicAuth !== undefined
          ? { authorization: `Basic ${conn.basicAuth}` }
          : {};
    return (secure ? https : http).request({
      protocol: base.protocol,
      hostname: base.hostname.replace(/^\[|\]$/g, ""),
      port: base.port === "" ? (secure ? 443 : 80) : Number(base.port),
      path: `${basePath}${path}`,
      method,
      agent,
      signal,
      headers: { accept: "application/json", "user-agent": userAgent, ...auth, ...headers },
    });
  };

  return {
    server: conn.server,
    namespace: conn.namespace,

    async request<T>(req: KubeRequest): Promise<T> {
      const method = req.method ?? "GET";
      const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
      const contentType =
        req.contentType ?? (method === "PATCH" ? PATCH_TYPES.merge : "application/json");
      const r = await open(
        method,
        withQuery(req.path, req.query),
        payload === undefined
          ? {}
          : { "content-type": contentType, "content-length": String(payload.length) },
        req.signal,
      );
      return new Promise<T>((resolve, reject) => {
        r.setTimeout(req.timeoutMs ?? KUBE_REQUEST_TIMEOUT_MS, () =>
          r.destroy(new Error(`${method} ${req.path}: no answer from the API server in time`)),
        );
        r.on("error", reject);
        r.on("response", (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > KUBE_MAX_RESPONSE_BYTES) {
              res.destroy(new Error(`${method} ${req.path}: response larger than allowed`));
              return;
            }
            chunks.push(chunk);
          });
          res.on("error", reject);
          res.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            const code = res.statusCode ?? 0;
            if (code < 200 || code >= 300) {
              reject(new KubeApiError(code, statusOf(body, code, res.statusMessage ?? "")));
              return;
            }
            try {
              resolve((body === "" ? undefined : JSON.parse(body)) as T);
            } catch (err) {
              reject(new Error(`${method} ${req.path}: invalid JSON: ${(err as Error).message}`));
            }
          });
        });
        r.end(payload);
      });
    },

    async watch<T extends KubeObject>(
      req: KubeWatchRequest,
      onEvent: (event: KubeWatchEvent<T>) => void,
    ): Promise<void> {
      if (req.signal?.aborted === true) return;
      const r = await open(
        "GET",
        withQuery(req.path, { ...req.query, watch: true }),
        {},
        req.signal,
      );
      await new Promise<void>((resolve, reject) => {
        let settled = false;
        const finish = (err?: unknown): void => {
          if (settled) return;
          settled = true;
          if (err === undefined || req.signal?.aborted === true) resolve();
          else reject(err instanceof Error ? err : new Error("watch failed", { cause: err }));
          r.destroy();
        };
        r.on("error", finish);
        const serverTimeoutS = Number(req.query?.timeoutSeconds ?? 600);
        r.setTimeout(req.idleTimeoutMs ?? serverTimeoutS * 1000 + 30_000, () =>
          finish(new Error(`watch ${req.path}: no data from the API server in time`)),
        );
        r.on("response", (res) => {
          const code = res.statusCode ?? 0;
          if (code !== 200) {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              const body = Buffer.concat(chunks).toString("utf8");
              finish(new KubeApiError(code, statusOf(body, code, res.statusMessage ?? "")));
            });
            res.on("error", finish);
            return;
          }
          let pending = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            pending += chunk;
            let newline: number;
            while (!settled && (newline = pending.indexOf("\n")) >= 0) {
              const line = pending.slice(0, newline).trim();
              pending = pending.slice(newline + 1);
              if (line === "") continue;
              let event: { type?: string; object?: unknown };
              try {
                event = JSON.parse(line) as { type?: string; object?: unknown };
              } catch (err) {
                finish(new Error(`watch ${req.path}: invalid event: ${(err as Error).message}`));
                return;
              }
              if (event.type === "ERROR") {
                const status = (event.object ?? {}) as KubeStatus;
                finish(new KubeApiError(status.code ?? 500, status));
                return;
              }
              if (
                event.type === "ADDED" ||
                event.type === "MODIFIED" ||
                event.type === "DELETED" ||
                event.type === "BOOKMARK"
              ) {
                try {
                  onEvent({ type: event.type, object: event.object as T });
                } catch (err) {
                  finish(err);
                  return;
                }
              }
            }
            if (pending.length > KUBE_MAX_WATCH_LINE_BYTES) {
              finish(new Error(`watch ${req.path}: event larger than allowed`));
            }
          });
          res.on("end", () => finish());
          res.on("error", finish);
          res.on("close", () => finish());
        });
        r.end();
      });
    },

    close() {
      agent.destroy();
    },
  };
}
