import { uriSansFromSubjectAltName } from "./peer-identity";

describe("uriSansFromSubjectAltName", () => {
  it("peer identity – extracts URI SANs and skips other types", () => {
    expect(
      uriSansFromSubjectAltName("DNS:localhost, URI:spiffe://example.org/ca, IP Address:127.0.0.1"),
    ).toEqual(["spiffe://example.org/ca"]);
  });

  it("peer identity – unquotes values Node quoted", () => {
    expect(uriSansFromSubjectAltName('URI:"spiffe://example.org/a,b", URI:spiffe://x/y')).toEqual([
      "spiffe://example.org/a,b",
      "spiffe://x/y",
    ]);
  });

  it("peer identity – no SAN gives no URIs", () => {
    expect(uriSansFromSubjectAltName(undefined)).toEqual([]);
    expect(uriSansFromSubjectAltName("")).toEqual([]);
  });
});
