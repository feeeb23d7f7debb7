// Where a service finds its Kubernetes API server and how it proves who it is: the pod's
// in-cluster service account, or a kubeconfig (current context; token, token file or client
// certificate). Exec plugins and auth providers are refused with a clear error: services run
// in-cluster, and a kubeconfig for a service is written for it.
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";

/** Where the in-cluster service account is mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** How long a token read from a file is used before the file is read again (it rotates). */
export const TOKEN_FILE_REFRESH_MS = 60_000;

/** How to reach the API server. */
export interface KubeConnectionSettings {
  /** A kubeconfig file; when neither this nor `kubeconfigYaml` is set, the in-cluster account. */
  readonly kubeconfigFile?: string;
  /** A kubeconfig's text (tests, tools). */
  readonly kubeconfigYaml?: string;
}

/** A resolved connection: the API server, TLS material and credentials. */
export interface KubeConnection {
  /** e.g. `https://10.96.0.1:443`, without a trailing slash. */
  readonly server: string;
  readonly ca?: Buffer;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName?: string;
  readonly clientCert?: Buffer;
  readonly clientKey?: Buffer;
  /** The current bearer token, if any (re-read from its file as it rotates). */
  readonly token: () => Promise<string | undefined>;
  /** Basic auth, if the kubeconfig has it. */
  readonly basicAuth?: string;
  /** The context's (or the service account's) namespace. */
  readonly namespace?: string;
}

/** Where {@link loadKubeConnection} looks; tests point these elsewhere. */
export interface KubeConnectionEnvironment {
  /** Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Default {@link SERVICE_ACCOUNT_DIR}. */
  readonly serviceAccountDir?: string;
  /** Clock of the token-file cache; default `Date.now`. */
  readonly now?: () => number;
}

/** A kubeconfig or in-cluster setup this package cannot use. */
export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
}

type Yaml = Record<string, unknown>;

function obj(value: unknown): Yaml {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Yaml)
    : {};
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function named(list: unknown, name: string, what: string, source: string): Yaml {
  const found = (Array.isArray(list) ? list : []).map(obj).find((e) => e.name === name);
  if (found === undefined) throw new KubeConfigError(`${source}: no ${what} named "${name}"`);
  return obj(found[what]);
}

/** A token that comes from a file, cached for {@link TOKEN_FILE_REFRESH_MS}. */
function tokenFromFile(path: string, now: () => number): () => Promise<string> {
  let cached: { token: string; readAt: number } | undefined;
  return async () => {
    if (cached === undefined || now() - cached.readAt >= TOKEN_FILE_REFRESH_MS) {
      cached = { token: (await readFile(path, "utf8")).trim(), readAt: now() };
    }
    return cached.token;
  };
}

function fromKubeconfig(
  text: string,
  source: string,
  baseDir: string,
  now: () => number,
): KubeConnection {
  let doc: Yaml;
  try {
    doc = obj(parseYaml(text));
  } catch (err) {
    throw new KubeConfigError(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  const contextName = str(doc["current-context"]);
  if (contextName === undefined) throw new KubeConfigError(`${source}: no current-context`);
  const context = named(doc.contexts, contextName, "context", source);
  const clusterName = str(context.cluster);
  if (clusterName === undefined) {
    throw new KubeConfigError(`${source}: context "${contextName}" names no cluster`);
  }
  const cluster = named(doc.clusters, clusterName, "cluster", source);
  const userName = str(context.user);
  const user = userName === undefined ? {} : named(doc.users, userName, "user", source);

  const file = (path: string): Buffer => {
    const resolved = isAbsolute(path) ? path : join(baseDir, path);
    try {
      return readFileSync(resolved);
    } catch (err) {
      throw new KubeConfigError(`${source}: cannot read ${resolved}: ${(err as Error).message}`);
    }
  };
  const material = (dataKey: string, fileKey: string, from: Yaml): Buffer | undefined => {
    const data = str(from[dataKey]);
    if (data !== undefined) return Buffer.from(data, "base64");
    const path = str(from[fileKey]);
    return path === undefined ? undefined : file(path);
  };

  const server = str(cluster.server);
  if (server === undefined)
    throw new KubeConfigError(`${source}: cluster "${clusterName}" has no server`);
  if (user.exec !== undefined || user["auth-provider"] !== undefined) {
    throw new KubeConfigError(
      `${source}: user "${userName ?? ""}" uses an exec plugin or auth provider, which meshid services do not run; give it a token, tokenFile or client certificate`,
    );
  }
  const token = str(user.token);
  const tokenFile = str(user.tokenFile);
  const username = str(user.username);
  const password = str(user.password);
  return {
    server: server.replace(/\/+$/, ""),
    ca: material("certificate-authority-data", "certificate-authority", cluster),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
    tlsServerName: str(cluster["tls-server-name"]),
    clientCert: material("client-certificate-data", "client-certificate", user),
    clientKey: material("client-key-data", "client-key", user),
    token:
      token !== undefined
        ? () => Promise.resolve(token)
        : tokenFile !== undefined
          ? tokenFromFile(isAbsolute(tokenFile) ? tokenFile : join(baseDir, tokenFile), now)
          : () => Promise.resolve(undefined),
    basicAuth:
      username === undefined
        ? undefined
        : Buffer.from(`${username}:${password ?? ""}`).toString("base64"),
    namespace: str(context.namespace),
  };
}

function fromCluster(
  env: Readonly<Record<string, string | undefined>>,
  dir: string,
  now: () => number,
): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (host === undefined || host === "") {
    throw new KubeConfigError(
      "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is unset) and no kubeconfig file was configured",
    );
  }
  let ca: Buffer;
  try {
    ca = readFileSync(join(dir, "ca.crt"));
  } catch (err) {
    throw new KubeConfigError(`cannot read the service account CA: ${(err as Error).message}`);
  }
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, "namespace"), "utf8").trim();
  } catch {
    namespace = undefined;
  }
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca,
    insecureSkipTlsVerify: false,
    token: tokenFromFile(join(dir, "token"), now),
    namespace,
  };
}

/**
 * Resolves the connection: the kubeconfig (file or text) when given, else the in-cluster
 * service account (`KUBERNETES_SERVICE_HOST` and the mounted token, CA and namespace).
 *
 * @throws KubeConfigError naming what is missing or unsupported.
 */
export function loadKubeConnection(
  settings: KubeConnectionSettings,
  environment: KubeConnectionEnvironment = {},
): KubeConnection {
  const now = environment.now ?? Date.now;
  if (settings.kubeconfigYaml !== undefined) {
    return fromKubeconfig(settings.kubeconfigYaml, "kubeconfig", process.cwd(), now);
  }
  if (settings.kubeconfigFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(settings.kubeconfigFile, "utf8");
    } catch (err) {
      throw new KubeConfigError(`cannot read kubeconfig: ${(err as Error).message}`);
    }
    return fromKubeconfig(text, settings.kubeconfigFile, dirname(settings.kubeconfigFile), now);
  }
  return fromCluster(
    environment.env ?? process.env,
    environment.serviceAccountDir ?? SERVICE_ACCOUNT_DIR,
    now,
  );
}
