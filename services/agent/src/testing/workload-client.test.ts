import { spiffeWorkload } from "@meshid/proto";
import { decodeX509BundlesResponse, decodeX509SvidResponse } from "./workload-client";

// The test client decodes by hand from SPIFFE.md's field numbers; these check it reads what the
// generated ts-proto code writes (so the two agree on the wire, independently written).
describe("workload client wire decoding", () => {
  it("decoding – X509SVIDResponse fields 1..5, crl and federated bundles", () => {
    const message = spiffeWorkload.X509SVIDResponse.fromPartial({
      svids: [
        {
          spiffeId: "spiffe://example.org/a",
          x509Svid: Buffer.from([0x30, 1, 2]),
          x509SvidKey: Buffer.from([0x30, 3]),
          bundle: Buffer.from([0x30, 4]),
          hint: "internal",
        },
        {
          spiffeId: "spiffe://example.org/b",
          x509Svid: Buffer.alloc(300, 7),
          x509SvidKey: Buffer.from([5]),
          bundle: Buffer.from([6]),
          hint: "",
        },
      ],
      crl: [Buffer.from([9, 9])],
      federatedBundles: { "spiffe://other.org": Buffer.from([8]) },
    });
    const decoded = decodeX509SvidResponse(
      Buffer.from(spiffeWorkload.X509SVIDResponse.encode(message).finish()),
    );
    expect(decoded).toEqual({
      svids: message.svids,
      crl: [Buffer.from([9, 9])],
      federatedBundles: { "spiffe://other.org": Buffer.from([8]) },
    });
  });

  it("decoding – X509BundlesResponse map keyed by trust-domain ID", () => {
    const message = spiffeWorkload.X509BundlesResponse.fromPartial({
      bundles: {
        "spiffe://example.org": Buffer.from([0x30, 1]),
        "spiffe://other.org": Buffer.from([0x30, 2]),
      },
    });
    const decoded = decodeX509BundlesResponse(
      Buffer.from(spiffeWorkload.X509BundlesResponse.encode(message).finish()),
    );
    expect(decoded).toEqual({ crl: [], bundles: message.bundles });
  });

  it("decoding – an empty message has no SVIDs", () => {
    expect(decodeX509SvidResponse(Buffer.alloc(0))).toEqual({
      svids: [],
      crl: [],
      federatedBundles: {},
    });
  });

  it("decoding – truncated bytes are an error", () => {
    const bytes = Buffer.from(
      spiffeWorkload.X509SVIDResponse.encode(
        spiffeWorkload.X509SVIDResponse.fromPartial({
          svids: [{ spiffeId: "spiffe://example.org/a" }],
        }),
      ).finish(),
    );
    expect(() => decodeX509SvidResponse(bytes.subarray(0, bytes.length - 3))).toThrow(/truncated/);
  });
});
