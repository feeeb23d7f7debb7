// Supplies the node attestation credential: the configured join token, or the projected
// service-account token re-read from its file at every attestation (kubelet rotates it).
import { readFile } from "node:fs/promises";
import { MeshidError } from "@meshid/errors";
import type { NodeAttestationConfig } from "../config";
import type { NodeAttestationTokenSource } from "../ports";

/** Error code when the projected service-account token cannot be read. */
export const PSAT_TOKEN_UNREADABLE_CODE = "agent.attestation.psat_token_unreadable";

/**
 * Creates the {@link NodeAttestationTokenSource} for the configured attestation.
 * `token()` throws MeshidError failed_precondition `agent.attestation.psat_token_unreadable`
 * when the PSAT file is missing, unreadable or empty.
 */
export function createNodeAttestationTokenSource(
  config: NodeAttestationConfig,
): NodeAttestationTokenSource {
  if (config.type === "join_token") {
    const token = config.joinToken;
    return { attestationType: "join_token", cluster: "", token: () => Promise.resolve(token) };
  }
  const { tokenPath, cluster } = config;
  return {
    attestationType: "k8s_psat",
    cluster,
    async token() {
      let text: string;
      try {
        text = await readFile(tokenPath, "utf8");
      } catch (err) {
        throw new MeshidError(
          "failed_precondition",
          PSAT_TOKEN_UNREADABLE_CODE,
          `cannot read the projected service-account token ${tokenPath}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      const token = text.trim();
      if (token === "") {
        throw new MeshidError(
          "failed_precondition",
          PSAT_TOKEN_UNREADABLE_CODE,
          `the projected service-account token file ${tokenPath} is empty`,
        );
      }
      return token;
    },
  };
}
