import { isMeshidError } from "@meshid/errors";
import { tryParseSpiffeId } from "@meshid/spiffe";
import { checkWorkloadSpiffeId, computeSvidValidity, generateSerial } from "./svid-profile";

const IDS = [
  "spiffe://example.org/app",
  "spiffe://example.org/ns/default/sa/web",
  "SPIFFE://example.org/x",
  "spiffe://example.org",
  "spiffe://example.org/",
  "spiffe://EXAMPLE.org/x",
  "spiffe://exa mple.org/x",
  "spiffe://example.org/a/./b",
  "spiffe://example.org/a/../b",
  "spiffe://example.org/a//b",
  "spiffe://example.org/a/",
  "spiffe://example.org/a%20b",
  "spiffe://example.org/a?b=c",
  "spiffe://example.org/a#b",
  "spiffe://user@example.org/a",
  "spiffe://example.org:8080/a",
  "spiffe:///a",
  "http://example.org/a",
  "spiffe://example.org/A-Z_a.z-09",
  "spiffe://a_b-c.d/x",
  "spiffe://example.org/" + "a".repeat(2027),
  "spiffe://example.org/" + "a".repeat(2028),
];

describe("svid-profile", () => {
  test.each(IDS)("svid-profile – %s: same verdict as @meshid/spiffe for a workload ID", (id) => {
    const parsed = tryParseSpiffeId(id);
    const spiffeOk = parsed.ok && parsed.id.path !== "";
    let ours = true;
    try {
      checkWorkloadSpiffeId(id);
    } catch (err) {
      expect(isMeshidError(err, "pki.svid.spiffe_id_invalid")).toBe(true);
      ours = false;
    }
    expect(ours).toBe(spiffeOk);
  });

  test("svid-profile – validity backdates 10 s and caps at the issuer", () => {
    const now = new Date("2030-01-01T00:00:00.999Z");
    const issuerNotAfter = new Date("2030-01-01T00:30:00Z");
    expect(computeSvidValidity({ ttlSeconds: 60, now, issuerNotAfter })).toEqual({
      notBefore: new Date("2029-12-31T23:59:50Z"),
      notAfter: new Date("2030-01-01T00:01:00Z"),
    });
    expect(computeSvidValidity({ ttlSeconds: 7_200, now, issuerNotAfter }).notAfter).toEqual(
      issuerNotAfter,
    );
  });

  test("svid-profile – serials skip an all-zero draw", () => {
    let calls = 0;
    const serial = generateSerial((n) => new Uint8Array(n).fill(calls++ === 0 ? 0 : 1));
    expect(calls).toBe(2);
    expect(serial.hex).toBe("01".repeat(16));
  });
});
