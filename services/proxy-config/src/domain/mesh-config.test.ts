import {
  DEFAULT_MESH_CONFIG_SETTINGS,
  meshConfigInvalidError,
  resolveMeshConfigUpdate,
} from "./mesh-config";

const defaults = DEFAULT_MESH_CONFIG_SETTINGS;

describe("mesh config", () => {
  it("mesh config – defaults: permissive, 720h, 1h, ec-p256", () => {
    expect(defaults).toEqual({
      mtlsMode: "permissive",
      caTtlSeconds: 720 * 3600,
      svidTtlSeconds: 3600,
      caKeyType: "ec-p256",
    });
  });

  it("mesh config – unset fields keep their value; set ones are parsed", () => {
    const r = resolveMeshConfigUpdate(defaults, {
      mtlsMode: "strict",
      caTtl: "24h",
      svidTtl: "5h",
    });
    expect(r).toEqual({
      ok: true,
      settings: {
        mtlsMode: "strict",
        caTtlSeconds: 86_400,
        svidTtlSeconds: 18_000,
        caKeyType: "ec-p256",
      },
      warnings: [expect.stringMatching(/svidTTL 5h is more than a sixth of caTTL 24h/)],
    });
  });

  it.each([
    [{ mtlsMode: "STRICT" }, 'mtlsMode: must be off, permissive or strict (got "STRICT")'],
    [{ caTtl: "1h" }, 'caTTL: must be at least 24h (got "1h")'],
    [{ caTtl: "100000h" }, 'caTTL: must be at most 87600h (got "100000h")'],
    [{ caTtl: "-5h" }, 'caTTL: must be a duration like "720h", "90m" or "1h30m" (got "-5h")'],
    [{ svidTtl: "10s" }, 'svidTTL: must be at least 1m (got "10s")'],
    [{ svidTtl: "721h" }, 'svidTTL: must not exceed caTTL 720h (got "721h")'],
    [
      { caKeyType: "dsa" },
      'caKeyType: must be one of ec-p256, ec-p384, rsa-2048, rsa-4096 (got "dsa")',
    ],
  ])("mesh config – %j is refused with %s", (update, message) => {
    expect(resolveMeshConfigUpdate(defaults, update)).toEqual({
      ok: false,
      problems: [expect.objectContaining({ message })],
    });
  });

  it("mesh config – a caTTL below the current svidTTL is blamed on caTTL", () => {
    const r = resolveMeshConfigUpdate({ ...defaults, svidTtlSeconds: 48 * 3600 }, { caTtl: "24h" });
    expect(r).toEqual({
      ok: false,
      problems: [
        { field: "caTTL", message: 'caTTL: must not be shorter than svidTTL 48h (got "24h")' },
      ],
    });
  });

  it("mesh config – every bad field is reported, and a bad caTTL is not also a svidTTL problem", () => {
    const r = resolveMeshConfigUpdate(defaults, { caTtl: "1h", caKeyType: "x", mtlsMode: "y" });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.field).sort()).toEqual(["caKeyType", "caTTL", "mtlsMode"]);
    const err = meshConfigInvalidError(r.problems);
    expect(err).toMatchObject({
      kind: "invalid_argument",
      code: "proxy_config.mesh_config.invalid",
    });
    expect(err.details.fields).toBe("mtlsMode,caKeyType,caTTL");
  });

  it("mesh config – no warning at exactly a sixth", () => {
    const r = resolveMeshConfigUpdate(defaults, { svidTtl: "120h" });
    expect(r).toMatchObject({ ok: true, warnings: [] });
  });
});
