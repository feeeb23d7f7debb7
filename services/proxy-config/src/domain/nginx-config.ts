// The NGINX (OSS ≥ 1.22) sidecar configuration: a pure function of the effective mode, the
// ports and the file layout. docs: services/proxy-config/README.md "Rendering".
import type { MtlsMode } from "./mesh-config";
import type {
  InboundPortSpec,
  OutboundRouteSpec,
  SidecarLayoutSpec,
  SidecarSpec,
} from "./sidecar-spec";

/** File name of the SVID chain (leaf + intermediates) in `svidDir`. */
export const SVID_CERT_FILE = "svid.pem";
/** File name of the SVID private key in `svidDir`. */
export const SVID_KEY_FILE = "svid.key";
/** File name of the trust bundle (our trust domain's roots only) in `svidDir`. */
export const BUNDLE_FILE = "bundle.pem";
/**
 * Depth of certificate chains accepted from peers (leaf + up to 3 intermediates above it); nginx's
 * default of 1 would refuse SVIDs signed by an intermediate.
 */
export const VERIFY_DEPTH = 4;
/** Worker connections of the rendered `events` block. */
export const WORKER_CONNECTIONS = 1024;
/** How long the permissive front waits for a client's first bytes to tell TLS from plaintext. */
export const PREREAD_TIMEOUT = "5s";

/** Parameters of {@link renderNginxConfig}. */
export interface RenderNginxConfigParams extends SidecarSpec {
  /** The pod's effective mode (applies to inbound traffic). */
  readonly mode: MtlsMode;
}

/** Paths of the files a rendering refers to. */
export interface SidecarPaths {
  readonly svidCert: string;
  readonly svidKey: string;
  readonly bundle: string;
  readonly pid: string;
  readonly errorLog: string;
  readonly accessLog: string;
  readonly streamAccessLog: string;
  readonly tempDir: string;
}

function join(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, "")}/${name}`;
}

/** The file paths a rendering for `layout` uses. */
export function sidecarPaths(layout: SidecarLayoutSpec): SidecarPaths {
  return {
    svidCert: join(layout.svidDir, SVID_CERT_FILE),
    svidKey: join(layout.svidDir, SVID_KEY_FILE),
    bundle: join(layout.svidDir, BUNDLE_FILE),
    pid: join(layout.nginxPrefix, "nginx.pid"),
    errorLog: join(layout.nginxPrefix, "logs/error.log"),
    accessLog: join(layout.nginxPrefix, "logs/access.log"),
    streamAccessLog: join(layout.nginxPrefix, "logs/stream-access.log"),
    tempDir: join(layout.nginxPrefix, "tmp"),
  };
}

/** Path of an internal listener socket of the permissive front, inside the prefix. */
export function internalSocketPath(
  layout: SidecarLayoutSpec,
  listenPort: number,
  kind: "tls" | "plain",
): string {
  return join(layout.nginxPrefix, `meshid-${listenPort}-${kind}.sock`);
}

/** Indents every non-empty line of `lines` by `depth` levels of two spaces. */
function indent(lines: readonly string[], depth = 1): string[] {
  const pad = "  ".repeat(depth);
  return lines.map((l) => (l === "" ? l : `${pad}${l}`));
}

function block(header: string, body: readonly string[]): string[] {
  return [`${header} {`, ...indent(body), "}"];
}

function label(port: { readonly name: string }, fallback: string): string {
  return port.name === "" ? fallback : port.name;
}

/** Server-side TLS with client verification against the bundle (http and stream alike). */
function verifyingTls(paths: SidecarPaths): string[] {
  return [
    `ssl_certificate ${paths.svidCert};`,
    `ssl_certificate_key ${paths.svidKey};`,
    "ssl_protocols TLSv1.2 TLSv1.3;",
    // The bundle holds only our trust domain's roots, so a verified chain is the trust-domain
    // check (NGINX OSS cannot match the URI SAN itself).
    `ssl_client_certificate ${paths.bundle};`,
    "ssl_verify_client on;",
    `ssl_verify_depth ${VERIFY_DEPTH};`,
  ];
}

/** The `location /` of an inbound HTTP server: forwards to the app with client facts. */
function inboundHttpLocation(port: InboundPortSpec, tls: boolean): string[] {
  return block("location /", [
    `proxy_pass http://127.0.0.1:${port.appPort};`,
    "proxy_http_version 1.1;",
    'proxy_set_header Connection "";',
    "proxy_set_header Host $host;",
    "proxy_set_header X-Real-IP $remote_addr;",
    "proxy_set_header X-Forwarded-For $remote_addr;",
    `proxy_set_header X-Forwarded-Proto ${tls ? "https" : "http"};`,
    // The verified client certificate (URL-encoded PEM) lets the app read the caller's SPIFFE
    // ID; always set so a client cannot supply its own.
    `proxy_set_header X-Meshid-Client-Cert ${tls ? "$ssl_client_escaped_cert" : '""'};`,
  ]);
}

interface Rendered {
  readonly http: string[];
  readonly stream: string[];
  /** Stream `map` blocks (they must sit at the stream block's top level). */
  readonly streamMaps: string[];
}

const REAL_IP_FROM_FRONT = ["set_real_ip_from unix:;", "real_ip_header proxy_protocol;"];

function renderInbound(
  mode: MtlsMode,
  port: InboundPortSpec,
  layout: SidecarLayoutSpec,
  paths: SidecarPaths,
  out: Rendered,
): void {
  const name = label(port, `port-${port.listenPort}`);
  const comment = `# inbound ${name}: :${port.listenPort} -> 127.0.0.1:${port.appPort} (${port.protocol}, ${mode})`;
  const target = out[port.protocol === "http" ? "http" : "stream"];
  const app = `proxy_pass 127.0.0.1:${port.appPort};`;
  if (mode === "off") {
    target.push(
      comment,
      ...(port.protocol === "http"
        ? block("server", [`listen ${port.listenPort};`, ...inboundHttpLocation(port, false)])
        : block("server", [`listen ${port.listenPort};`, app])),
    );
    return;
  }
  if (mode === "strict") {
    target.push(
      comment,
      ...(port.protocol === "http"
        ? block("server", [
            `listen ${port.listenPort} ssl;`,
            ...verifyingTls(paths),
            ...inboundHttpLocation(port, true),
          ])
        : block("server", [`listen ${port.listenPort} ssl;`, ...verifyingTls(paths), app])),
    );
    return;
  }
  // Permissive: a stream front peeks at the first bytes (ssl_preread) and hands TLS to a
  // verifying listener and plaintext to a plaintext one, both on Unix sockets in the prefix
  // (unreachable from the network and from other local users). PROXY protocol carries the
  // client address across the hop.
  const tlsSocket = internalSocketPath(layout, port.listenPort, "tls");
  const plainSocket = internalSocketPath(layout, port.listenPort, "plain");
  const variable = `$meshid_inbound_${port.listenPort}`;
  out.streamMaps.push(
    ...block(`map $ssl_preread_protocol ${variable}`, [
      `"" "unix:${plainSocket}";`,
      `default "unix:${tlsSocket}";`,
    ]),
  );
  out.stream.push(
    `${comment}: front`,
    ...block("server", [
      `listen ${port.listenPort};`,
      "ssl_preread on;",
      `preread_timeout ${PREREAD_TIMEOUT};`,
      `proxy_pass ${variable};`,
      "proxy_protocol on;",
    ]),
  );
  target.push(
    `${comment}: mTLS`,
    ...block("server", [
      `listen unix:${tlsSocket} ssl proxy_protocol;`,
      ...(port.protocol === "http" ? REAL_IP_FROM_FRONT : ["set_real_ip_from unix:;"]),
      ...verifyingTls(paths),
      ...(port.protocol === "http" ? inboundHttpLocation(port, true) : [app]),
    ]),
    `${comment}: plaintext`,
    ...block("server", [
      `listen unix:${plainSocket} proxy_protocol;`,
      ...(port.protocol === "http" ? REAL_IP_FROM_FRONT : ["set_real_ip_from unix:;"]),
      ...(port.protocol === "http" ? inboundHttpLocation(port, false) : [app]),
    ]),
  );
}

/** Client-side mTLS towards a mesh destination (`proxy_ssl_*` in http and stream alike). */
function originatingTls(route: OutboundRouteSpec, paths: SidecarPaths): string[] {
  return [
    `proxy_ssl_certificate ${paths.svidCert};`,
    `proxy_ssl_certificate_key ${paths.svidKey};`,
    `proxy_ssl_trusted_certificate ${paths.bundle};`,
    "proxy_ssl_protocols TLSv1.2 TLSv1.3;",
    "proxy_ssl_verify on;",
    `proxy_ssl_verify_depth ${VERIFY_DEPTH};`,
    "proxy_ssl_server_name on;",
    `proxy_ssl_name ${route.serverName ?? route.destinationHost};`,
  ];
}

function renderOutbound(route: OutboundRouteSpec, paths: SidecarPaths, out: Rendered): void {
  const mesh = route.serverSpiffeId !== undefined;
  const name = label(route, `route-${route.listenPort}`);
  const destination = `${route.destinationHost}:${route.destinationPort}`;
  const comment =
    `# outbound ${name}: 127.0.0.1:${route.listenPort} -> ${destination} (${route.protocol}, ` +
    `${mesh ? `mTLS to ${route.serverSpiffeId ?? ""}` : "plaintext, not in the mesh"})`;
  const listen = `listen 127.0.0.1:${route.listenPort};`;
  if (route.protocol === "http") {
    out.http.push(
      comment,
      ...block("server", [
        listen,
        ...block("location /", [
          `proxy_pass ${mesh ? "https" : "http"}://${destination};`,
          "proxy_http_version 1.1;",
          'proxy_set_header Connection "";',
          "proxy_set_header Host $host;",
          ...(mesh ? originatingTls(route, paths) : []),
        ]),
      ]),
    );
    return;
  }
  out.stream.push(
    comment,
    ...block("server", [
      listen,
      `proxy_pass ${destination};`,
      ...(mesh ? ["proxy_ssl on;", ...originatingTls(route, paths)] : []),
    ]),
  );
}

/**
 * Renders the whole nginx.conf for `nginx -p <nginxPrefix> -c <file>`: the main context (pid,
 * error log, optional `load_module` of the stream module and `user`), an `http` block (always:
 * it holds the temp paths) and a `stream` block when a TCP port or the permissive front needs
 * one. Inbound per mode — strict: TLS with `ssl_verify_client on` against the bundle;
 * permissive: an `ssl_preread` front sending TLS to a verifying listener and plaintext to a
 * plaintext one, the client address kept with PROXY protocol; off: plaintext only. Outbound:
 * mTLS with the pod's SVID, the server chain verified against the bundle and its name against
 * `serverName` (default the destination host) when the destination is in the mesh; plaintext
 * otherwise. The caller validates the input with `validateSidecarSpec` first.
 */
export function renderNginxConfig(params: RenderNginxConfigParams): string {
  const { layout } = params;
  const paths = sidecarPaths(layout);
  const out: Rendered = { http: [], stream: [], streamMaps: [] };
  for (const port of params.inbound) renderInbound(params.mode, port, layout, paths, out);
  for (const route of params.outbound) renderOutbound(route, paths, out);
  const needsStream = out.stream.length > 0;

  const lines: string[] = [
    `# Rendered by meshid proxy-config (inbound mode: ${params.mode}). Do not edit: the sidecar`,
    "# replaces this file on every change.",
  ];
  if (needsStream && layout.streamModulePath !== undefined) {
    lines.push(`load_module ${layout.streamModulePath};`);
  }
  if (layout.nginxUser !== undefined) lines.push(`user ${layout.nginxUser};`);
  lines.push(
    "worker_processes 1;",
    `pid ${paths.pid};`,
    `error_log ${paths.errorLog} notice;`,
    "",
    ...block("events", [`worker_connections ${WORKER_CONNECTIONS};`]),
    "",
    ...block("http", [
      `access_log ${paths.accessLog};`,
      `client_body_temp_path ${paths.tempDir}/client_body;`,
      `proxy_temp_path ${paths.tempDir}/proxy;`,
      `fastcgi_temp_path ${paths.tempDir}/fastcgi;`,
      `uwsgi_temp_path ${paths.tempDir}/uwsgi;`,
      `scgi_temp_path ${paths.tempDir}/scgi;`,
      "server_tokens off;",
      ...out.http,
    ]),
  );
  if (needsStream) {
    lines.push(
      "",
      ...block("stream", [
        "log_format meshid_stream '$remote_addr:$remote_port -> $server_addr:$server_port " +
          "$protocol $status $bytes_sent $bytes_received $session_time';",
        `access_log ${paths.streamAccessLog} meshid_stream;`,
        ...out.streamMaps,
        ...out.stream,
      ]),
    );
  }
  return `${lines.join("\n")}\n`;
}
