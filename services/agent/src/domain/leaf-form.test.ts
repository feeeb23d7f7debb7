import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createTempDir, createTestCa, requireBinary, runCommand } from "@meshid/testkit";
import { loadLeaf, storeLeaf } from "./leaf-form";

describe("leaf form", () => {
  it("leaf form – a leaf keeps its own TLVs only, shares its form with its authority's leaves, and comes back byte for byte", async () => {
    const ca = await createTestCa();
    const intermediate = await ca.issueIntermediate();
    const longPath = `/${"a".repeat(150)}`; // a SAN over 127 bytes: long-form lengths
    const forms = new Map<unknown, number>();
    for (const signer of [ca, intermediate]) {
      for (const keyType of ["ec-p256", "ec-p384", "rsa-2048"] as const) {
        for (const path of ["/w1", "/w2", longPath]) {
          const svid = await signer.issueSvid({ spiffeId: `spiffe://example.org${path}`, keyType });
          const leaf = svid.certChainDer[0]!;
          const stored = storeLeaf(leaf);
          expect(stored.form).toBeDefined();
          // Version, signature algorithm ×2, issuer, subject and four extensions are shared.
          expect(leaf.length - stored.bytes.length).toBeGreaterThan(150);
          expect(loadLeaf(stored).equals(Buffer.from(leaf))).toBe(true);
          forms.set(stored.form, (forms.get(stored.form) ?? 0) + 1);
        }
      }
    }
    // Per authority, one form for its EC leaves (the SPKI is each leaf's own) and one for its
    // RSA leaves (whose key usage adds keyEncipherment).
    expect([...forms.values()].sort()).toEqual([3, 3, 6, 6]);
  });

  it("leaf form – leaves that name their workload in the subject still share one form", async () => {
    const openssl = requireBinary("openssl", "openssl");
    const dir = await createTempDir("leaf-form-");
    try {
      const run = async (args: string[]): Promise<void> => {
        const r = await runCommand(openssl, args, { cwd: dir.path });
        expect(r).toMatchObject({ code: 0 });
      };
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
      await run([
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=ca",
        "-days",
        "1",
      ]);
      const stored = [];
      for (const [i, name] of ["a", "b"].entries()) {
        await writeFile(
          join(dir.path, `${name}.ext`),
          "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
            `subjectAltName=URI:spiffe://example.org/${name}\n`,
        );
        await run([
          "req",
          "-new",
          ...ec,
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.csr`,
          "-subj",
          `/O=meshid/CN=${name}`,
        ]);
        await run([
          "x509",
          "-req",
          "-in",
          `${name}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca.key",
          "-set_serial",
          String(1000 + i),
          "-days",
          "1",
          "-extfile",
          `${name}.ext`,
          "-outform",
          "DER",
          "-out",
          `${name}.der`,
        ]);
        const der = await readFile(join(dir.path, `${name}.der`));
        const leaf = storeLeaf(der);
        expect(loadLeaf(leaf).equals(der)).toBe(true);
        stored.push(leaf);
      }
      expect(stored[0]!.form).toBeDefined();
      expect(stored[0]!.form).toBe(stored[1]!.form);
    } finally {
      await dir.cleanup();
    }
  });

  it("leaf form – DER whose lengths would not come back as written, and non-certificates, are kept whole", async () => {
    const ca = await createTestCa();
    const leaf = Buffer.from(
      (await ca.issueSvid({ spiffeId: "spiffe://example.org/w" })).certChainDer[0]!,
    );
    expect(leaf.subarray(0, 2)).toEqual(Buffer.from([0x30, 0x82]));
    expect(leaf.subarray(4, 6)).toEqual(Buffer.from([0x30, 0x82]));
    // The TBSCertificate's length in three bytes where two do (BER, not DER).
    const tbsLength = leaf.readUInt16BE(6);
    const loose = Buffer.concat([
      Buffer.from([0x30, 0x82, 0, 0, 0x30, 0x83, 0x00]),
      leaf.subarray(6, 8),
      leaf.subarray(8),
    ]);
    loose.writeUInt16BE(leaf.readUInt16BE(2) + 1, 2);
    expect(loose.readUInt16BE(7)).toBe(tbsLength);
    for (const der of [loose, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]), Buffer.from([0x04])]) {
      const stored = storeLeaf(der);
      expect(stored.form).toBeUndefined();
      expect(stored.bytes).toBe(der.toString("latin1"));
      expect(loadLeaf(stored).equals(der)).toBe(true);
    }
  });
});
