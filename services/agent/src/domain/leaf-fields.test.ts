import { readCertificateInfo } from "@meshid/pki";
import { createTestCa } from "@meshid/testkit";
import { readAuthorityKeyId } from "./authority-key-id";
import { readLeafFields } from "./leaf-fields";

describe("leaf fields", () => {
  it("leaf fields – validity and authority as readCertificateInfo and readAuthorityKeyId read them", async () => {
    const ca = await createTestCa();
    const intermediate = await ca.issueIntermediate();
    for (const signer of [ca, intermediate, ca]) {
      const svid = await signer.issueSvid({ spiffeId: "spiffe://example.org/a", ttlSeconds: 600 });
      const leaf = svid.certChainDer[0] as Uint8Array;
      const info = readCertificateInfo(leaf);
      expect(readLeafFields(leaf)).toEqual({
        notBeforeMs: info.notBefore.getTime(),
        notAfterMs: info.notAfter.getTime(),
        authorityId: readAuthorityKeyId(leaf),
      });
    }
  });

  it("leaf fields – malformed or truncated DER is agent.svid.malformed", async () => {
    const ca = await createTestCa();
    const leaf = (await ca.issueSvid({ spiffeId: "spiffe://example.org/a" }))
      .certChainDer[0] as Uint8Array;
    for (const bad of [
      new Uint8Array([0x30, 0x05, 0x01]),
      leaf.subarray(0, leaf.length - 1),
      Uint8Array.of(...leaf, 0),
      // A certificate without extensions (no authorityKeyIdentifier).
      Uint8Array.of(0x30, 0x03, 0x30, 0x01, 0x02),
    ]) {
      expect(() => readLeafFields(bad)).toThrow(
        expect.objectContaining({ code: "agent.svid.malformed" }) as Error,
      );
    }
  });
});
