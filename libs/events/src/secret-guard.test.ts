import { isMeshidError } from "@meshid/errors";
import { assertNoSecretMaterial } from "./secret-guard";

describe("assertNoSecretMaterial", () => {
  it.each([
    "-----BEGIN PRIVATE KEY-----",
    "-----BEGIN EC PRIVATE KEY-----",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----",
    '{"owner":"x begin private key y"}',
  ])("secret guard – rejects %j without echoing it", (text) => {
    let caught: unknown;
    try {
      assertNoSecretMaterial(`{"a":${JSON.stringify(text)}}`, "payload");
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "events.payload.secret")).toBe(true);
    expect((caught as Error).message).not.toContain("BEGIN");
  });

  it("secret guard – accepts certificates and ordinary payloads", () => {
    expect(() =>
      assertNoSecretMaterial('{"pem":"-----BEGIN CERTIFICATE-----","serial":"0a"}', "payload"),
    ).not.toThrow();
  });
});
