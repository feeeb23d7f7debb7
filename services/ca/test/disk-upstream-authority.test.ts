import { promises as fs } from "node:fs";
import path from "node:path";
import {
  certificatesToPem,
  createCsr,
  createIntermediateCa,
  createSelfSignedCa,
  createX509SvidIssuer,
  exportPkcs8Pem,
  generateKeyPair,
  readCertificateInfo,
  type CaCertificate,
  type KeyPair,
  type KeyType,
} from "@meshid/pki";
import { createBundle, validateX509Svid } from "@meshid/spiffe";
import { createTempDir, requireBinary, runCommand, type TempDir } from "@meshid/testkit";
import {
  createDiskUpstreamAuthority,
  MINTED_CA_PATH_LEN,
  type CreateDiskUpstreamAuthorityParams,
} from "../src/adapters/disk-upstream-authority";
import {
  createUpstreamAuthority,
  loadUpstreamAuthorityConfig,
} from "../src/adapters/upstream-authority";
import type { UpstreamAuthorityConfig } from "../src/domain/upstream-config";
import type { MintedX509Ca, UpstreamAuthority } from "../src/ports";

const TRUST_DOMAIN = "example.org";
const DAY_SECONDS = 24 * 3600;
const UPSTREAM_TTL_SECONDS = 365 * DAY_SECONDS;

interface Ca {
  readonly keyPair: KeyPair;
  readonly cert: CaCertificate;
}

async function makeRoot(
  pathLen?: number,
  subject = "CN=upstream root, O=acme",
  keyType: KeyType = "ec-p256",
): Promise<Ca> {
  const keyPair = await generateKeyPair(keyType);
  const cert = await createSelfSignedCa({
    keyPair,
    trustDomain: TRUST_DOMAIN,
    subject,
    ttlSeconds: UPSTREAM_TTL_SECONDS,
    now: new Date(),
    ...(pathLen === undefined ? {} : { pathLen }),
  });
  return { keyPair, cert };
}

async function makeIntermediate(
  issuer: Ca,
  pathLen: number | undefined,
  subject = "CN=upstream intermediate, O=acme",
): Promise<Ca> {
  const keyPair = await generateKeyPair("ec-p256");
  const cert = await createIntermediateCa({
    issuer: { certDer: issuer.cert.certDer, privateKey: issuer.keyPair.privateKey },
    publicKey: keyPair.publicKey,
    trustDomain: TRUST_DOMAIN,
    subject,
    ttlSeconds: UPSTREAM_TTL_SECONDS / 2,
    now: new Date(),
    ...(pathLen === undefined ? {} : { pathLen }),
  });
  // createIntermediateCa derives an unset pathLen from the issuer's; force "unset" when asked.
  if (pathLen === undefined) {
    expect(readCertificateInfo(cert.certDer).basicConstraints?.pathLen).toBeUndefined();
  }
  return { keyPair, cert };
}

describe("disk upstream authority", () => {
  let tmp: TempDir;
  let root: Ca;

  beforeAll(async () => {
    root = await makeRoot();
  });

  beforeEach(async () => {
    tmp = await createTempDir("meshid-ca-upstream-");
  });

  afterEach(async () => {
    await tmp.cleanup();
  });

  async function writeFiles(p: {
    certs: readonly CaCertificate[];
    key: KeyPair;
    bundle?: readonly CaCertificate[];
  }): Promise<CreateDiskUpstreamAuthorityParams> {
    const certFilePath = path.join(tmp.path, "upstream.crt");
    const keyFilePath = path.join(tmp.path, "upstream.key");
    await fs.writeFile(certFilePath, certificatesToPem(p.certs.map((c) => c.certDer)));
    await fs.writeFile(keyFilePath, exportPkcs8Pem(p.key.privateKey), { mode: 0o600 });
    if (p.bundle === undefined) return { certFilePath, keyFilePath };
    const bundleFilePath = path.join(tmp.path, "bundle.crt");
    await fs.writeFile(bundleFilePath, certificatesToPem(p.bundle.map((c) => c.certDer)));
    return { certFilePath, keyFilePath, bundleFilePath };
  }

  async function mint(
    upstream: UpstreamAuthority,
    ttlSeconds = 30 * DAY_SECONDS,
  ): Promise<{ minted: MintedX509Ca; caKey: KeyPair }> {
    const caKey = await generateKeyPair("ec-p256");
    const csrDer = await createCsr({
      privateKey: caKey.privateKey,
      publicKey: caKey.publicKey,
      spiffeId: `spiffe://${TRUST_DOMAIN}`,
    });
    return { minted: await upstream.mintX509Ca({ csrDer, ttlSeconds }), caKey };
  }

  /** Issues a leaf under the minted CA; checks it with @meshid/spiffe and `openssl verify`. */
  async function expectLeafVerifies(minted: MintedX509Ca, caKey: KeyPair): Promise<void> {
    const leafKey = await generateKeyPair("ec-p256");
    const now = new Date();
    const issuer = createX509SvidIssuer({
      issuerCertDer: minted.x509CaChain[0]!,
      issuerPrivateKey: caKey.privateKey,
    });
    const leaf = issuer.issue({
      spiffeId: `spiffe://${TRUST_DOMAIN}/ns/default/sa/web`,
      publicKey: leafKey.publicKey,
      ttlSeconds: 3600,
      now,
    });
    const bundle = createBundle({
      trustDomain: TRUST_DOMAIN,
      x509Authorities: minted.upstreamX509Roots,
    });
    const validated = await validateX509Svid({
      chain: [leaf.certDer, ...minted.x509CaChain],
      bundle,
      at: now,
    });
    expect(validated.spiffeId.toString()).toBe(`spiffe://${TRUST_DOMAIN}/ns/default/sa/web`);

    const openssl = requireBinary("openssl", "openssl");
    const dir = path.join(tmp.path, "verify");
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, "roots.pem"), certificatesToPem(minted.upstreamX509Roots));
    await fs.writeFile(path.join(dir, "chain.pem"), certificatesToPem(minted.x509CaChain));
    await fs.writeFile(path.join(dir, "leaf.pem"), certificatesToPem([leaf.certDer]));
    const result = await runCommand(
      openssl,
      ["verify", "-CAfile", "roots.pem", "-untrusted", "chain.pem", "leaf.pem"],
      { cwd: dir },
    );
    expect(`${result.stdout}${result.stderr}`.trim()).toBe("leaf.pem: OK");
    expect(result.code).toBe(0);
  }

  describe("a root used directly", () => {
    it("disk upstream – a self-signed root with pathLen unset mints a CA whose leaves verify", async () => {
      const upstream = await createDiskUpstreamAuthority({
        ...(await writeFiles({ certs: [root.cert], key: root.keyPair })),
        trustDomain: TRUST_DOMAIN,
      });
      const { minted, caKey } = await mint(upstream);
      expect(minted.x509CaChain).toHaveLength(1);
      expect(minted.upstreamX509Roots).toEqual([root.cert.certDer]);
      const info = readCertificateInfo(minted.x509CaChain[0]!);
      expect(info.basicConstraints).toEqual({ ca: true, pathLen: MINTED_CA_PATH_LEN });
      expect(info.uris).toEqual([`spiffe://${TRUST_DOMAIN}`]);
      await expectLeafVerifies(minted, caKey);
      await upstream.close();
    });

    it("disk upstream – accepts a root with pathLen 2", async () => {
      const root2 = await makeRoot(2);
      const upstream = await createDiskUpstreamAuthority(
        await writeFiles({ certs: [root2.cert], key: root2.keyPair }),
      );
      const { minted, caKey } = await mint(upstream);
      await expectLeafVerifies(minted, caKey);
    });

    it("disk upstream – refuses a root with pathLen 1 with the pki message", async () => {
      const root1 = await makeRoot(1);
      const files = await writeFiles({ certs: [root1.cert], key: root1.keyPair });
      const err = await createDiskUpstreamAuthority(files).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "pki.upstream.path_len", kind: "failed_precondition" });
      expect((err as Error).message).toBe(
        "upstream root CA has pathLen 1: pathLen must be 2 or more, or unset",
      );
    });

    it("disk upstream – an RSA root signs an EC CA", async () => {
      const rsaRoot = await makeRoot(undefined, "CN=rsa root, O=acme", "rsa-2048");
      const upstream = await createDiskUpstreamAuthority(
        await writeFiles({ certs: [rsaRoot.cert], key: rsaRoot.keyPair }),
      );
      const { minted, caKey } = await mint(upstream);
      await expectLeafVerifies(minted, caKey);
    });

    it("disk upstream – adds a bundle file's other roots to the upstream roots", async () => {
      const other = await makeRoot(undefined, "CN=other root, O=acme");
      const upstream = await createDiskUpstreamAuthority(
        await writeFiles({ certs: [root.cert], key: root.keyPair, bundle: [other.cert] }),
      );
      const { minted } = await mint(upstream);
      expect(minted.upstreamX509Roots).toEqual([root.cert.certDer, other.cert.certDer]);
    });

    it("disk upstream – refuses extra certificates after a self-signed root", async () => {
      const int = await makeIntermediate(root, 1);
      await expect(
        createDiskUpstreamAuthority(
          await writeFiles({ certs: [root.cert, int.cert], key: root.keyPair }),
        ),
      ).rejects.toMatchObject({ code: "ca.upstream.cert_invalid" });
    });
  });

  describe("an upstream intermediate", () => {
    it.each([
      ["pathLen 1", 1],
      ["pathLen unset", undefined],
    ])(
      "disk upstream – an intermediate with %s mints a CA whose leaves verify",
      async (_name, pathLen) => {
        const int = await makeIntermediate(root, pathLen);
        const upstream = await createDiskUpstreamAuthority({
          ...(await writeFiles({ certs: [int.cert], key: int.keyPair, bundle: [root.cert] })),
          trustDomain: TRUST_DOMAIN,
        });
        const { minted, caKey } = await mint(upstream);
        expect(minted.x509CaChain).toHaveLength(2);
        expect(minted.x509CaChain[1]).toEqual(int.cert.certDer);
        expect(minted.upstreamX509Roots).toEqual([root.cert.certDer]);
        expect(readCertificateInfo(minted.x509CaChain[0]!).basicConstraints).toEqual({
          ca: true,
          pathLen: 0,
        });
        await expectLeafVerifies(minted, caKey);
      },
    );

    it.each([
      [0, "upstream intermediate CA has pathLen 0: pathLen must be 1 or unset"],
      [2, "upstream intermediate CA has pathLen 2: pathLen must be 1 or unset"],
    ])(
      "disk upstream – refuses an intermediate with pathLen %i with the pki message",
      async (pathLen, message) => {
        const int = await makeIntermediate(root, pathLen);
        const files = await writeFiles({
          certs: [int.cert],
          key: int.keyPair,
          bundle: [root.cert],
        });
        const err = await createDiskUpstreamAuthority(files).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: "pki.upstream.path_len", kind: "failed_precondition" });
        expect((err as Error).message).toBe(message);
      },
    );

    it("disk upstream – a cert file with the chain above the intermediate is passed on", async () => {
      const mid = await makeIntermediate(root, undefined, "CN=upstream policy CA, O=acme");
      const int = await makeIntermediate(mid, 1, "CN=upstream issuing CA, O=acme");
      const upstream = await createDiskUpstreamAuthority(
        await writeFiles({ certs: [int.cert, mid.cert], key: int.keyPair, bundle: [root.cert] }),
      );
      const { minted, caKey } = await mint(upstream);
      expect(minted.x509CaChain.slice(1)).toEqual([int.cert.certDer, mid.cert.certDer]);
      await expectLeafVerifies(minted, caKey);
    });

    it("disk upstream – an intermediate needs a bundle file", async () => {
      const int = await makeIntermediate(root, 1);
      const files = await writeFiles({ certs: [int.cert], key: int.keyPair });
      const err = await createDiskUpstreamAuthority(files).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: "ca.upstream.bundle_required",
        kind: "failed_precondition",
      });
      expect((err as Error).message).toContain(files.certFilePath);
    });

    it("disk upstream – refuses a bundle without the root that chains the intermediate", async () => {
      const int = await makeIntermediate(root, 1);
      const stranger = await makeRoot(undefined, "CN=upstream root, O=acme");
      const files = await writeFiles({
        certs: [int.cert],
        key: int.keyPair,
        bundle: [stranger.cert],
      });
      const err = await createDiskUpstreamAuthority(files).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ca.upstream.chain_invalid" });
      expect((err as Error).message).toBe(
        `the upstream certificate chain in ${files.certFilePath} does not chain to any root in bundle_file_path ${files.bundleFilePath}`,
      );
    });

    it("disk upstream – refuses a cert file whose chain is out of order", async () => {
      const mid = await makeIntermediate(root, undefined, "CN=upstream policy CA, O=acme");
      const int = await makeIntermediate(mid, 1, "CN=upstream issuing CA, O=acme");
      const other = await makeIntermediate(root, undefined, "CN=unrelated CA, O=acme");
      await expect(
        createDiskUpstreamAuthority(
          await writeFiles({
            certs: [int.cert, other.cert],
            key: int.keyPair,
            bundle: [root.cert],
          }),
        ),
      ).rejects.toMatchObject({ code: "ca.upstream.chain_invalid" });
    });
  });

  describe("files and keys", () => {
    it("disk upstream – refuses a key that does not match the certificate", async () => {
      const files = await writeFiles({ certs: [root.cert], key: await generateKeyPair("ec-p256") });
      const err = await createDiskUpstreamAuthority(files).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ca.upstream.key_mismatch", kind: "failed_precondition" });
      expect((err as Error).message).toBe(
        `the private key in ${files.keyFilePath} does not match the certificate in ${files.certFilePath}`,
      );
    });

    it("disk upstream – refuses a key file that is not a PEM private key", async () => {
      const files = await writeFiles({ certs: [root.cert], key: root.keyPair });
      await fs.writeFile(
        files.keyFilePath,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      );
      const err = await createDiskUpstreamAuthority(files).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ca.upstream.key_invalid" });
      expect((err as Error).message).not.toContain("AAAA");
    });

    it("disk upstream – refuses a cert file without certificates", async () => {
      const files = await writeFiles({ certs: [root.cert], key: root.keyPair });
      await fs.writeFile(files.certFilePath, "not a certificate\n");
      await expect(createDiskUpstreamAuthority(files)).rejects.toMatchObject({
        code: "ca.upstream.cert_invalid",
        message: `cert_file_path ${files.certFilePath} holds no valid PEM certificate`,
      });
    });

    it("disk upstream – names a missing file", async () => {
      const files = await writeFiles({ certs: [root.cert], key: root.keyPair });
      const missing = path.join(tmp.path, "missing.crt");
      await expect(
        createDiskUpstreamAuthority({ ...files, certFilePath: missing }),
      ).rejects.toMatchObject({
        code: "ca.upstream.file_unreadable",
        message: `cert_file_path ${missing} cannot be read: ENOENT`,
      });
    });

    it("disk upstream – refuses an expired upstream certificate", async () => {
      const files = await writeFiles({ certs: [root.cert], key: root.keyPair });
      const later = new Date(root.cert.notAfter.getTime() + 1000);
      await expect(
        createDiskUpstreamAuthority({ ...files, clock: { now: () => later } }),
      ).rejects.toMatchObject({ code: "ca.upstream.cert_expired" });
    });

    it("disk upstream – refuses a CA certificate that is not a CA", async () => {
      // A leaf as "upstream": pki refuses it as not a CA.
      const leafKey = await generateKeyPair("ec-p256");
      const leaf = createX509SvidIssuer({
        issuerCertDer: root.cert.certDer,
        issuerPrivateKey: root.keyPair.privateKey,
      }).issue({
        spiffeId: `spiffe://${TRUST_DOMAIN}/x`,
        publicKey: leafKey.publicKey,
        ttlSeconds: 3600,
        now: new Date(),
      });
      const files = await writeFiles({ certs: [root.cert], key: leafKey, bundle: [root.cert] });
      await fs.writeFile(files.certFilePath, certificatesToPem([leaf.certDer]));
      await expect(createDiskUpstreamAuthority(files)).rejects.toMatchObject({
        code: "pki.upstream.not_ca",
      });
    });
  });

  describe("minting", () => {
    let upstream: UpstreamAuthority;

    beforeEach(async () => {
      upstream = await createDiskUpstreamAuthority({
        ...(await writeFiles({ certs: [root.cert], key: root.keyPair })),
        trustDomain: TRUST_DOMAIN,
      });
    });

    it("disk upstream – caps the minted CA's notAfter at the upstream certificate's", async () => {
      const { minted } = await mint(upstream, 10 * UPSTREAM_TTL_SECONDS);
      expect(readCertificateInfo(minted.x509CaChain[0]!).notAfter).toEqual(root.cert.notAfter);
    });

    it("disk upstream – the minted CA lives ttlSeconds from the clock's now", async () => {
      const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 3600_000);
      const clocked = await createDiskUpstreamAuthority({
        ...(await writeFiles({ certs: [root.cert], key: root.keyPair })),
        trustDomain: TRUST_DOMAIN,
        clock: { now: () => now },
      });
      const { minted } = await mint(clocked, 2 * DAY_SECONDS);
      const info = readCertificateInfo(minted.x509CaChain[0]!);
      expect(info.notAfter.getTime()).toBe(now.getTime() + 2 * DAY_SECONDS * 1000);
      expect(info.notBefore.getTime()).toBe(now.getTime() - 10_000);
    });

    it("disk upstream – uses the CSR's key and a subject unlike the upstream's", async () => {
      const { minted, caKey } = await mint(upstream);
      const info = readCertificateInfo(minted.x509CaChain[0]!);
      expect(Buffer.from(info.spkiDer)).toEqual(
        caKey.publicKey.export({ type: "spki", format: "der" }),
      );
      expect(Buffer.from(info.subjectNameDer)).not.toEqual(
        Buffer.from(readCertificateInfo(root.cert.certDer).subjectNameDer),
      );
    });

    it("disk upstream – refuses a CSR whose signature does not verify (no proof of possession)", async () => {
      const key = await generateKeyPair("ec-p256");
      const other = await generateKeyPair("ec-p256");
      // The CSR carries `key`'s public key but is signed by `other`.
      const csrDer = await createCsr({ privateKey: other.privateKey, publicKey: key.publicKey });
      await expect(upstream.mintX509Ca({ csrDer, ttlSeconds: 3600 })).rejects.toMatchObject({
        code: "pki.csr.signature",
        kind: "invalid_argument",
      });
    });

    it("disk upstream – refuses a malformed CSR", async () => {
      await expect(
        upstream.mintX509Ca({ csrDer: new Uint8Array([0x30, 0x03, 0x02, 0x01]), ttlSeconds: 3600 }),
      ).rejects.toMatchObject({ code: "pki.csr.malformed" });
    });

    it("disk upstream – refuses a CSR for another trust domain", async () => {
      const key = await generateKeyPair("ec-p256");
      const csrDer = await createCsr({
        privateKey: key.privateKey,
        publicKey: key.publicKey,
        spiffeId: "spiffe://other.org",
      });
      await expect(upstream.mintX509Ca({ csrDer, ttlSeconds: 3600 })).rejects.toMatchObject({
        code: "ca.upstream.csr_trust_domain",
      });
    });

    it("disk upstream – takes the trust domain from the CSR when none is configured", async () => {
      const bare = await createDiskUpstreamAuthority(
        await writeFiles({ certs: [root.cert], key: root.keyPair }),
      );
      const key = await generateKeyPair("ec-p256");
      const csrDer = await createCsr({
        privateKey: key.privateKey,
        publicKey: key.publicKey,
        spiffeId: "spiffe://mesh.internal",
      });
      const minted = await bare.mintX509Ca({ csrDer, ttlSeconds: 3600 });
      expect(readCertificateInfo(minted.x509CaChain[0]!).uris).toEqual(["spiffe://mesh.internal"]);
      const noTd = await createCsr({ privateKey: key.privateKey, publicKey: key.publicKey });
      await expect(bare.mintX509Ca({ csrDer: noTd, ttlSeconds: 3600 })).rejects.toMatchObject({
        code: "ca.upstream.csr_trust_domain",
      });
    });

    it("disk upstream – an aborted signal stops minting", async () => {
      const key = await generateKeyPair("ec-p256");
      const csrDer = await createCsr({ privateKey: key.privateKey, publicKey: key.publicKey });
      const controller = new AbortController();
      controller.abort();
      await expect(
        upstream.mintX509Ca({ csrDer, ttlSeconds: 3600, signal: controller.signal }),
      ).rejects.toMatchObject({ name: "AbortError" });
    });
  });

  describe("from the config file", () => {
    it("disk upstream – loads a YAML config file and creates the disk upstream from it", async () => {
      const int = await makeIntermediate(root, 1);
      const files = await writeFiles({ certs: [int.cert], key: int.keyPair, bundle: [root.cert] });
      const configFile = path.join(tmp.path, "upstream.yaml");
      await fs.writeFile(
        configFile,
        [
          "apiVersion: v1",
          "upstreamAuthority: disk",
          "config:",
          `  cert_file_path: ${files.certFilePath}`,
          `  key_file_path: ${files.keyFilePath}`,
          `  bundle_file_path: ${files.bundleFilePath}`,
          "",
        ].join("\n"),
      );
      const config = await loadUpstreamAuthorityConfig(configFile);
      expect(config).toEqual({ kind: "disk", ...files });
      const upstream = await createUpstreamAuthority(config, { trustDomain: TRUST_DOMAIN });
      const { minted, caKey } = await mint(upstream);
      await expectLeafVerifies(minted, caKey);
    });

    it("disk upstream – the factory passes on the pathLen refusal", async () => {
      const int = await makeIntermediate(root, 0);
      const files = await writeFiles({ certs: [int.cert], key: int.keyPair, bundle: [root.cert] });
      await expect(
        createUpstreamAuthority({ kind: "disk", ...files }, { trustDomain: TRUST_DOMAIN }),
      ).rejects.toThrow("upstream intermediate CA has pathLen 0: pathLen must be 1 or unset");
    });

    it("disk upstream – a config file with problems lists them all with the file", async () => {
      const configFile = path.join(tmp.path, "upstream.json");
      await fs.writeFile(
        configFile,
        JSON.stringify({ apiVersion: "v1", upstreamAuthority: "disk", config: { key: "x" } }),
      );
      const err = await loadUpstreamAuthorityConfig(configFile).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ca.upstream.config_invalid", kind: "invalid_argument" });
      expect((err as Error).message).toBe(
        [
          `invalid upstream authority config file ${configFile} (3 problems):`,
          "  - config.cert_file_path: is required",
          "  - config.key: unknown key (allowed: cert_file_path, key_file_path, bundle_file_path)",
          "  - config.key_file_path: is required",
        ].join("\n"),
      );
    });

    it("disk upstream – a missing config file is a config error naming it", async () => {
      const missing = path.join(tmp.path, "nope.yaml");
      await expect(loadUpstreamAuthorityConfig(missing)).rejects.toMatchObject({
        code: "ca.upstream.config_invalid",
        message: `invalid upstream authority config file ${missing} (1 problem):\n  - (root): the file cannot be read (ENOENT)`,
      });
    });

    it.each<[string, UpstreamAuthorityConfig]>([
      ["aws_pca", { kind: "aws_pca", region: "us-east-1", certificateAuthorityArn: "arn:aws:x" }],
      [
        "awssecret",
        { kind: "awssecret", region: "us-east-1", certFileArn: "arn:c", keyFileArn: "arn:k" },
      ],
      [
        "vault",
        {
          kind: "vault",
          vaultAddr: "https://vault:8200",
          pkiMountPoint: "pki",
          auth: { method: "token", token: "t" },
        },
      ],
      [
        "cert-manager",
        {
          kind: "cert-manager",
          namespace: "meshid",
          issuerName: "ca",
          issuerKind: "Issuer",
          issuerGroup: "cert-manager.io",
        },
      ],
    ])("disk upstream – the factory says the %s adapter is not available", async (kind, config) => {
      await expect(
        createUpstreamAuthority(config, { trustDomain: TRUST_DOMAIN }),
      ).rejects.toMatchObject({
        code: "ca.upstream.unsupported",
        kind: "failed_precondition",
        message: `the ${kind} upstream authority adapter is not available in this version of meshid; only disk is (the ${kind} config was validated but cannot be used yet)`,
      });
    });
  });
});
