#!/usr/bin/env node
// A demo workload of the local mesh: a tiny HTTP server on a 127.0.0.1 app port that answers
// every request with a JSON line naming itself and what its sidecar told it about the caller.
// Usage: demo-app <name> <port>
import { X509Certificate } from "node:crypto";
import { createServer } from "node:http";

/** The body a demo workload answers with. */
export interface DemoAppReply {
  readonly workload: string;
  readonly method: string;
  readonly path: string;
  /** `X-Client-Verify` set by the inbound sidecar (`SUCCESS` for a verified mTLS peer). */
  readonly clientVerify: string | null;
  /** The caller's SPIFFE ID, from the certificate the sidecar passes in `X-Meshid-Client-Cert`. */
  readonly clientSpiffeId: string | null;
  /** Requests served so far, this one included. */
  readonly served: number;
}

function header(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

/** The first URI SAN of the URL-escaped PEM certificate NGINX passes (`$ssl_client_escaped_cert`). */
function spiffeIdOf(escapedPem: string | null): string | null {
  if (escapedPem === null || escapedPem === "") return null;
  try {
    const san = new X509Certificate(decodeURIComponent(escapedPem)).subjectAltName ?? "";
    const uri = san.split(", ").find((s) => s.startsWith("URI:"));
    return uri === undefined ? null : uri.slice("URI:".length);
  } catch {
    return null;
  }
}

if (require.main === module) {
  const [name, portText] = process.argv.slice(2);
  const port = Number(portText);
  if (name === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write("usage: demo-app <name> <port>\n");
    process.exit(2);
  }
  let served = 0;
  const server = createServer((req, res) => {
    served += 1;
    const reply: DemoAppReply = {
      workload: name,
      method: req.method ?? "GET",
      path: req.url ?? "/",
      clientVerify: header(req.headers["x-client-verify"]),
      clientSpiffeId: spiffeIdOf(header(req.headers["x-meshid-client-cert"])),
      served,
    };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(`${JSON.stringify(reply)}\n`);
  });
  server.listen({ host: "127.0.0.1", port }, () => {
    process.stdout.write(`${JSON.stringify({ msg: "demo app listening", name, port })}\n`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
