// Reads the bootstrap trust bundle the agent is deployed with (a ConfigMap-mounted file).
import { readFile } from "node:fs/promises";
import { MeshidError } from "@meshid/errors";
import { bundleFromJwks, bundleFromPem, type Bundle } from "@meshid/spiffe";
import type { AgentBundle } from "../domain/types";

/** Error codes of {@link readBundleFile}. */
export const BundleFileErrorCode = {
  missing: "agent.bundle_file.missing",
  unreadable: "agent.bundle_file.unreadable",
  invalid: "agent.bundle_file.invalid",
} as const;

/** Parameters of {@link readBundleFile}. */
export interface ReadBundleFileParams {
  /** The bundle file: PEM CERTIFICATE blocks or a SPIFFE bundle (JWKS JSON), auto-detected. */
  readonly path: string;
  /** Trust domain the bundle belongs to. */
  readonly trustDomain: string;
}

/** Converts a parsed SPIFFE bundle to the agent's {@link AgentBundle} (nothing tainted). */
export function agentBundleFromSpiffeBundle(bundle: Bundle): AgentBundle {
  return {
    trustDomain: bundle.trustDomain.name,
    x509AuthoritiesDer: bundle.x509Authorities,
    taintedAuthorityIds: [],
    sequenceNumber: bundle.sequenceNumber,
  };
}

/**
 * Parses bundle file contents: JSON (starting with `{`) as a SPIFFE JWKS bundle, anything else
 * as PEM certificates.
 * @throws MeshidError failed_precondition `agent.bundle_file.invalid` (cause: the parse error).
 */
export function parseBundleFileContents(
  text: string,
  trustDomain: string,
  path = "bundle",
): AgentBundle {
  const isJson = text.trimStart().startsWith("{");
  let bundle: Bundle;
  try {
    bundle = isJson ? bundleFromJwks(trustDomain, text) : bundleFromPem(trustDomain, text);
  } catch (err) {
    throw new MeshidError(
      "failed_precondition",
      BundleFileErrorCode.invalid,
      `bundle file ${path} is not a valid ${isJson ? "SPIFFE JWKS" : "PEM"} trust bundle: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (bundle.x509Authorities.length === 0) {
    throw new MeshidError(
      "failed_precondition",
      BundleFileErrorCode.invalid,
      `bundle file ${path} holds no X.509 authority`,
    );
  }
  return agentBundleFromSpiffeBundle(bundle);
}

/**
 * Reads and parses the bundle file (PEM or SPIFFE JWKS, auto-detected).
 * @throws MeshidError failed_precondition `agent.bundle_file.missing` when the file does not
 *   exist, `agent.bundle_file.unreadable` when it cannot be read, `agent.bundle_file.invalid`
 *   when it holds no valid bundle with at least one X.509 authority.
 */
export async function readBundleFile(params: ReadBundleFileParams): Promise<AgentBundle> {
  let text: string;
  try {
    text = await readFile(params.path, "utf8");
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    throw new MeshidError(
      "failed_precondition",
      missing ? BundleFileErrorCode.missing : BundleFileErrorCode.unreadable,
      missing
        ? `bundle file ${params.path} does not exist (mount the CA bundle ConfigMap there)`
        : `bundle file ${params.path} cannot be read: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return parseBundleFileContents(text, params.trustDomain, params.path);
}
