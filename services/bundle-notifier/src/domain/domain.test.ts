import { backoffDelayMs } from "./backoff";
import { shouldAcceptBundle, type NotifierBundle } from "./bundle";
import {
  APISERVICE_LABEL_SELECTOR,
  WEBHOOK_LABEL_SELECTOR,
  caBundleFromPem,
  webhooksWithCaBundle,
} from "./ca-bundle-field";
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

describe("backoff – capped exponential with equal jitter", () => {
  it("backoff – doubles from the initial delay up to the cap, never below half of it", () => {
    const at = (attempt: number, r: number): number =>
      backoffDelayMs({ attempt, initialMs: 500, maxMs: 30_000, random: () => r });
    expect([0, 1, 2, 3].map((a) => at(a, 0.999999))).toEqual([500, 1000, 2000, 4000]);
    expect([0, 1, 2, 3].map((a) => at(a, 0))).toEqual([250, 500, 1000, 2000]);
    expect(at(10, 0.999999)).toBe(30_000);
    expect(at(10_000, 0)).toBe(15_000);
  });
});

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
});

describe("caBundle field – webhooks and APIServices", () => {
  it("caBundle field – the selectors are the documented labels", () => {
    expect(WEBHOOK_LABEL_SELECTOR).toBe("meshid.io/webhook=true");
    expect(APISERVICE_LABEL_SELECTOR).toBe("meshid.io/apiservice=true");
  });

  it("caBundle field – the value is the base64 of the PEM text", () => {
    expect(Buffer.from(caBundleFromPem(PEM), "base64").toString("utf8")).toBe(PEM);
  });

  it("caBundle field – every entry gets it; nothing when all have it already", () => {
    const ca = caBundleFromPem(PEM);
    const input = [
      { name: "a", clientConfig: { caBundle: "old", url: "https://a" } },
      { name: "b", clientConfig: { caBundle: ca } },
      { name: "c" },
    ];
    const out = webhooksWithCaBundle(input, ca);
    expect(out?.map((w) => w.clientConfig?.caBundle)).toEqual([ca, ca, ca]);
    expect(out?.[0]).toEqual({ name: "a", clientConfig: { caBundle: ca, url: "https://a" } });
    expect(input[0]?.clientConfig?.caBundle).toBe("old");
    expect(webhooksWithCaBundle(out, ca)).toBeUndefined();
    expect(webhooksWithCaBundle(undefined, ca)).toBeUndefined();
  });
});
