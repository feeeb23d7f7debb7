import { X509Certificate } from "node:crypto";
import { readCertificateInfo } from "@meshid/pki";
import { createTestCa } from "@meshid/testkit";
import { readAuthorityKeyId } from "./authority-key-id";
import { readLeafFields, readLeafLayout, readLeafSerialHex } from "./leaf-fields";

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

describe("leaf layout", () => {
  it("leaf layout – serial and public key where node:crypto sees them", async () => {
    const ca = await createTestCa();
    for (const keyType of ["ec-p256", "ec-p384", "rsa-2048"] as const) {
      const svid = await ca.issueSvid({ spiffeId: "spiffe://example.org/a", keyType });
      const leaf = svid.certChainDer[0]!;
      const x509 = new X509Certificate(leaf);
      const layout = readLeafLayout(leaf);
      const spki = x509.publicKey.export({ type: "spki", format: "der" });
      // The subjectPublicKey bits end the SubjectPublicKeyInfo.
      expect(Buffer.from(leaf.subarray(layout.publicKeyStart, layout.publicKeyEnd))).toEqual(
        spki.subarray(spki.length - (layout.publicKeyEnd - layout.publicKeyStart)),
      );
      expect(readLeafSerialHex(leaf)).toBe(
        x509.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ""),
      );
      // The INTEGER's content keeps its sign octet; the hex leaves it out.
      expect(
        Buffer.from(leaf.subarray(layout.serialStart, layout.serialEnd)).toString("hex"),
      ).toMatch(new RegExp(`^(00)?${readLeafSerialHex(leaf)}$`));
    }
  });

  it("leaf layout – a serial with its sign octet loses it, a zero serial stays 00", () => {
    // TBSCertificate up to the serial is all readLeafSerialHex reads.
    const cert = (serial: number[]) => {
      const tbs = [0x30, 2 + serial.length, 0x02, serial.length, ...serial];
      return Uint8Array.of(0x30, tbs.length, ...tbs);
    };
    expect(readLeafSerialHex(cert([0x00, 0x80, 0x01]))).toBe("8001");
    expect(readLeafSerialHex(cert([0x00]))).toBe("00");
  });

  it("leaf layout – DER cut before the public key is agent.svid.malformed", async () => {
    const ca = await createTestCa();
    const leaf = (await ca.issueSvid({ spiffeId: "spiffe://example.org/a" }))
      .certChainDer[0] as Uint8Array;
    for (const bad of [leaf.subarray(0, 40), Uint8Array.of(0x30, 0x03, 0x30, 0x01, 0x02)]) {
      expect(() => readLeafLayout(bad)).toThrow(
        expect.objectContaining({ code: "agent.svid.malformed" }) as Error,
      );
    }
  });
});
