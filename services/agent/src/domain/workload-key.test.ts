import { createPrivateKey, createPublicKey } from "node:crypto";
import { createCsr, parseCsr, verifyCsr, type KeyType } from "@meshid/pki";
import { encodeWorkloadCsr, generateWorkloadKeyAndCsr } from "./workload-key";

/** The certificationRequestInfo (the signed part) of CSR DER: its first inner TLV. */
function requestInfo(csrDer: Uint8Array): Buffer {
  const der = Buffer.from(csrDer);
  let at = 1;
  let length = der[at++] as number;
  if (length & 0x80) at += length & 0x7f;
  const infoStart = at;
  length = der[at + 1] as number;
  let contentStart = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[contentStart + i] as number);
    contentStart += n;
  }
  return der.subarray(infoStart, contentStart + length);
}

describe("workload key", () => {
  it.each<KeyType>(["ec-p256", "ec-p384", "rsa-2048"])(
    "workload key – %s CSR verifies, names the SPIFFE ID and matches its key",
    async (keyType) => {
      const spiffeId = "spiffe://example.org/ns/default/sa/web";
      const made = await generateWorkloadKeyAndCsr(keyType, spiffeId);
      verifyCsr(made.csrDer);
      const parsed = parseCsr(made.csrDer);
      expect(parsed.keyType).toBe(keyType);
      expect(parsed.uris).toEqual([spiffeId]);
      expect(parsed.dnsNames).toEqual([]);
      const privateKey = createPrivateKey({
        key: Buffer.from(made.privateKeyPkcs8Der),
        format: "der",
        type: "pkcs8",
      });
      expect(
        Buffer.from(createPublicKey(privateKey).export({ type: "spki", format: "der" })).equals(
          Buffer.from(parsed.spkiDer),
        ),
      ).toBe(true);
    },
  );

  it.each([
    "spiffe://example.org/a",
    `spiffe://example.org/${"long/".repeat(60)}x`,
    `spiffe://example.org/${"p".repeat(70_000)}`,
  ])("workload key – the signed part is byte for byte @meshid/pki's createCsr (%#)", async (id) => {
    const made = await generateWorkloadKeyAndCsr("ec-p256", "spiffe://example.org/seed");
    const privateKey = createPrivateKey({
      key: Buffer.from(made.privateKeyPkcs8Der),
      format: "der",
      type: "pkcs8",
    });
    const publicKey = createPublicKey(privateKey);
    const ours = encodeWorkloadCsr(
      "ec-p256",
      publicKey.export({ type: "spki", format: "der" }),
      privateKey,
      id,
    );
    const theirs = await createCsr({ privateKey, publicKey, spiffeId: id });
    expect(requestInfo(ours).equals(requestInfo(theirs))).toBe(true);
    verifyCsr(ours);
    expect(parseCsr(ours).uris).toEqual([id]);
  });

  it("workload key – an unknown key type is pki.key.unsupported", async () => {
    await expect(
      generateWorkloadKeyAndCsr("dsa-1024" as KeyType, "spiffe://example.org/a"),
    ).rejects.toMatchObject({ code: "pki.key.unsupported" });
  });
});
