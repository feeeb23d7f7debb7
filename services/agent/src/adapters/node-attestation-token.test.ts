import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createTempDir } from "@meshid/testkit";
import {
  PSAT_TOKEN_UNREADABLE_CODE,
  createNodeAttestationTokenSource,
} from "./node-attestation-token";

describe("node attestation token source", () => {
  it("node attestation token – join token as configured", async () => {
    const source = createNodeAttestationTokenSource({ type: "join_token", joinToken: "abc" });
    expect(source).toMatchObject({ attestationType: "join_token", cluster: "" });
    expect(await source.token()).toBe("abc");
  });

  it("node attestation token – PSAT re-read from its file on every call", async () => {
    const dir = await createTempDir("agent-psat-");
    try {
      const tokenPath = join(dir.path, "token");
      const source = createNodeAttestationTokenSource({
        type: "k8s_psat",
        cluster: "c1",
        tokenPath,
      });
      expect(source).toMatchObject({ attestationType: "k8s_psat", cluster: "c1" });
      await expect(source.token()).rejects.toMatchObject({ code: PSAT_TOKEN_UNREADABLE_CODE });
      await writeFile(tokenPath, "jwt-1\n");
      expect(await source.token()).toBe("jwt-1");
      await writeFile(tokenPath, "jwt-2");
      expect(await source.token()).toBe("jwt-2");
      await writeFile(tokenPath, "  \n");
      await expect(source.token()).rejects.toMatchObject({ code: PSAT_TOKEN_UNREADABLE_CODE });
    } finally {
      await dir.cleanup();
    }
  });
});
