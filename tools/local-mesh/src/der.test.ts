import { createTestCa } from "@meshid/testkit";
import { certificateFacts, derCertificatesToPem, splitDerCertificates } from "./der";

describe("der", () => {
  it("der – splits concatenated DER certificates and turns them into PEM that reads back", async () => {
    const ca = await createTestCa({ trustDomain: "td.test" });
    const intermediate = await ca.issueIntermediate();
    const svid = await intermediate.issueSvid({ spiffeId: "spiffe://td.test/demo/a" });
    const concatenated = Buffer.concat(svid.certChainDer.map((c) => Buffer.from(c)));
    const parts = splitDerCertificates(concatenated);
    expect(parts.map((p) => p.toString("hex"))).toEqual(
      svid.certChainDer.map((c) => Buffer.from(c).toString("hex")),
    );
    const pem = derCertificatesToPem(concatenated);
    expect(pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(svid.certChainDer.length);
    const facts = certificateFacts(pem);
    expect(facts.uris).toEqual(["spiffe://td.test/demo/a"]);
    expect(facts.notAfter.getTime()).toBeGreaterThan(facts.notBefore.getTime());
  });

  it("der – bytes that are not DER SEQUENCEs are refused", () => {
    expect(() => splitDerCertificates(Buffer.from([0x02, 0x01, 0x00]))).toThrow(
      /not a DER SEQUENCE/,
    );
    expect(() => splitDerCertificates(Buffer.from([0x30, 0x05, 0x00]))).toThrow(/truncated/);
  });
});
