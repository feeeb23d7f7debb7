import "reflect-metadata";
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { isMeshidError } from "@meshid/errors";
import { createCsr, parseCsr, verifyCsr } from "./csr";
import { exportPkcs8Pem, exportSpkiDer, generateKeyPair, KEY_TYPES } from "./keys";
import { encodePem } from "./pem";

const execFileAsync = promisify(execFile);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isMeshidError(err) ? `${err.kind}/${err.code}` : `not-meshid: ${String(err)}`;
  }
  return undefined;
}

describe("csr", () => {
  test.each(KEY_TYPES)("csr – %s round-trips through DER and PEM", async (type) => {
    const keys = await generateKeyPair(type);
    const der = await createCsr({
      ...keys,
      spiffeId: "spiffe://example.org/web",
      dnsNames: ["web.local"],
    });
    for (const input of [der, encodePem("CERTIFICATE REQUEST", der)]) {
      const parsed = parseCsr(input);
      expect(parsed.keyType).toBe(type);
      expect(Buffer.from(parsed.spkiDer)).toEqual(Buffer.from(exportSpkiDer(keys.publicKey)));
      expect(parsed.publicKey.equals(keys.publicKey)).toBe(true);
      expect(parsed.uris).toEqual(["spiffe://example.org/web"]);
      expect(parsed.dnsNames).toEqual(["web.local"]);
      expect(() => verifyCsr(input)).not.toThrow();
      expect(() => verifyCsr(parsed)).not.toThrow();
    }
    // @peculiar/x509 agrees that it is a valid, self-signed request.
    const req = new x509.Pkcs10CertificateRequest(der);
    expect(await req.verify()).toBe(true);
  });

  test("csr – a request without SANs parses with empty lists", async () => {
    const keys = await generateKeyPair("ec-p256");
    const parsed = parseCsr(await createCsr(keys));
    expect(parsed.uris).toEqual([]);
    expect(parsed.dnsNames).toEqual([]);
  });

  test("csr – requests made by openssl parse and verify", async () => {
    const dir = await mkdtemp(join(tmpdir(), "meshid-pki-csr-"));
    try {
      for (const type of ["ec-p384", "rsa-2048"] as const) {
        const keys = await generateKeyPair(type);
        await writeFile(join(dir, "key.pem"), exportPkcs8Pem(keys.privateKey), { mode: 0o600 });
        await execFileAsync("openssl", [
          "req",
          "-new",
          "-key",
          join(dir, "key.pem"),
          "-subj",
          "/CN=from-openssl",
          "-addext",
          "subjectAltName=URI:spiffe://example.org/openssl,DNS:o.example",
          "-out",
          join(dir, "req.pem"),
        ]);
        const pem = await readFile(join(dir, "req.pem"), "utf8");
        const parsed = parseCsr(pem);
        expect(parsed.keyType).toBe(type);
        expect(parsed.uris).toEqual(["spiffe://example.org/openssl"]);
        expect(parsed.dnsNames).toEqual(["o.example"]);
        expect(() => verifyCsr(pem)).not.toThrow();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("csr – garbage and truncated input are pki.csr.malformed", async () => {
    const keys = await generateKeyPair("ec-p256");
    const der = await createCsr({ ...keys, spiffeId: "spiffe://example.org/web" });
    const bad: (Uint8Array | string)[] = [
      new Uint8Array(0),
      new Uint8Array([0x30]),
      new Uint8Array([1, 2, 3, 4, 5]),
      der.subarray(0, der.length - 1),
      der.subarray(0, 20),
      new Uint8Array([...der, 0]),
      "not a csr",
      "-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n",
      encodePem("CERTIFICATE", der),
    ];
    for (const input of bad) {
      expect(codeOf(() => parseCsr(input))).toBe("invalid_argument/pki.csr.malformed");
      expect(codeOf(() => verifyCsr(input))).toBe("invalid_argument/pki.csr.malformed");
    }
    // A random byte flipped inside the structure either breaks the DER or the signature.
    for (let i = 0; i < der.length; i += 7) {
      const flipped = new Uint8Array(der);
      flipped[i] = (flipped[i] as number) ^ 0x01;
      expect(codeOf(() => verifyCsr(flipped))).toMatch(
        /^invalid_argument\/pki\.(csr\.malformed|csr\.signature|key\.malformed|key\.unsupported)$/,
      );
    }
  });

  test("csr – a wrong signature is pki.csr.signature", async () => {
    const keys = await generateKeyPair("ec-p256");
    const other = await generateKeyPair("ec-p256");
    // Signed by another key than the one it names: no proof of possession.
    const der = await createCsr({ privateKey: other.privateKey, publicKey: keys.publicKey });
    expect(() => parseCsr(der)).not.toThrow();
    expect(codeOf(() => verifyCsr(der))).toBe("invalid_argument/pki.csr.signature");
    // Tampered content (the DNS name) after signing.
    const good = await createCsr({ ...keys, dnsNames: ["aaaa.example"] });
    const tampered = Buffer.from(
      Buffer.from(good).toString("latin1").replace("aaaa", "bbbb"),
      "latin1",
    );
    expect(codeOf(() => verifyCsr(tampered))).toBe("invalid_argument/pki.csr.signature");
    // An RSA signature algorithm over an EC key.
    const rsa = await generateKeyPair("rsa-2048");
    const mixed = await createCsr({ privateKey: rsa.privateKey, publicKey: keys.publicKey });
    expect(codeOf(() => verifyCsr(mixed))).toBe("invalid_argument/pki.csr.signature");
  });

  test("csr – unsupported keys are pki.key.unsupported", async () => {
    const ed = generateKeyPairSync("ed25519");
    await expect(createCsr(ed)).rejects.toMatchObject({ code: "pki.key.unsupported" });
    const p521 = generateKeyPairSync("ec", { namedCurve: "secp521r1" });
    // Sign a P-256 request, then swap in a P-521 key: parsing must refuse the key type.
    const p256 = await generateKeyPair("ec-p256");
    const der = await createCsr({ privateKey: p256.privateKey, publicKey: p521.publicKey });
    expect(codeOf(() => parseCsr(der))).toBe("invalid_argument/pki.key.unsupported");
  });
});
