// The upstream authority config file (NGINX Service Mesh format), checked against the JSON
// Schema in services/ca/schemas/upstream-authority.schema.json and turned into a typed union.
// Pure: the caller reads the file and the schema (see adapters/upstream-authority.ts).
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import type { ConfigProblem } from "@meshid/config";
import { MeshidError } from "@meshid/errors";
import { parseDocument } from "yaml";

/** Error code of {@link UpstreamConfigError}. */
export const UPSTREAM_CONFIG_INVALID_CODE = "ca.upstream.config_invalid";

/** Every `upstreamAuthority` kind the config file accepts. */
export const UPSTREAM_AUTHORITY_KINDS = [
  "disk",
  "aws_pca",
  "awssecret",
  "vault",
  "cert-manager",
] as const;

/** One of {@link UPSTREAM_AUTHORITY_KINDS}. */
export type UpstreamAuthorityKind = (typeof UPSTREAM_AUTHORITY_KINDS)[number];

/** Default of vault `pki_mount_point`. */
export const DEFAULT_VAULT_PKI_MOUNT_POINT = "pki";
/** Default of vault `cert_auth.cert_auth_mount_point`. */
export const DEFAULT_VAULT_CERT_AUTH_MOUNT_POINT = "cert";
/** Default of vault `approle_auth.approle_auth_mount_point`. */
export const DEFAULT_VAULT_APPROLE_AUTH_MOUNT_POINT = "approle";
/** Default of vault `k8s_auth.k8s_auth_mount_point`. */
export const DEFAULT_VAULT_K8S_AUTH_MOUNT_POINT = "kubernetes";
/** Default of cert-manager `issuer_kind`. */
export const DEFAULT_CERT_MANAGER_ISSUER_KIND = "Issuer";
/** Default of cert-manager `issuer_group`. */
export const DEFAULT_CERT_MANAGER_ISSUER_GROUP = "cert-manager.io";

/** `upstreamAuthority: disk` — an upstream CA certificate and key read from files. */
export interface DiskUpstreamConfig {
  readonly kind: "disk";
  /** `cert_file_path`: the upstream CA certificate (PEM). */
  readonly certFilePath: string;
  /** `key_file_path`: its private key (PEM). */
  readonly keyFilePath: string;
  /** `bundle_file_path`: the upstream roots (PEM); needed when the certificate is an intermediate. */
  readonly bundleFilePath?: string;
}

/** `upstreamAuthority: aws_pca` — AWS Certificate Manager Private CA. */
export interface AwsPcaUpstreamConfig {
  readonly kind: "aws_pca";
  readonly region: string;
  readonly certificateAuthorityArn: string;
  readonly caSigningTemplateArn?: string;
  readonly signingAlgorithm?: string;
  readonly assumeRoleArn?: string;
  readonly endpoint?: string;
  readonly supplementalBundlePath?: string;
}

/** `upstreamAuthority: awssecret` — CA certificate and key kept in AWS Secrets Manager. */
export interface AwsSecretUpstreamConfig {
  readonly kind: "awssecret";
  readonly region: string;
  readonly certFileArn: string;
  readonly keyFileArn: string;
  readonly bundleFileArn?: string;
  readonly accessKeyId?: string;
  /** Secret: never logged. */
  readonly secretAccessKey?: string;
  /** Secret: never logged. */
  readonly secretToken?: string;
  readonly assumeRoleArn?: string;
}

/** How the vault upstream authenticates: exactly one method. */
export type VaultAuthConfig =
  | {
      readonly method: "token";
      /** Secret: never logged. */
      readonly token: string;
    }
  | {
      readonly method: "cert";
      /** Default {@link DEFAULT_VAULT_CERT_AUTH_MOUNT_POINT}. */
      readonly certAuthMountPoint: string;
      readonly certAuthRoleName?: string;
      readonly clientCertPath: string;
      readonly clientKeyPath: string;
    }
  | {
      readonly method: "approle";
      /** Default {@link DEFAULT_VAULT_APPROLE_AUTH_MOUNT_POINT}. */
      readonly approleAuthMountPoint: string;
      readonly approleId: string;
      /** Secret: never logged. */
      readonly approleSecretId: string;
    }
  | {
      readonly method: "k8s";
      /** Default {@link DEFAULT_VAULT_K8S_AUTH_MOUNT_POINT}. */
      readonly k8sAuthMountPoint: string;
      readonly k8sAuthRoleName: string;
      readonly tokenPath: string;
    };

/** `upstreamAuthority: vault` — HashiCorp Vault PKI secrets engine. */
export interface VaultUpstreamConfig {
  readonly kind: "vault";
  readonly vaultAddr: string;
  /** Default {@link DEFAULT_VAULT_PKI_MOUNT_POINT}. */
  readonly pkiMountPoint: string;
  readonly caCertPath?: string;
  readonly namespace?: string;
  readonly auth: VaultAuthConfig;
}

/** `upstreamAuthority: cert-manager` — a cert-manager issuer signs CertificateRequests. */
export interface CertManagerUpstreamConfig {
  readonly kind: "cert-manager";
  readonly namespace: string;
  readonly issuerName: string;
  /** Default {@link DEFAULT_CERT_MANAGER_ISSUER_KIND}. */
  readonly issuerKind: string;
  /** Default {@link DEFAULT_CERT_MANAGER_ISSUER_GROUP}. */
  readonly issuerGroup: string;
  readonly kubeConfigFile?: string;
}

/** A validated upstream authority config file, tagged by `kind` (`upstreamAuthority`). */
export type UpstreamAuthorityConfig =
  | DiskUpstreamConfig
  | AwsPcaUpstreamConfig
  | AwsSecretUpstreamConfig
  | VaultUpstreamConfig
  | CertManagerUpstreamConfig;

/**
 * An invalid upstream authority config file: every problem found, at once, each with the file
 * (`source`) and the JSON path of the setting (`config.token_auth.token`). Kind
 * `invalid_argument`, code {@link UPSTREAM_CONFIG_INVALID_CODE}. Messages never contain the
 * values of the file (they may be secrets).
 */
export class UpstreamConfigError extends MeshidError {
  /** Every problem found, ordered by path. */
  readonly problems: readonly ConfigProblem[];

  constructor(
    source: string,
    problems: readonly ConfigProblem[],
    options: { cause?: unknown } = {},
  ) {
    super("invalid_argument", UPSTREAM_CONFIG_INVALID_CODE, formatProblems(source, problems), {
      cause: options.cause,
      details: { path: source, problemCount: problems.length },
    });
    this.name = "UpstreamConfigError";
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })));
  }
}

function formatProblems(source: string, problems: readonly ConfigProblem[]): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const lines = problems.map((p) => `  - ${p.path === "" ? "(root)" : p.path}: ${p.message}`);
  return [`invalid upstream authority config file ${source} (${count}):`, ...lines].join("\n");
}

/** Parameters of {@link parseUpstreamAuthorityConfig}. */
export interface ParseUpstreamAuthorityConfigParams {
  /** The file's text, YAML or JSON. */
  readonly text: string;
  /** The file's path, named in every problem. */
  readonly source: string;
  /** The parsed JSON Schema (schemas/upstream-authority.schema.json). */
  readonly schema: object;
}

const validators = new WeakMap<object, ValidateFunction>();

function validatorFor(schema: object): ValidateFunction {
  let validate = validators.get(schema);
  if (validate === undefined) {
    const ajv = new Ajv2020({
      allErrors: true,
      strict: true,
      strictRequired: false,
      verbose: true,
    });
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  return validate;
}

/**
 * Parses an upstream authority config file (YAML or JSON: `apiVersion: v1`,
 * `upstreamAuthority: disk | aws_pca | awssecret | vault | cert-manager`, `config: {...}`),
 * validates it against the JSON Schema and returns the typed config with defaults applied
 * (vault `pki_mount_point` "pki", cert-manager `issuer_kind` "Issuer" and `issuer_group`
 * "cert-manager.io"). Throws {@link UpstreamConfigError} (`ca.upstream.config_invalid`,
 * invalid_argument) listing every problem — YAML syntax, unknown keys, missing or mistyped
 * settings, vault without exactly one auth method — with the file and JSON path.
 */
export function parseUpstreamAuthorityConfig(
  params: ParseUpstreamAuthorityConfigParams,
): UpstreamAuthorityConfig {
  const { text, source } = params;
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // The parser's own messages quote the offending line, which may hold a secret: report
    // only where and what kind of error it is.
    throw new UpstreamConfigError(
      source,
      doc.errors.map((e) => ({
        source,
        path: "",
        message: `YAML syntax error (${e.code})${e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : ""}`,
      })),
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) {
    throw new UpstreamConfigError(source, [{ source, path: "", message: "the file is empty" }]);
  }
  const validate = validatorFor(params.schema);
  if (!validate(data)) {
    throw new UpstreamConfigError(source, schemaProblems(source, validate.errors ?? []));
  }
  return toTyped(data as RawFile);
}

function pointerToPath(pointer: string): string {
  if (pointer === "") return "";
  let out = "";
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out === "" ? seg : `.${seg}`;
  }
  return out;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function problemOf(err: ErrorObject): { path: string; message: string } | undefined {
  const path = pointerToPath(err.instancePath);
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case "if":
      // Says only "must match then schema"; the errors of the `then` branch say what is wrong.
      return undefined;
    case "required":
      return { path: join(path, String(params.missingProperty)), message: "is required" };
    case "additionalProperties": {
      const parent = err.parentSchema as { properties?: Record<string, unknown> } | undefined;
      const allowed = Object.keys(parent?.properties ?? {});
      return {
        path: join(path, String(params.additionalProperty)),
        message: `unknown key${allowed.length > 0 ? ` (allowed: ${allowed.join(", ")})` : ""}`,
      };
    }
    case "type":
      return { path, message: `must be ${article(String(params.type))}` };
    case "enum":
      return {
        path,
        message: `must be one of ${(params.allowedValues as unknown[]).map(String).join(", ")}`,
      };
    case "const":
      return { path, message: `must be ${JSON.stringify(params.allowedValue)}` };
    case "minLength":
      return { path, message: "must not be empty" };
    case "pattern":
      return { path, message: `must match the pattern ${String(params.pattern)}` };
    case "oneOf": {
      const branches = (err.schema as { required?: string[] }[]).flatMap((b) => b.required ?? []);
      const passing = params.passingSchemas;
      const found = Array.isArray(passing)
        ? passing.map((i: number) => branches[i]).filter((n) => n !== undefined)
        : [];
      return {
        path,
        message:
          found.length > 1
            ? `must set exactly one of ${branches.join(", ")}, not several (${found.join(", ")})`
            : `must set exactly one of ${branches.join(", ")}`,
      };
    }
    default:
      return { path, message: err.message ?? `fails the schema keyword ${err.keyword}` };
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function schemaProblems(source: string, errors: readonly ErrorObject[]): ConfigProblem[] {
  // The branches of a oneOf report their own errors ("token_auth is required", …); the
  // oneOf's summary says it better.
  const oneOfPaths = errors.filter((e) => e.keyword === "oneOf").map((e) => `${e.schemaPath}/`);
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const err of errors) {
    if (oneOfPaths.some((p) => err.schemaPath.startsWith(p))) continue;
    const problem = problemOf(err);
    if (problem === undefined) continue;
    const key = `${problem.path}\u0000${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ source, ...problem });
  }
  if (out.length === 0) out.push({ source, path: "", message: "does not match the schema" });
  // By path, so problems of one setting are together whatever the schema's order (stable sort).
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

type RawObject = Record<string, unknown>;
interface RawFile {
  readonly upstreamAuthority: UpstreamAuthorityKind;
  readonly config: RawObject;
}

function str(o: RawObject, key: string): string {
  return o[key] as string;
}

function opt<K extends string>(o: RawObject, key: string, name: K): Partial<Record<K, string>> {
  const v = o[key];
  return typeof v === "string" ? ({ [name]: v } as Record<K, string>) : {};
}

function toTyped(file: RawFile): UpstreamAuthorityConfig {
  const c = file.config;
  switch (file.upstreamAuthority) {
    case "disk":
      return Object.freeze({
        kind: "disk",
        certFilePath: str(c, "cert_file_path"),
        keyFilePath: str(c, "key_file_path"),
        ...opt(c, "bundle_file_path", "bundleFilePath"),
      });
    case "aws_pca":
      return Object.freeze({
        kind: "aws_pca",
        region: str(c, "region"),
        certificateAuthorityArn: str(c, "certificate_authority_arn"),
        ...opt(c, "ca_signing_template_arn", "caSigningTemplateArn"),
        ...opt(c, "signing_algorithm", "signingAlgorithm"),
        ...opt(c, "assume_role_arn", "assumeRoleArn"),
        ...opt(c, "endpoint", "endpoint"),
        ...opt(c, "supplemental_bundle_path", "supplementalBundlePath"),
      });
    case "awssecret":
      return Object.freeze({
        kind: "awssecret",
        region: str(c, "region"),
        certFileArn: str(c, "cert_file_arn"),
        keyFileArn: str(c, "key_file_arn"),
        ...opt(c, "bundle_file_arn", "bundleFileArn"),
        ...opt(c, "access_key_id", "accessKeyId"),
        ...opt(c, "secret_access_key", "secretAccessKey"),
        ...opt(c, "secret_token", "secretToken"),
        ...opt(c, "assume_role_arn", "assumeRoleArn"),
      });
    case "vault":
      return Object.freeze({
        kind: "vault",
        vaultAddr: str(c, "vault_addr"),
        pkiMountPoint: (c.pki_mount_point as string | undefined) ?? DEFAULT_VAULT_PKI_MOUNT_POINT,
        ...opt(c, "ca_cert_path", "caCertPath"),
        ...opt(c, "namespace", "namespace"),
        auth: Object.freeze(vaultAuth(c)),
      });
    case "cert-manager":
      return Object.freeze({
        kind: "cert-manager",
        namespace: str(c, "namespace"),
        issuerName: str(c, "issuer_name"),
        issuerKind: (c.issuer_kind as string | undefined) ?? DEFAULT_CERT_MANAGER_ISSUER_KIND,
        issuerGroup: (c.issuer_group as string | undefined) ?? DEFAULT_CERT_MANAGER_ISSUER_GROUP,
        ...opt(c, "kube_config_file", "kubeConfigFile"),
      });
  }
}

function vaultAuth(c: RawObject): VaultAuthConfig {
  // The schema guarantees exactly one of the four.
  if (c.token_auth !== undefined) {
    return { method: "token", token: str(c.token_auth as RawObject, "token") };
  }
  if (c.cert_auth !== undefined) {
    const a = c.cert_auth as RawObject;
    return {
      method: "cert",
      certAuthMountPoint:
        (a.cert_auth_mount_point as string | undefined) ?? DEFAULT_VAULT_CERT_AUTH_MOUNT_POINT,
      ...opt(a, "cert_auth_role_name", "certAuthRoleName"),
      clientCertPath: str(a, "client_cert_path"),
      clientKeyPath: str(a, "client_key_path"),
    };
  }
  if (c.approle_auth !== undefined) {
    const a = c.approle_auth as RawObject;
    return {
      method: "approle",
      approleAuthMountPoint:
        (a.approle_auth_mount_point as string | undefined) ??
        DEFAULT_VAULT_APPROLE_AUTH_MOUNT_POINT,
      approleId: str(a, "approle_id"),
      approleSecretId: str(a, "approle_secret_id"),
    };
  }
  const a = c.k8s_auth as RawObject;
  return {
    method: "k8s",
    k8sAuthMountPoint:
      (a.k8s_auth_mount_point as string | undefined) ?? DEFAULT_VAULT_K8S_AUTH_MOUNT_POINT,
    k8sAuthRoleName: str(a, "k8s_auth_role_name"),
    tokenPath: str(a, "token_path"),
  };
}
