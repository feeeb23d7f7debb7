import { generateKeyPairSync } from "node:crypto";
import { type Bundle, type JwtAuthority, bundleDer, bundleFromDer, createBundle } from "./bundle";
import { bundleFromJwks, bundleToJwks } from "./bundle-jwks";
import { bundleFromPem, bundleToPem } from "./bundle-pem";
import { splitDerCertificates } from "./der-certificates";
import { expectMeshidError } from "./testing/expect-error";
import { type TestCert, createTestCa } from "./testing/test-pki";
import { parseTrustDomain } from "./trust-domain";

let ecCa: TestCert;
let rsaCa: TestCert;
let ec384Ca: TestCert;
let ecJwt: JwtAuthority;
let rsaJwt: JwtAuthority;
let ed25519Jwt: JwtAuthority;

function spki(type: "ec" | "rsa" | "ed25519"): Uint8Array {
  const { publicKey } =
    type === "ec"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : type === "rsa"
        ? generateKeyPairSync("rsa", { modulusLength: 2048 })
        : generateKeyPairSync("ed25519");
  return new Uint8Array(publicKey.export({ format: "der", type: "spki" }));
}

beforeAll(async () => {
  ecCa = await createTestCa({ name: "ec" });
  rsaCa = await createTestCa({ name: "rsa", keyType: "rsa-2048" });
  ec384Ca = await createTestCa({ name: "ec384", keyType: "ec-p384" });
  ecJwt = { keyId: "ec-key", publicKey: spki("ec") };
  rsaJwt = { keyId: "rsa-key", publicKey: spki("rsa") };
  ed25519Jwt = { keyId: "ed-key", publicKey: spki("ed25519") };
});

function fullBundle(): Bundle {
  return createBundle({
    trustDomain: "example.org",
    x509Authorities: [ecCa.der, rsaCa.der, ec384Ca.der],
    jwtAuthorities: [ecJwt, rsaJwt, ed25519Jwt],
    sequenceNumber: 42,
    refreshHintSeconds: 300,
  });
}

function expectSameBundle(a: Bundle, b: Bundle): void {
  expect(a.trustDomain.name).toBe(b.trustDomain.name);
  expect(a.x509Authorities.map((d) => Buffer.from(d).toString("hex"))).toEqual(
    b.x509Authorities.map((d) => Buffer.from(d).toString("hex")),
  );
  expect(a.jwtAuthorities.map((j) => [j.keyId, Buffer.from(j.publicKey).toString("hex")])).toEqual(
    b.jwtAuthorities.map((j) => [j.keyId, Buffer.from(j.publicKey).toString("hex")]),
  );
  expect(a.sequenceNumber).toBe(b.sequenceNumber);
  expect(a.refreshHintSeconds).toBe(b.refreshHintSeconds);
}

describe("createBundle – validation", () => {
  it("applies defaults, copies bytes and freezes", () => {
    const der = Uint8Array.from(ecCa.der);
    const b = createBundle({ trustDomain: "spiffe://example.org", x509Authorities: [der] });
    expect(b.trustDomain.equals(parseTrustDomain("example.org"))).toBe(true);
    expect(b.sequenceNumber).toBe(0);
    expect(b.refreshHintSeconds).toBe(0);
    expect(b.jwtAuthorities).toEqual([]);
    der[10] = (der[10] ?? 0) ^ 0xff;
    expect(b.x509Authorities[0]).toEqual(ecCa.der);
    expect(Object.isFrozen(b)).toBe(true);
    expect(Object.isFrozen(b.x509Authorities)).toBe(true);
  });

  it.each([
    [{ sequenceNumber: -1 }, "sequence"],
    [{ sequenceNumber: 1.5 }, "sequence"],
    [{ refreshHintSeconds: -5 }, "refresh-hint"],
    [{ x509Authorities: [new Uint8Array([0x30, 0x03, 1, 2, 3])] }, "certificate"],
    [{ x509Authorities: [new Uint8Array([1, 2, 3])] }, "certificate"],
    [{ jwtAuthorities: [{ keyId: "", publicKey: new Uint8Array() }] }, "jwt-key-id"],
    [{ jwtAuthorities: [{ keyId: "k", publicKey: new Uint8Array([1, 2]) }] }, "jwt-key"],
  ])("rejects %j with rule %s", (extra, rule) => {
    expectMeshidError(() => createBundle({ trustDomain: "example.org", ...extra }), {
      code: "spiffe.bundle.invalid",
      rule,
    });
  });

  it("rejects two certificates in one authority and duplicate key IDs", () => {
    const two = new Uint8Array([...ecCa.der, ...rsaCa.der]);
    expectMeshidError(() => createBundle({ trustDomain: "example.org", x509Authorities: [two] }), {
      code: "spiffe.bundle.invalid",
      rule: "certificate",
      message: "holds 2 certificates",
    });
    expectMeshidError(
      () => createBundle({ trustDomain: "example.org", jwtAuthorities: [ecJwt, ecJwt] }),
      { code: "spiffe.bundle.invalid", rule: "jwt-key-id-duplicate" },
    );
  });
});

describe("splitDerCertificates – ASN.1 walking", () => {
  it("splits concatenated certificates and round-trips bundleDer", () => {
    const b = fullBundle();
    const parts = splitDerCertificates(bundleDer(b));
    expect(parts).toEqual([ecCa.der, rsaCa.der, ec384Ca.der]);
    expectSameBundle(
      bundleFromDer("example.org", bundleDer(b), {
        jwtAuthorities: b.jwtAuthorities,
        sequenceNumber: 42,
        refreshHintSeconds: 300,
      }),
      b,
    );
  });

  it("returns an empty list for an empty buffer", () => {
    expect(splitDerCertificates(new Uint8Array())).toEqual([]);
  });

  it("handles short-form lengths", () => {
    expect(splitDerCertificates(new Uint8Array([0x30, 0x01, 0x05, 0x30, 0x00]))).toEqual([
      new Uint8Array([0x30, 0x01, 0x05]),
      new Uint8Array([0x30, 0x00]),
    ]);
  });

  it.each([
    ["trailing garbage", [...[0x30, 0x00], 0x01], "der-tag"],
    ["a truncated certificate", [0x30, 0x82, 0x01, 0x00, 0x00], "der-truncated"],
    ["a trailing partial header", [0x30, 0x00, 0x30], "der-truncated"],
    ["a cut-short long length", [0x30, 0x82, 0x01], "der-truncated"],
    ["an indefinite length", [0x30, 0x80, 0x00, 0x00], "der-length"],
    ["a 5-octet length", [0x30, 0x85, 1, 1, 1, 1, 1], "der-length"],
    ["a non-SEQUENCE", [0x04, 0x00], "der-tag"],
  ])("rejects %s", (_what, bytes, rule) => {
    expectMeshidError(() => splitDerCertificates(new Uint8Array(bytes)), {
      code: "spiffe.der.invalid",
      rule,
    });
  });

  it("rejects a real certificate followed by garbage with its offset", () => {
    const buf = new Uint8Array([...ecCa.der, 0x30, 0x10, 0x00]);
    const err = expectMeshidError(() => splitDerCertificates(buf), {
      code: "spiffe.der.invalid",
      rule: "der-truncated",
    });
    expect(err.details.offset).toBe(ecCa.der.length);
    expectMeshidError(() => bundleFromDer("example.org", buf), {
      code: "spiffe.bundle.invalid",
      rule: "der",
    });
  });
});

describe("bundle PEM – round trip and rejection", () => {
  it("round-trips EC and RSA authorities", () => {
    const b = fullBundle();
    const pem = bundleToPem(b);
    expect(pem.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(3);
    expect(pem.split("\n").every((line) => line.length <= 64)).toBe(true);
    const back = bundleFromPem("example.org", pem, {
      jwtAuthorities: b.jwtAuthorities,
      sequenceNumber: 42,
      refreshHintSeconds: 300,
    });
    expectSameBundle(back, b);
  });

  it("accepts CRLF line ends, surrounding whitespace and empty input", () => {
    const pem = "\n" + bundleToPem(fullBundle()).replace(/\n/g, "\r\n") + "\n\n";
    expect(bundleFromPem("example.org", pem).x509Authorities).toHaveLength(3);
    expect(bundleFromPem("example.org", "  \n").x509Authorities).toEqual([]);
  });

  const cert = () =>
    bundleToPem(createBundle({ trustDomain: "example.org", x509Authorities: [ecCa.der] }));

  it.each([
    ["garbage text", () => "hello world", "pem-garbage"],
    ["text before a block", () => "junk\n" + cert(), "pem-garbage"],
    ["text after a block", () => cert() + "junk\n", "pem-garbage"],
    ["an unterminated block", () => "-----BEGIN CERTIFICATE-----\nAAAA\n", "pem-garbage"],
    [
      "a private key block",
      () => cert() + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      "pem-label",
    ],
    [
      "mismatched labels",
      () => "-----BEGIN CERTIFICATE-----\nAAAA\n-----END PUBLIC KEY-----\n",
      "pem-garbage",
    ],
    [
      "bad base64",
      () => "-----BEGIN CERTIFICATE-----\nA*A=\n-----END CERTIFICATE-----\n",
      "pem-encoding",
    ],
    [
      "an empty block",
      () => "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
      "pem-encoding",
    ],
    [
      "a block that is not a certificate",
      () => "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
      "certificate",
    ],
  ])("rejects %s", (_what, make, rule) => {
    expectMeshidError(() => bundleFromPem("example.org", make()), {
      code: "spiffe.bundle.invalid",
      rule,
    });
  });
});

describe("bundle JWKS – round trip", () => {
  it("round-trips EC, RSA and Ed25519 authorities with sequence and refresh hint", () => {
    const b = fullBundle();
    const back = bundleFromJwks("example.org", bundleToJwks(b));
    expectSameBundle(back, b);
    expectSameBundle(bundleFromJwks("example.org", Buffer.from(bundleToJwks(b))), b);
  });

  it("writes the SPIFFE JWKS shape", () => {
    const doc = JSON.parse(bundleToJwks(fullBundle())) as {
      keys: Array<Record<string, unknown>>;
      spiffe_sequence: number;
      spiffe_refresh_hint: number;
    };
    expect(doc.spiffe_sequence).toBe(42);
    expect(doc.spiffe_refresh_hint).toBe(300);
    const [ec, rsa, ec384, jwtEc, jwtRsa, jwtEd] = doc.keys;
    expect(ec).toEqual({
      use: "x509-svid",
      kty: "EC",
      crv: "P-256",
      x: expect.any(String) as unknown,
      y: expect.any(String) as unknown,
      x5c: [Buffer.from(ecCa.der).toString("base64")],
    });
    expect(Object.keys(rsa ?? {}).sort()).toEqual(["e", "kty", "n", "use", "x5c"]);
    expect(rsa?.kty).toBe("RSA");
    expect(ec384?.crv).toBe("P-384");
    expect(ec).not.toHaveProperty("kid");
    expect(jwtEc).toMatchObject({ use: "jwt-svid", kid: "ec-key", kty: "EC", crv: "P-256" });
    expect(jwtRsa).toMatchObject({ use: "jwt-svid", kid: "rsa-key", kty: "RSA" });
    expect(jwtEd).toMatchObject({ use: "jwt-svid", kid: "ed-key", kty: "OKP", crv: "Ed25519" });
    expect(jwtEc).not.toHaveProperty("d");
  });

  it("omits a zero refresh hint and reads missing optional members as 0", () => {
    const b = createBundle({ trustDomain: "example.org" });
    expect(bundleToJwks(b)).toBe('{"keys":[],"spiffe_sequence":0}');
    const back = bundleFromJwks("example.org", '{"keys":[]}');
    expect(back.sequenceNumber).toBe(0);
    expect(back.refreshHintSeconds).toBe(0);
  });

  it("skips keys with an unknown use", () => {
    const back = bundleFromJwks(
      "example.org",
      JSON.stringify({ keys: [{ use: "future-svid", kty: "EC" }] }),
    );
    expect(back.x509Authorities).toEqual([]);
    expect(back.jwtAuthorities).toEqual([]);
  });
});

describe("bundle JWKS – rejection", () => {
  type Key = Record<string, unknown>;
  const keysOf = (): Key[] => (JSON.parse(bundleToJwks(fullBundle())) as { keys: Key[] }).keys;
  const withKey = (mutate: (x509Key: Key, jwtKey: Key) => void): string => {
    const keys = keysOf();
    mutate(keys[0]!, keys[3]!);
    return JSON.stringify({ keys, spiffe_sequence: 1 });
  };

  it.each<[string, () => string, string]>([
    ["invalid JSON", () => "{", "json"],
    ["a non-object", () => "[]", "json"],
    ["missing keys", () => "{}", "keys"],
    ["keys not an array", () => '{"keys":{}}', "keys"],
    ["a negative sequence", () => '{"keys":[],"spiffe_sequence":-1}', "sequence"],
    ["a string sequence", () => '{"keys":[],"spiffe_sequence":"1"}', "sequence"],
    ["a fractional refresh hint", () => '{"keys":[],"spiffe_refresh_hint":1.5}', "refresh-hint"],
    ["a key that is not an object", () => '{"keys":[1]}', "key"],
    ["a key without use", () => withKey((k) => delete k.use), "use"],
    ["a key without kty", () => withKey((k) => delete k.kty), "key"],
    ["x509 key without x5c", () => withKey((k) => delete k.x5c), "x5c-count"],
    ["x509 key with two x5c", () => withKey((k) => (k.x5c = [k.x5c, k.x5c].flat())), "x5c-count"],
    ["x509 key with empty x5c", () => withKey((k) => (k.x5c = [])), "x5c-count"],
    [
      "x509 key with base64url x5c",
      () =>
        withKey(
          (k) => (k.x5c = [(k.x5c as string[])[0]!.replace(/\+/g, "-").replace(/\//g, "_") + "-"]),
        ),
      "x5c-encoding",
    ],
    [
      "x509 key with a non-certificate x5c",
      () => withKey((k) => (k.x5c = ["MAMCAQE="])),
      "certificate",
    ],
    ["x509 key with a kid", () => withKey((k) => (k.kid = "x")), "x509-kid"],
    ["x509 key whose x does not match", () => withKey((k) => (k.x = "AAAA")), "key-mismatch"],
    ["x509 key with the wrong kty", () => withKey((k) => (k.kty = "RSA")), "key-mismatch"],
    ["x509 key with private material", () => withKey((k) => (k.d = "AAAA")), "private-key"],
    ["jwt key without kid", () => withKey((_x, j) => delete j.kid), "jwt-key-id"],
    ["jwt key with empty kid", () => withKey((_x, j) => (j.kid = "")), "jwt-key-id"],
    [
      "jwt key with a repeated kid",
      () => withKey((_x, j) => (j.kid = "rsa-key")),
      "jwt-key-id-duplicate",
    ],
    ["jwt key with a broken point", () => withKey((_x, j) => (j.x = "AAAA")), "jwt-key"],
    ["jwt key with an unknown kty", () => withKey((_x, j) => (j.kty = "XYZ")), "jwt-key"],
    ["jwt key with private material", () => withKey((_x, j) => (j.d = "AAAA")), "private-key"],
    ["a symmetric jwt key", () => withKey((_x, j) => (j.k = "AAAA")), "private-key"],
  ])("rejects %s", (_what, make, rule) => {
    expectMeshidError(() => bundleFromJwks("example.org", make()), {
      code: "spiffe.bundle.invalid",
      rule,
    });
  });

  it("names the key index in the message and details", () => {
    const err = expectMeshidError(
      () =>
        bundleFromJwks(
          "example.org",
          withKey((_x, j) => delete j.kid),
        ),
      { code: "spiffe.bundle.invalid", rule: "jwt-key-id", message: "key 3:" },
    );
    expect(err.details.index).toBe(3);
  });
});
