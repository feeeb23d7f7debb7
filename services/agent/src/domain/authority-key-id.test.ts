import { readCertificateInfo } from "@meshid/pki";
import { createTestCa } from "@meshid/testkit";
import { readAuthorityKeyId } from "./authority-key-id";

describe("authority key id", () => {
  it("authority key id – a leaf's AKI is its issuer's SKI, root and intermediate", async () => {
    const ca = await createTestCa();
    const rootSki = Buffer.from(readCertificateInfo(ca.rootCertDer).subjectKeyId).toString("hex");
    const leaf = await ca.issueSvid({ spiffeId: "spiffe://example.org/a" });
    expect(readAuthorityKeyId(leaf.certChainDer[0] as Uint8Array)).toBe(rootSki);

    const intermediate = await ca.issueIntermediate();
    const ski = Buffer.from(readCertificateInfo(intermediate.certDer).subjectKeyId).toString("hex");
    const leaf2 = await intermediate.issueSvid({ spiffeId: "spiffe://example.org/b" });
    expect(readAuthorityKeyId(leaf2.certChainDer[0] as Uint8Array)).toBe(ski);
    expect(ski).toMatch(/^[0-9a-f]+$/);
  });

  it("authority key id – malformed DER is agent.svid.malformed", () => {
    expect(() => readAuthorityKeyId(new Uint8Array([0x30, 0x05, 0x01]))).toThrow(
      expect.objectContaining({ code: "agent.svid.malformed" }) as Error,
    );
  });
});
