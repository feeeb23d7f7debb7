import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { usageError } from "./exit-codes";

/** Default context file, relative to the current directory (written by `npm start`). */
export const DEFAULT_CONTEXT_FILE = join(".meshid", "meshctl.yaml");

/** Environment variable naming the context file. */
export const CONTEXT_ENV = "MESHCTL_CONTEXT";

const nonEmpty = z.string().min(1);

const serviceEndpointSchema = z
  .object({
    /** Local admin Unix socket: every caller there is admin. */
    adminSocket: nonEmpty.optional(),
    /** `host:port` of the mTLS gRPC listener (use `localhost`, not an IP). */
    address: nonEmpty.optional(),
    /** Expected SPIFFE ID of the server (e.g. `spiffe://example.org/meshid/ca`). */
    serverId: nonEmpty.optional(),
    /** Workload API socket to take meshctl's own X509-SVID from. */
    workloadSocket: nonEmpty.optional(),
    certFile: nonEmpty.optional(),
    keyFile: nonEmpty.optional(),
    bundleFile: nonEmpty.optional(),
  })
  .strict();

const contextSchema = z
  .object({
    trustDomain: nonEmpty.optional(),
    ca: serviceEndpointSchema.optional(),
    proxyConfig: serviceEndpointSchema.optional(),
    workloadSocket: nonEmpty.optional(),
    natsUrl: nonEmpty.optional(),
    // Checked per service by `status`, so one bad URL never breaks every other command.
    services: z.record(z.string(), z.string()).optional(),
  })
  .strict();

/** How to reach one gRPC service, as written in the context file (paths made absolute). */
export type ServiceEndpointConfig = z.infer<typeof serviceEndpointSchema>;

/** A loaded context file: where the mesh's services are. Paths are absolute. */
export interface MeshctlContext {
  /** The file it came from, or undefined when no file exists (defaults only). */
  readonly file: string | undefined;
  readonly trustDomain?: string;
  readonly ca?: ServiceEndpointConfig;
  readonly proxyConfig?: ServiceEndpointConfig;
  readonly workloadSocket?: string;
  readonly natsUrl?: string;
  /** Ops base URLs by service name, for `status`. */
  readonly services: Readonly<Record<string, string>>;
}

/** Parameters of {@link loadContext}. */
export interface LoadContextParams {
  /** `--context` flag value. */
  readonly flag: string | undefined;
  /** Environment (`MESHCTL_CONTEXT`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory the default file and a relative flag resolve against. */
  readonly cwd: string;
}

const PATH_KEYS = ["adminSocket", "workloadSocket", "certFile", "keyFile", "bundleFile"] as const;

function resolvePaths(
  endpoint: ServiceEndpointConfig | undefined,
  base: string,
): ServiceEndpointConfig | undefined {
  if (endpoint === undefined) return undefined;
  const out: Record<string, string | undefined> = { ...endpoint };
  for (const key of PATH_KEYS) {
    const value = endpoint[key];
    if (value !== undefined) out[key] = isAbsolute(value) ? value : resolve(base, value);
  }
  return out;
}

/**
 * Loads the context file named by `--context`, else `MESHCTL_CONTEXT`, else
 * `.meshid/meshctl.yaml` in `cwd`. A missing default file yields an empty context; a missing
 * named file, bad YAML or unknown keys are usage errors. Relative paths in the file resolve
 * against the file's directory.
 *
 * @throws MeshidError `meshctl.usage` (exit code 2) for a named file that is missing or invalid.
 */
export function loadContext(params: LoadContextParams): MeshctlContext {
  const named = params.flag ?? params.env[CONTEXT_ENV];
  const file = resolve(params.cwd, named ?? DEFAULT_CONTEXT_FILE);
  if (!existsSync(file)) {
    if (named !== undefined) {
      throw usageError(`context file ${file} does not exist`);
    }
    return { file: undefined, services: {} };
  }
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    throw usageError(`context file ${file} is not valid YAML: ${(err as Error).message}`, err);
  }
  const parsed = contextSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`)
      .join("\n");
    throw usageError(`context file ${file} is invalid:\n${problems}`);
  }
  const base = dirname(file);
  const c = parsed.data;
  const resolveOpt = (p: string | undefined): string | undefined =>
    p === undefined ? undefined : isAbsolute(p) ? p : resolve(base, p);
  const ca = resolvePaths(c.ca, base);
  const proxyConfig = resolvePaths(c.proxyConfig, base);
  const workloadSocket = resolveOpt(c.workloadSocket);
  return {
    file,
    services: c.services ?? {},
    ...(c.trustDomain === undefined ? {} : { trustDomain: c.trustDomain }),
    ...(ca === undefined ? {} : { ca }),
    ...(proxyConfig === undefined ? {} : { proxyConfig }),
    ...(workloadSocket === undefined ? {} : { workloadSocket }),
    ...(c.natsUrl === undefined ? {} : { natsUrl: c.natsUrl }),
  };
}
