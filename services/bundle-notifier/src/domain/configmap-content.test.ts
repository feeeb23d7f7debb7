import type { NotifierBundle } from "./bundle";
import {
  BUNDLE_SEQUENCE_ANNOTATION,
  CONFIGMAP_PEM_KEY,
  CONFIGMAP_SPIFFE_KEY,
  planConfigMapWrite,
  presentBundleSequence,
} from "./configmap-content";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function bundle(sequenceNumber: number, pem = `${PEM}#${sequenceNumber}`): NotifierBundle {
  return {
    trustDomain: "example.org",
    sequenceNumber,
    pem,
    spiffeJwks: `{"seq":${sequenceNumber}}`,
  };
}

describe("configmap content – what to write", () => {
  it("configmap content – a missing ConfigMap gets both keys and the sequence annotation", () => {
    expect(planConfigMapWrite(undefined, bundle(2))).toEqual({
      action: "write",
      data: { [CONFIGMAP_PEM_KEY]: bundle(2).pem, [CONFIGMAP_SPIFFE_KEY]: bundle(2).spiffeJwks },
      annotations: { [BUNDLE_SEQUENCE_ANNOTATION]: "2" },
    });
  });

  it("configmap content – equal data means no write", () => {
    const b = bundle(2);
    const current = {
      data: { [CONFIGMAP_PEM_KEY]: b.pem, [CONFIGMAP_SPIFFE_KEY]: b.spiffeJwks, other: "x" },
    };
    expect(planConfigMapWrite(current, b)).toEqual({ action: "unchanged" });
  });

  it("configmap content – other keys and annotations are kept", () => {
    const plan = planConfigMapWrite(
      { data: { other: "x", [CONFIGMAP_PEM_KEY]: "old" }, annotations: { team: "a" } },
      bundle(5),
    );
    expect(plan).toEqual({
      action: "write",
      data: {
        other: "x",
        [CONFIGMAP_PEM_KEY]: bundle(5).pem,
        [CONFIGMAP_SPIFFE_KEY]: bundle(5).spiffeJwks,
      },
      annotations: { team: "a", [BUNDLE_SEQUENCE_ANNOTATION]: "5" },
    });
  });

  it("configmap content – a newer bundle written by another replica is never overwritten", () => {
    const current = {
      data: { [CONFIGMAP_PEM_KEY]: "newer" },
      annotations: { [BUNDLE_SEQUENCE_ANNOTATION]: "9" },
    };
    expect(planConfigMapWrite(current, bundle(8))).toEqual({
      action: "newer_present",
      presentSequence: 9,
    });
  });

  it("configmap content – a malformed sequence annotation is ignored", () => {
    expect(presentBundleSequence({ annotations: { [BUNDLE_SEQUENCE_ANNOTATION]: "nine" } })).toBe(
      undefined,
    );
    expect(
      planConfigMapWrite({ annotations: { [BUNDLE_SEQUENCE_ANNOTATION]: "-1" } }, bundle(1)).action,
    ).toBe("write");
  });

  it("configmap content – acceptLowerSequence writes over a higher sequence (the CA was reset)", () => {
    const current = { annotations: { [BUNDLE_SEQUENCE_ANNOTATION]: "9" } };
    const plan = planConfigMapWrite(current, bundle(1), { acceptLowerSequence: true });
    expect(plan).toMatchObject({
      action: "write",
      annotations: { [BUNDLE_SEQUENCE_ANNOTATION]: "1" },
    });
  });
});
