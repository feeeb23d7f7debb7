import { shouldAcceptBundle, type NotifierBundle } from "./bundle";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function bundle(sequenceNumber: number, pem = `${PEM}#${sequenceNumber}`): NotifierBundle {
  return {
    trustDomain: "example.org",
    sequenceNumber,
    pem,
    spiffeJwks: `{"seq":${sequenceNumber}}`,
  };
}

describe("bundle – which answer replaces the held bundle", () => {
  it("bundle – the first bundle is always taken", () => {
    expect(shouldAcceptBundle(undefined, bundle(3), "fetch")).toBe(true);
  });

  it("bundle – a later stream message or a fetch wins only with a higher sequence", () => {
    expect(shouldAcceptBundle(bundle(3), bundle(4), "stream")).toBe(true);
    expect(shouldAcceptBundle(bundle(3), bundle(3), "stream")).toBe(false);
    expect(shouldAcceptBundle(bundle(4), bundle(3), "fetch")).toBe(false);
  });

  it("bundle – a reopened stream states the present bundle, even a lower sequence (CA reset)", () => {
    expect(shouldAcceptBundle(bundle(4), bundle(1), "stream-open")).toBe(true);
    expect(shouldAcceptBundle(bundle(4), bundle(4), "stream-open")).toBe(false);
  });
});
