// The meshid-crds chart installs exactly the CRDs of deploy/crds (its crds/ is a symbolic
// link to that directory, so there is one copy), and each is a valid CustomResourceDefinition.
import { lstatSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { chartDir } from "../src/charts";
import { helmTemplate, parseManifests } from "../src/helm";
import { validateKubeObject } from "../src/manifests";
import { unknownFields } from "../src/strict-fields";
import { CRDS_DIR } from "../src/paths";

describe("crds", () => {
  test("crds – the chart's crds/ is a link to deploy/crds", () => {
    const link = join(chartDir("meshid-crds"), "crds");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe("../../crds");
  });

  test("crds – helm renders every CRD of deploy/crds and nothing else", async () => {
    const files = readdirSync(CRDS_DIR).filter((f) => f.endsWith(".yaml"));
    const expected = files.flatMap((f) => parseManifests(readFileSync(join(CRDS_DIR, f), "utf8")));
    const rendered = await helmTemplate({ chart: chartDir("meshid-crds"), includeCrds: true });
    expect(rendered).toEqual(expected);
    const names = rendered.map((o) => o.metadata.name);
    expect(names).toContain("clusterspiffeids.meshid.io");
    for (const obj of rendered) {
      expect(obj.kind).toBe("CustomResourceDefinition");
      validateKubeObject(obj);
      expect(unknownFields(obj)).toEqual([]);
    }
  });

  test("crds – the chart renders no other objects", async () => {
    expect(await helmTemplate({ chart: chartDir("meshid-crds") })).toEqual([]);
  });
});
