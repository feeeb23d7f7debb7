import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { V1Pod } from "@kubernetes/client-node";
import type { StandInTlsOptions } from "./tls";

/** Options for {@link startKubeletStandIn}. */
export interface KubeletStandInOptions {
  /** Pods served initially. Default none. */
  readonly pods?: readonly V1Pod[];
  /** When set, `GET /pods` requires `Authorization: Bearer <token>` (401 otherwise). */
  readonly bearerToken?: string;
  /** Serve HTTPS (like the kubelet's port 10250) with this certificate instead of plain http. */
  readonly tls?: StandInTlsOptions;
}

/** A running kubelet `/pods` stand-in. */
export interface KubeletStandIn {
  /** `http://127.0.0.1:<port>` (`https://` with the `tls` option). */
  readonly url: string;
  readonly port: number;
  /** Replaces the pods served by `GET /pods`. */
  setPods(pods: readonly V1Pod[]): void;
  /** Number of `GET /pods` requests answered so far. */
  requestCount(): number;
  stop(): Promise<void>;
}

/**
 * Starts a kubelet stand-in on `127.0.0.1:0` serving `GET /pods` as a `PodList` the way the
 * kubelet's read-only / authenticated port does (plain http), plus `GET /healthz`. Anything else
 * is 404; a missing or wrong bearer token is 401 when `bearerToken` is set.
 */
export async function startKubeletStandIn(
  options: KubeletStandInOptions = {},
): Promise<KubeletStandIn> {
  let pods: V1Pod[] = structuredClone([...(options.pods ?? [])]);
  let count = 0;
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname.replace(/\/+$/, "");
    if (path === "/healthz") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("ok");
      return;
    }
    if (options.bearerToken !== undefined) {
      if (req.headers.authorization !== `Bearer ${options.bearerToken}`) {
        res.writeHead(401, { "Content-Type": "text/plain" });
        res.end("Unauthorized");
        return;
      }
    }
    if (req.method !== "GET" || path !== "/pods") {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("404 page not found");
      return;
    }
    count++;
    const body = JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: {}, items: pods });
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(body),
    });
    res.end(body);
  };
  const server = options.tls
    ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, listener)
    : createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    setPods(next) {
      pods = structuredClone([...next]);
    },
    requestCount: () => count,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
