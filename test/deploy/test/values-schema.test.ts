// Each chart's values.schema.json is the one derived from its values.yaml (regenerate with
// UPDATE_VALUES_SCHEMAS=1 npx jest test/deploy/test/values-schema.test.ts), and Helm uses it:
// a misspelt key is refused before anything renders.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { SERVICE_CHARTS, chartDir } from "../src/charts";
import { helmTemplate } from "../src/helm";
import { formatValuesSchema } from "../src/values-schema";

describe("values schema", () => {
  test.each(SERVICE_CHARTS.map((c) => c.name))(
    "values schema – %s: up to date with values.yaml",
    (chart) => {
      const values = parse(readFileSync(join(chartDir(chart), "values.yaml"), "utf8")) as Record<
        string,
        unknown
      >;
      const file = join(chartDir(chart), "values.schema.json");
      const expected = formatValuesSchema(values, file);
      if (process.env.UPDATE_VALUES_SCHEMAS === "1") writeFileSync(file, expected);
      expect(readFileSync(file, "utf8")).toBe(expected);
    },
  );

  test("values schema – helm refuses a misspelt key of the chart, accepts other charts' sections", async () => {
    await expect(
      helmTemplate({ chart: chartDir("registrar"), set: ["registrar.replicas=3"] }),
    ).rejects.toThrow(/replicas/);
    await expect(
      helmTemplate({ chart: chartDir("agent"), set: ["global.trustdomain=x.org"] }),
    ).rejects.toThrow(/trustdomain/);
    const objects = await helmTemplate({
      chart: chartDir("registrar"),
      set: ["ca.replicaCount=3", "registrar.config.anything=1", "global.imageTag=1.2"],
    });
    expect(objects.length).toBeGreaterThan(0);
  });
});
