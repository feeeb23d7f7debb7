import { isMeshidError } from "@meshid/errors";
import { meshidProxyconfigV1 } from "@meshid/proto";
import { configJson, updateRequestFromOptions } from "./mesh-config";

describe("mesh-config set", () => {
  test("updateRequestFromOptions – only the given fields are set", () => {
    expect(updateRequestFromOptions({ mtlsMode: "strict" })).toEqual({
      rotateNow: false,
      mtlsMode: meshidProxyconfigV1.MtlsMode.MTLS_MODE_STRICT,
    });
    expect(
      updateRequestFromOptions({
        caTtl: "720h",
        svidTtl: "1h",
        caKeyType: "ec-p384",
        rotateNow: true,
        expectedGeneration: 4,
      }),
    ).toEqual({
      rotateNow: true,
      caTtl: "720h",
      svidTtl: "1h",
      caKeyType: "ec-p384",
      expectedGeneration: 4,
    });
    expect(updateRequestFromOptions({ rotateNow: true })).toEqual({ rotateNow: true });
  });

  test("updateRequestFromOptions – nothing to change is a usage error", () => {
    for (const options of [{}, { expectedGeneration: 3 }]) {
      let err: unknown;
      try {
        updateRequestFromOptions(options);
      } catch (e) {
        err = e;
      }
      expect(isMeshidError(err, "meshctl.usage")).toBe(true);
    }
  });

  test("configJson – names of modes and fields as in MeshConfig", () => {
    expect(
      configJson({
        mtlsMode: meshidProxyconfigV1.MtlsMode.MTLS_MODE_PERMISSIVE,
        caTtl: "720h",
        svidTtl: "1h",
        caKeyType: "ec-p256",
        generation: 2,
        updatedAt: new Date("2026-01-01T00:00:00Z"),
      }),
    ).toEqual({
      mtlsMode: "permissive",
      caTTL: "720h",
      svidTTL: "1h",
      caKeyType: "ec-p256",
      generation: 2,
      updatedAt: "2026-01-01T00:00:00.000Z",
    });
  });
});
