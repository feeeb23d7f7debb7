import { isMeshidError } from "@meshid/errors";
import { notifierBundleFromProto } from "./grpc-ca-bundle-client";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function response(overrides: Record<string, unknown> = {}) {
  return {
    bundle: {
      trustDomain: "example.org",
      x509Authorities: [],
      jwtAuthorities: [],
      refreshHintSeconds: 0,
      sequenceNumber: 7,
    },
    pem: PEM,
    spiffeJwks: '{"keys":[]}',
    ...overrides,
  };
}

describe("CA bundle client – proto conversion", () => {
  it("CA bundle client – takes the PEM, JWKS and sequence as the CA made them", () => {
    expect(notifierBundleFromProto(response())).toEqual({
      trustDomain: "example.org",
      sequenceNumber: 7,
      pem: PEM,
      spiffeJwks: '{"keys":[]}',
    });
  });

  it("CA bundle client – a response without bundle, certificates or JWKS is refused (never written)", () => {
    for (const bad of [{ bundle: undefined }, { pem: "" }, { spiffeJwks: " " }]) {
      let caught: unknown;
      try {
        notifierBundleFromProto(response(bad));
      } catch (err) {
        caught = err;
      }
      expect(isMeshidError(caught, "bundle_notifier.ca.bad_response")).toBe(true);
    }
  });
});
