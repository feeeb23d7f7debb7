import { isMeshidError, type MeshidError } from "@meshid/errors";
import { createSelfSignedCa } from "./ca-certificate";
import { generateKeyPair } from "./keys";
import { checkUpstreamPathLen, type UpstreamRole } from "./upstream-path-len";

async function caWithPathLen(pathLen: number | undefined): Promise<Uint8Array> {
  const keyPair = await generateKeyPair("ec-p256");
  const ca = await createSelfSignedCa({
    keyPair,
    trustDomain: "upstream.example",
    ttlSeconds: 3_600,
    now: new Date(),
    ...(pathLen === undefined ? {} : { pathLen }),
  });
  return ca.certDer;
}

function errorOf(der: Uint8Array, role: UpstreamRole): MeshidError | undefined {
  try {
    checkUpstreamPathLen(der, role);
    return undefined;
  } catch (err) {
    if (isMeshidError(err)) return err;
    throw err;
  }
}

describe("upstream-path-len", () => {
  test("upstream-path-len – intermediate must have pathLen 1 or unset", async () => {
    expect(errorOf(await caWithPathLen(undefined), "intermediate")).toBeUndefined();
    expect(errorOf(await caWithPathLen(1), "intermediate")).toBeUndefined();
    for (const n of [0, 2, 5]) {
      const err = errorOf(await caWithPathLen(n), "intermediate");
      expect(err?.code).toBe("pki.upstream.path_len");
      expect(err?.kind).toBe("failed_precondition");
      expect(err?.message).toBe(
        `upstream intermediate CA has pathLen ${n}: pathLen must be 1 or unset`,
      );
    }
  });

  test("upstream-path-len – root must have pathLen ≥ 2 or unset", async () => {
    expect(errorOf(await caWithPathLen(undefined), "root")).toBeUndefined();
    expect(errorOf(await caWithPathLen(2), "root")).toBeUndefined();
    expect(errorOf(await caWithPathLen(7), "root")).toBeUndefined();
    for (const n of [0, 1]) {
      const err = errorOf(await caWithPathLen(n), "root");
      expect(err?.code).toBe("pki.upstream.path_len");
      expect(err?.message).toBe(
        `upstream root CA has pathLen ${n}: pathLen must be 2 or more, or unset`,
      );
    }
  });

  test("upstream-path-len – garbage is pki.certificate.malformed", () => {
    expect(errorOf(new Uint8Array([0x30, 0x05, 1, 2]), "root")?.code).toBe(
      "pki.certificate.malformed",
    );
  });
});
