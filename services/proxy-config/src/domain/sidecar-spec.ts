// What a sidecar asks proxy-config to render: ports, routes and its file layout, validated so
// that nothing a caller sends can inject NGINX directives. Pure.
import { MeshidError } from "@meshid/errors";
import { tryParseSpiffeId } from "@meshid/spiffe";

/** Application protocol of a port: HTTP (nginx `http` servers) or plain TCP (`stream`). */
export type AppProtocol = "http" | "tcp";

/** Traffic arriving at the sidecar on `listenPort`, forwarded to 127.0.0.1:`appPort`. */
export interface InboundPortSpec {
  readonly name: string;
  readonly listenPort: number;
  readonly appPort: number;
  readonly protocol: AppProtocol;
}

/**
 * The application connects to 127.0.0.1:`listenPort`; the sidecar connects on to
 * `destinationHost:destinationPort`, with mTLS when `serverSpiffeId` is set (the destination is
 * in the mesh), in plaintext otherwise.
 */
export interface OutboundRouteSpec {
  readonly name: string;
  readonly listenPort: number;
  readonly destinationHost: string;
  readonly destinationPort: number;
  readonly protocol: AppProtocol;
  /** SPIFFE ID the destination must present; undefined = not in the mesh (plaintext). */
  readonly serverSpiffeId?: string;
  /** Name sent in SNI and checked against the server certificate (default destinationHost). */
  readonly serverName?: string;
}

/** Where the sidecar keeps its files; the rendering refers only to these paths. */
export interface SidecarLayoutSpec {
  /** Directory holding `svid.pem` (leaf + intermediates), `svid.key` and `bundle.pem`. */
  readonly svidDir: string;
  /** NGINX prefix (`-p`) holding `logs/`, `tmp/`, the pid file and internal sockets. */
  readonly nginxPrefix: string;
  /** ngx_stream_module.so to load; undefined = `stream` is compiled into nginx. */
  readonly streamModulePath?: string;
  /** `user` directive (only when nginx starts as root); undefined = none. */
  readonly nginxUser?: string;
}

/** Error code of an unusable sidecar request. */
export const SIDECAR_REQUEST_INVALID_CODE = "proxy_config.request.invalid";

/** Longest path accepted in a layout (Unix socket paths inside the prefix must fit 108 bytes). */
export const MAX_PREFIX_PATH_LENGTH = 80;

// Only characters that need no quoting in nginx.conf and cannot end a directive.
const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
const PORT_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})?$/;
const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function checkPath(field: string, path: string, problems: string[], maxLength?: number): void {
  if (!SAFE_PATH.test(path) || path.split("/").includes("..")) {
    problems.push(
      `${field}: must be an absolute path of letters, digits and . _ / - (got ${JSON.stringify(path)})`,
    );
  } else if (maxLength !== undefined && path.length > maxLength) {
    problems.push(`${field}: must be at most ${maxLength} characters long`);
  }
}

/** Parameters of {@link validateSidecarSpec}. */
export interface SidecarSpec {
  readonly inbound: readonly InboundPortSpec[];
  readonly outbound: readonly OutboundRouteSpec[];
  readonly layout: SidecarLayoutSpec;
}

/**
 * Checks every port, route and path of a sidecar request: ports 1–65535, listen ports unique,
 * names `[A-Za-z0-9._-]`, hosts DNS names or IPv4 addresses, SPIFFE IDs valid, paths absolute
 * and free of characters NGINX would interpret.
 * @throws MeshidError `invalid_argument` `proxy_config.request.invalid` naming every problem.
 */
export function validateSidecarSpec(spec: SidecarSpec): void {
  const problems: string[] = [];
  const listenPorts = new Map<number, string>();
  const claim = (field: string, port: number): void => {
    if (!isPort(port)) {
      problems.push(`${field}: must be a port between 1 and 65535 (got ${port})`);
      return;
    }
    const other = listenPorts.get(port);
    if (other !== undefined) problems.push(`${field}: port ${port} is already used by ${other}`);
    else listenPorts.set(port, field);
  };
  spec.inbound.forEach((p, i) => {
    const field = `inbound[${i}]`;
    if (p.name !== "" && !PORT_NAME.test(p.name)) {
      problems.push(
        `${field}.name: must be letters, digits and . _ - (got ${JSON.stringify(p.name)})`,
      );
    }
    claim(`${field}.listenPort`, p.listenPort);
    if (!isPort(p.appPort)) {
      problems.push(`${field}.appPort: must be a port between 1 and 65535 (got ${p.appPort})`);
    }
  });
  spec.outbound.forEach((r, i) => {
    const field = `outbound[${i}]`;
    if (r.name !== "" && !PORT_NAME.test(r.name)) {
      problems.push(
        `${field}.name: must be letters, digits and . _ - (got ${JSON.stringify(r.name)})`,
      );
    }
    claim(`${field}.listenPort`, r.listenPort);
    if (!DNS_NAME.test(r.destinationHost) && !IPV4.test(r.destinationHost)) {
      problems.push(
        `${field}.destinationHost: must be a DNS name or an IPv4 address (got ${JSON.stringify(r.destinationHost)})`,
      );
    }
    if (!isPort(r.destinationPort)) {
      problems.push(
        `${field}.destinationPort: must be a port between 1 and 65535 (got ${r.destinationPort})`,
      );
    }
    if (r.serverSpiffeId !== undefined && !tryParseSpiffeId(r.serverSpiffeId).ok) {
      problems.push(
        `${field}.serverSpiffeId: must be a SPIFFE ID (got ${JSON.stringify(r.serverSpiffeId)})`,
      );
    }
    if (r.serverName !== undefined && !DNS_NAME.test(r.serverName)) {
      problems.push(
        `${field}.serverName: must be a DNS name (got ${JSON.stringify(r.serverName)})`,
      );
    }
  });
  checkPath("layout.svidDir", spec.layout.svidDir, problems);
  checkPath("layout.nginxPrefix", spec.layout.nginxPrefix, problems, MAX_PREFIX_PATH_LENGTH);
  if (spec.layout.streamModulePath !== undefined) {
    checkPath("layout.streamModulePath", spec.layout.streamModulePath, problems);
  }
  if (spec.layout.nginxUser !== undefined && !USER_NAME.test(spec.layout.nginxUser)) {
    problems.push(
      `layout.nginxUser: must be a user name (got ${JSON.stringify(spec.layout.nginxUser)})`,
    );
  }
  if (problems.length > 0) {
    throw new MeshidError("invalid_argument", SIDECAR_REQUEST_INVALID_CODE, problems.join("; "));
  }
}
