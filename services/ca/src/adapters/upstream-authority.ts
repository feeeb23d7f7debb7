import { promises as fs } from "node:fs";
import path from "node:path";
import { MeshidError } from "@meshid/errors";
import type { Logger } from "@meshid/telemetry";
import {
  parseUpstreamAuthorityConfig,
  UpstreamConfigError,
  type UpstreamAuthorityConfig,
} from "../domain/upstream-config";
import type { Clock, UpstreamAuthority } from "../ports";
import { createDiskUpstreamAuthority } from "./disk-upstream-authority";

/**
 * Path of the upstream authority config JSON Schema (draft 2020-12), shipped with the package
 * (`schemas/` sits next to both `src/` and `dist/`).
 */
export const UPSTREAM_AUTHORITY_SCHEMA_PATH = path.join(
  __dirname,
  "..",
  "..",
  "schemas",
  "upstream-authority.schema.json",
);

let schemaPromise: Promise<object> | undefined;

function loadSchema(): Promise<object> {
  schemaPromise ??= fs
    .readFile(UPSTREAM_AUTHORITY_SCHEMA_PATH, "utf8")
    .then((text) => JSON.parse(text) as object)
    .catch((err: unknown) => {
      schemaPromise = undefined;
      throw new MeshidError(
        "internal",
        "ca.upstream.schema_missing",
        `the upstream authority schema ${UPSTREAM_AUTHORITY_SCHEMA_PATH} cannot be loaded`,
        { cause: err },
      );
    });
  return schemaPromise;
}

/**
 * Reads an upstream authority config file (YAML or JSON, NSM format: `apiVersion: v1`,
 * `upstreamAuthority: <kind>`, `config: {...}`), validates it against
 * `schemas/upstream-authority.schema.json` and returns the typed config with defaults
 * applied. Paths inside the file are kept as written (relative ones resolve against the
 * working directory, as in SPIRE). Throws `ca.upstream.config_invalid` (invalid_argument, an
 * {@link UpstreamConfigError}) listing every problem with the file and JSON path, also when
 * the file cannot be read.
 */
export async function loadUpstreamAuthorityConfig(file: string): Promise<UpstreamAuthorityConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    throw new UpstreamConfigError(
      file,
      [
        {
          source: file,
          path: "",
          message: `the file cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
        },
      ],
      { cause: err },
    );
  }
  return parseUpstreamAuthorityConfig({ text, source: file, schema: await loadSchema() });
}

/** Dependencies of {@link createUpstreamAuthority}. */
export interface UpstreamAuthorityDeps {
  /** The CA's trust domain: minted CA certificates carry `spiffe://<trustDomain>`. */
  readonly trustDomain: string;
  /** Default: the system clock. */
  readonly clock?: Pick<Clock, "now">;
  /** Default: no-op. */
  readonly logger?: Logger;
}

/**
 * Creates the {@link UpstreamAuthority} a validated config names. Only `disk` has an adapter
 * in this version ({@link createDiskUpstreamAuthority}). The `aws_pca`, `awssecret`, `vault`
 * and `cert-manager` configs are validated by {@link loadUpstreamAuthorityConfig}, but their
 * adapters are not available in this version: for them this throws `ca.upstream.unsupported`
 * (failed_precondition) saying so — it does not fall back to anything. Otherwise throws what
 * {@link createDiskUpstreamAuthority} throws.
 */
export async function createUpstreamAuthority(
  config: UpstreamAuthorityConfig,
  deps: UpstreamAuthorityDeps,
): Promise<UpstreamAuthority> {
  switch (config.kind) {
    case "disk":
      return createDiskUpstreamAuthority({
        certFilePath: config.certFilePath,
        keyFilePath: config.keyFilePath,
        ...(config.bundleFilePath === undefined ? {} : { bundleFilePath: config.bundleFilePath }),
        trustDomain: deps.trustDomain,
        ...(deps.clock === undefined ? {} : { clock: deps.clock }),
        ...(deps.logger === undefined ? {} : { logger: deps.logger }),
      });
    case "aws_pca":
    case "awssecret":
    case "vault":
    case "cert-manager":
      throw new MeshidError(
        "failed_precondition",
        "ca.upstream.unsupported",
        `the ${config.kind} upstream authority adapter is not available in this version of meshid; only disk is (the ${config.kind} config was validated but cannot be used yet)`,
        { details: { kind: config.kind } },
      );
  }
}
