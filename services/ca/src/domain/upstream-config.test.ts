import { readFileSync } from "node:fs";
import path from "node:path";
import { isMeshidError } from "@meshid/errors";
import {
  DEFAULT_CERT_MANAGER_ISSUER_GROUP,
  DEFAULT_CERT_MANAGER_ISSUER_KIND,
  DEFAULT_VAULT_APPROLE_AUTH_MOUNT_POINT,
  DEFAULT_VAULT_CERT_AUTH_MOUNT_POINT,
  DEFAULT_VAULT_K8S_AUTH_MOUNT_POINT,
  DEFAULT_VAULT_PKI_MOUNT_POINT,
  parseUpstreamAuthorityConfig,
  UPSTREAM_AUTHORITY_KINDS,
  UpstreamConfigError,
  type UpstreamAuthorityConfig,
} from "./upstream-config";

const SCHEMA_PATH = path.join(__dirname, "../../schemas/upstream-authority.schema.json");
const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as Record<string, unknown>;
const SOURCE = "/etc/meshid/upstream.yaml";

function parse(text: string): UpstreamAuthorityConfig {
  return parseUpstreamAuthorityConfig({ text, source: SOURCE, schema });
}

function problemsOf(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamConfigError);
    expect(isMeshidError(err, "ca.upstream.config_invalid")).toBe(true);
    expect((err as UpstreamConfigError).kind).toBe("invalid_argument");
    for (const p of (err as UpstreamConfigError).problems) expect(p.source).toBe(SOURCE);
    return (err as UpstreamConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error("expected the config to be refused");
}

function yaml(kind: string, config: string): string {
  return `apiVersion: v1\nupstreamAuthority: ${kind}\nconfig:\n${config
    .trim()
    .split("\n")
    .map((l) => `  ${l.trim().replace(/^> ?/, "  ")}`)
    .join("\n")}\n`;
}

describe("upstream config", () => {
  it("upstream config – parses a disk config", () => {
    expect(
      parse(
        "apiVersion: v1\nupstreamAuthority: disk\nconfig:\n  cert_file_path: /certs/ca.pem\n  key_file_path: /certs/ca.key\n",
      ),
    ).toEqual({ kind: "disk", certFilePath: "/certs/ca.pem", keyFilePath: "/certs/ca.key" });
  });

  it("upstream config – parses a disk config with a bundle, written as JSON", () => {
    const text = JSON.stringify({
      apiVersion: "v1",
      upstreamAuthority: "disk",
      config: {
        cert_file_path: "/c/int.pem",
        key_file_path: "/c/int.key",
        bundle_file_path: "/c/root.pem",
      },
    });
    expect(parse(text)).toEqual({
      kind: "disk",
      certFilePath: "/c/int.pem",
      keyFilePath: "/c/int.key",
      bundleFilePath: "/c/root.pem",
    });
  });

  it("upstream config – parses aws_pca with every optional field", () => {
    const cfg = parse(
      yaml(
        "aws_pca",
        `region: us-west-2
        certificate_authority_arn: arn:aws:acm-pca:us-west-2:123:certificate-authority/abc
        ca_signing_template_arn: arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1
        signing_algorithm: SHA256WITHECDSA
        assume_role_arn: arn:aws:iam::123:role/meshid
        endpoint: https://acm-pca.us-west-2.amazonaws.com
        supplemental_bundle_path: /extra/roots.pem`,
      ),
    );
    expect(cfg).toEqual({
      kind: "aws_pca",
      region: "us-west-2",
      certificateAuthorityArn: "arn:aws:acm-pca:us-west-2:123:certificate-authority/abc",
      caSigningTemplateArn: "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1",
      signingAlgorithm: "SHA256WITHECDSA",
      assumeRoleArn: "arn:aws:iam::123:role/meshid",
      endpoint: "https://acm-pca.us-west-2.amazonaws.com",
      supplementalBundlePath: "/extra/roots.pem",
    });
  });

  it("upstream config – parses awssecret", () => {
    const cfg = parse(
      yaml(
        "awssecret",
        `region: eu-west-1
        cert_file_arn: arn:aws:secretsmanager:eu-west-1:1:secret:cert
        key_file_arn: arn:aws:secretsmanager:eu-west-1:1:secret:key
        bundle_file_arn: arn:aws:secretsmanager:eu-west-1:1:secret:bundle
        access_key_id: AKIDEXAMPLE
        secret_access_key: very-secret
        secret_token: tok
        assume_role_arn: arn:aws:iam::1:role/r`,
      ),
    );
    expect(cfg).toEqual({
      kind: "awssecret",
      region: "eu-west-1",
      certFileArn: "arn:aws:secretsmanager:eu-west-1:1:secret:cert",
      keyFileArn: "arn:aws:secretsmanager:eu-west-1:1:secret:key",
      bundleFileArn: "arn:aws:secretsmanager:eu-west-1:1:secret:bundle",
      accessKeyId: "AKIDEXAMPLE",
      secretAccessKey: "very-secret",
      secretToken: "tok",
      assumeRoleArn: "arn:aws:iam::1:role/r",
    });
  });

  it("upstream config – vault defaults pki_mount_point to pki", () => {
    const cfg = parse(
      yaml(
        "vault",
        `vault_addr: https://vault.example.org:8200
        token_auth:
        >  token: s.abcdef`,
      ),
    );
    expect(cfg).toEqual({
      kind: "vault",
      vaultAddr: "https://vault.example.org:8200",
      pkiMountPoint: "pki",
      auth: { method: "token", token: "s.abcdef" },
    });
  });

  it.each([
    [
      "cert_auth",
      `cert_auth:
      >  client_cert_path: /c/client.pem
      >  client_key_path: /c/client.key`,
      {
        method: "cert",
        certAuthMountPoint: DEFAULT_VAULT_CERT_AUTH_MOUNT_POINT,
        clientCertPath: "/c/client.pem",
        clientKeyPath: "/c/client.key",
      },
    ],
    [
      "approle_auth",
      `approle_auth:
      >  approle_id: role
      >  approle_secret_id: secret`,
      {
        method: "approle",
        approleAuthMountPoint: DEFAULT_VAULT_APPROLE_AUTH_MOUNT_POINT,
        approleId: "role",
        approleSecretId: "secret",
      },
    ],
    [
      "k8s_auth",
      `k8s_auth:
      >  k8s_auth_role_name: meshid
      >  token_path: /var/run/secrets/tokens/vault`,
      {
        method: "k8s",
        k8sAuthMountPoint: DEFAULT_VAULT_K8S_AUTH_MOUNT_POINT,
        k8sAuthRoleName: "meshid",
        tokenPath: "/var/run/secrets/tokens/vault",
      },
    ],
  ])("upstream config – vault with %s", (_name, auth, expected) => {
    const cfg = parse(
      yaml(
        "vault",
        `vault_addr: http://127.0.0.1:8200
        pki_mount_point: meshid-pki
        ca_cert_path: /c/vault-ca.pem
        namespace: team-a
        ${auth}`,
      ),
    );
    expect(cfg).toEqual({
      kind: "vault",
      vaultAddr: "http://127.0.0.1:8200",
      pkiMountPoint: "meshid-pki",
      caCertPath: "/c/vault-ca.pem",
      namespace: "team-a",
      auth: expected,
    });
  });

  it("upstream config – vault cert_auth keeps a given mount point and role", () => {
    const cfg = parse(
      yaml(
        "vault",
        `vault_addr: https://v:8200
        cert_auth:
        >  cert_auth_mount_point: tls
        >  cert_auth_role_name: meshid
        >  client_cert_path: /c.pem
        >  client_key_path: /c.key`,
      ),
    );
    expect(cfg.kind === "vault" && cfg.auth).toEqual({
      method: "cert",
      certAuthMountPoint: "tls",
      certAuthRoleName: "meshid",
      clientCertPath: "/c.pem",
      clientKeyPath: "/c.key",
    });
  });

  it("upstream config – cert-manager defaults issuer_kind and issuer_group", () => {
    expect(parse(yaml("cert-manager", "namespace: meshid\nissuer_name: ca-issuer"))).toEqual({
      kind: "cert-manager",
      namespace: "meshid",
      issuerName: "ca-issuer",
      issuerKind: "Issuer",
      issuerGroup: "cert-manager.io",
    });
  });

  it("upstream config – cert-manager keeps given issuer kind, group and kubeconfig", () => {
    expect(
      parse(
        yaml(
          "cert-manager",
          `namespace: meshid
          issuer_name: root
          issuer_kind: ClusterIssuer
          issuer_group: example.io
          kube_config_file: /k/config`,
        ),
      ),
    ).toEqual({
      kind: "cert-manager",
      namespace: "meshid",
      issuerName: "root",
      issuerKind: "ClusterIssuer",
      issuerGroup: "example.io",
      kubeConfigFile: "/k/config",
    });
  });

  it("upstream config – the schema's defaults and kinds match the code", () => {
    const defs = schema.$defs as Record<
      string,
      {
        properties: Record<
          string,
          { default?: string; properties?: Record<string, { default?: string }> }
        >;
      }
    >;
    expect(Object.keys(defs).sort()).toEqual([...UPSTREAM_AUTHORITY_KINDS].sort());
    expect(defs.vault?.properties.pki_mount_point?.default).toBe(DEFAULT_VAULT_PKI_MOUNT_POINT);
    expect(defs["cert-manager"]?.properties.issuer_kind?.default).toBe(
      DEFAULT_CERT_MANAGER_ISSUER_KIND,
    );
    expect(defs["cert-manager"]?.properties.issuer_group?.default).toBe(
      DEFAULT_CERT_MANAGER_ISSUER_GROUP,
    );
    const vault = defs.vault?.properties;
    expect(vault?.cert_auth?.properties?.cert_auth_mount_point?.default).toBe(
      DEFAULT_VAULT_CERT_AUTH_MOUNT_POINT,
    );
    expect(vault?.approle_auth?.properties?.approle_auth_mount_point?.default).toBe(
      DEFAULT_VAULT_APPROLE_AUTH_MOUNT_POINT,
    );
    expect(vault?.k8s_auth?.properties?.k8s_auth_mount_point?.default).toBe(
      DEFAULT_VAULT_K8S_AUTH_MOUNT_POINT,
    );
  });

  it("upstream config – lists every problem at once with the file and JSON path", () => {
    const err = (() => {
      try {
        parse(
          `apiVersion: v2\nupstreamAuthority: disk\nconfig:\n  cert_file_path: ""\n  keyfile: /x\n`,
        );
      } catch (e) {
        return e as UpstreamConfigError;
      }
      throw new Error("expected a refusal");
    })();
    expect(err.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'apiVersion: must be "v1"',
      "config.cert_file_path: must not be empty",
      "config.key_file_path: is required",
      "config.keyfile: unknown key (allowed: cert_file_path, key_file_path, bundle_file_path)",
    ]);
    expect(err.message).toBe(
      [
        `invalid upstream authority config file ${SOURCE} (4 problems):`,
        '  - apiVersion: must be "v1"',
        "  - config.cert_file_path: must not be empty",
        "  - config.key_file_path: is required",
        "  - config.keyfile: unknown key (allowed: cert_file_path, key_file_path, bundle_file_path)",
      ].join("\n"),
    );
  });

  it.each<[string, string, string[]]>([
    [
      "missing top-level keys",
      "upstreamAuthority: disk\n",
      ["apiVersion: is required", "config: is required"],
    ],
    [
      "an unknown kind",
      "apiVersion: v1\nupstreamAuthority: spire\nconfig: {}\n",
      ["upstreamAuthority: must be one of disk, aws_pca, awssecret, vault, cert-manager"],
    ],
    [
      "an unknown top-level key",
      "apiVersion: v1\nupstreamAuthority: disk\nconfig: {cert_file_path: a, key_file_path: b}\nextra: 1\n",
      ["extra: unknown key (allowed: apiVersion, upstreamAuthority, config)"],
    ],
    [
      "config not an object",
      "apiVersion: v1\nupstreamAuthority: disk\nconfig: [a]\n",
      ["config: must be an object"],
    ],
    [
      "a mistyped value",
      "apiVersion: v1\nupstreamAuthority: disk\nconfig: {cert_file_path: 3, key_file_path: b}\n",
      ["config.cert_file_path: must be a string"],
    ],
    [
      "aws_pca without region and with a bad ARN",
      "apiVersion: v1\nupstreamAuthority: aws_pca\nconfig: {certificate_authority_arn: ca-1, signing_algorithm: MD5}\n",
      [
        "config.certificate_authority_arn: must match the pattern ^arn:",
        "config.region: is required",
        "config.signing_algorithm: must be one of SHA256WITHECDSA, SHA384WITHECDSA, SHA512WITHECDSA, SHA256WITHRSA, SHA384WITHRSA, SHA512WITHRSA",
      ],
    ],
    [
      "awssecret without key ARN",
      "apiVersion: v1\nupstreamAuthority: awssecret\nconfig: {region: r, cert_file_arn: 'arn:x'}\n",
      ["config.key_file_arn: is required"],
    ],
    [
      "vault without an auth method",
      "apiVersion: v1\nupstreamAuthority: vault\nconfig: {vault_addr: 'https://v'}\n",
      ["config: must set exactly one of token_auth, cert_auth, approle_auth, k8s_auth"],
    ],
    [
      "vault with two auth methods",
      "apiVersion: v1\nupstreamAuthority: vault\nconfig: {vault_addr: 'https://v', token_auth: {token: t}, k8s_auth: {k8s_auth_role_name: r, token_path: /t}}\n",
      [
        "config: must set exactly one of token_auth, cert_auth, approle_auth, k8s_auth, not several (token_auth, k8s_auth)",
      ],
    ],
    [
      "vault with an incomplete auth method and no address",
      "apiVersion: v1\nupstreamAuthority: vault\nconfig: {approle_auth: {approle_id: a}}\n",
      ["config.approle_auth.approle_secret_id: is required", "config.vault_addr: is required"],
    ],
    [
      "vault with a non-URL address",
      "apiVersion: v1\nupstreamAuthority: vault\nconfig: {vault_addr: vault:8200, token_auth: {token: t}}\n",
      ["config.vault_addr: must match the pattern ^https?://"],
    ],
    [
      "cert-manager without issuer_name",
      "apiVersion: v1\nupstreamAuthority: cert-manager\nconfig: {namespace: meshid, issuer_kind: ''}\n",
      ["config.issuer_kind: must not be empty", "config.issuer_name: is required"],
    ],
    ["an empty file", "", [": the file is empty"]],
    ["a scalar document", "just text\n", [": must be an object"]],
  ])("upstream config – refuses %s", (_name, text, expected) => {
    expect(problemsOf(text)).toEqual(expected);
  });

  it("upstream config – a YAML syntax error names the line but not the content", () => {
    const problems = problemsOf(
      "apiVersion: v1\nupstreamAuthority: vault\nconfig:\n  token_auth: {token: s3cr3t-value\n",
    );
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/^: YAML syntax error \([A-Z_]+\) at line \d+, column \d+$/);
    expect(problems.join("\n")).not.toContain("s3cr3t");
  });

  it("upstream config – a duplicate key is a YAML error", () => {
    expect(problemsOf("apiVersion: v1\napiVersion: v1\n")[0]).toMatch(/DUPLICATE_KEY/);
  });

  it("upstream config – problems never quote secret values", () => {
    const text =
      "apiVersion: v1\nupstreamAuthority: vault\nconfig: {vault_addr: 'https://v', token_auth: {token: 7}, approle_auth: {approle_id: a, approle_secret_id: topsecret, x: 1}}\n";
    const problems = problemsOf(text).join("\n");
    expect(problems).not.toContain("topsecret");
  });
});
