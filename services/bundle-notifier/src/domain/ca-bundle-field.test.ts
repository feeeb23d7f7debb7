import {
  APISERVICE_LABEL_SELECTOR,
  WEBHOOK_LABEL_SELECTOR,
  caBundleFromPem,
  webhooksWithCaBundle,
} from "./ca-bundle-field";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

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
