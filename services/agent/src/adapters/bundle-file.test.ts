import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createBundle, bundleToJwks } from "@meshid/spiffe";
import { createTempDir, createTestCa, type TempDir, type TestCa } from "@meshid/testkit";
import { BundleFileErrorCode, readBundleFile } from "./bundle-file";

const TD = "example.org";
let ca: TestCa;
let dir: TempDir;

beforeAll(async () => {
  ca = await createTestCa({ trustDomain: TD });
  dir = await createTempDir("agent-bundle-file-");
});

afterAll(async () => {
  await dir.cleanup();
});

describe("bundle file", () => {
  it("bundle file – PEM and SPIFFE JWKS are both read", async () => {
    const pem = join(dir.path, "bundle.pem");
    await writeFile(pem, ca.bundlePem);
    expect(await readBundleFile({ path: pem, trustDomain: TD })).toEqual({
      trustDomain: TD,
      x509AuthoritiesDer: [ca.rootCertDer],
      taintedAuthorityIds: [],
      sequenceNumber: 0,
    });

    const jwks = join(dir.path, "bundle.json");
    const bundle = createBundle({
      trustDomain: TD,
      x509Authorities: [ca.rootCertDer],
      sequenceNumber: 4,
    });
    await writeFile(jwks, `\n  ${bundleToJwks(bundle)}`);
    const read = await readBundleFile({ path: jwks, trustDomain: TD });
    expect(read.sequenceNumber).toBe(4);
    expect(read.x509AuthoritiesDer).toEqual([ca.rootCertDer]);
  });

  it("bundle file – missing, garbage and empty files fail with clear codes", async () => {
    await expect(
      readBundleFile({ path: join(dir.path, "nope.pem"), trustDomain: TD }),
    ).rejects.toMatchObject({ code: BundleFileErrorCode.missing, message: /does not exist/ });

    const garbage = join(dir.path, "garbage.pem");
    await writeFile(garbage, "hello");
    await expect(readBundleFile({ path: garbage, trustDomain: TD })).rejects.toMatchObject({
      code: BundleFileErrorCode.invalid,
      message: /not a valid PEM trust bundle/,
    });

    const badJson = join(dir.path, "bad.json");
    await writeFile(badJson, "{ nope");
    await expect(readBundleFile({ path: badJson, trustDomain: TD })).rejects.toMatchObject({
      code: BundleFileErrorCode.invalid,
      message: /SPIFFE JWKS/,
    });

    const empty = join(dir.path, "empty.json");
    await writeFile(empty, JSON.stringify({ keys: [] }));
    await expect(readBundleFile({ path: empty, trustDomain: TD })).rejects.toMatchObject({
      code: BundleFileErrorCode.invalid,
    });

    await expect(readBundleFile({ path: dir.path, trustDomain: TD })).rejects.toMatchObject({
      code: BundleFileErrorCode.unreadable,
    });
  });
});
