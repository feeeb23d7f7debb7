import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EVENT_CATALOG, EVENT_TYPES } from "../src/index";
import {
  type DescriptorSet,
  eventJsonSchema,
  examplePayloadJson,
  type JsonSchema,
  loadEventDescriptors,
  renderEventsDoc,
  REPO_ROOT,
} from "../scripts/render-events-doc";

const DOC_PATH = join(REPO_ROOT, "docs/events.md");

/** Minimal JSON Schema check for the subset the renderer emits (type/properties/items/format). */
function schemaErrors(schema: JsonSchema, value: unknown, at = "$"): string[] {
  const type = schema.type as string;
  switch (type) {
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return [`${at}: not an object`];
      }
      const props = schema.properties as Record<string, JsonSchema>;
      return Object.entries(value).flatMap(([k, v]) =>
        props[k] === undefined
          ? [`${at}.${k}: not in schema`]
          : schemaErrors(props[k], v, `${at}.${k}`),
      );
    }
    case "array":
      return Array.isArray(value)
        ? value.flatMap((v, i) => schemaErrors(schema.items as JsonSchema, v, `${at}[${i}]`))
        : [`${at}: not an array`];
    case "integer":
      return Number.isInteger(value) ? [] : [`${at}: not an integer`];
    case "string":
      if (typeof value !== "string") return [`${at}: not a string`];
      if (schema.format === "date-time" && Number.isNaN(Date.parse(value))) {
        return [`${at}: not a date-time`];
      }
      return [];
    default:
      return typeof value === type ? [] : [`${at}: not a ${type}`];
  }
}

describe("docs/events.md", () => {
  let descriptors: DescriptorSet;
  let rendered: string;

  beforeAll(() => {
    descriptors = loadEventDescriptors();
    rendered = renderEventsDoc(descriptors);
    if (process.env.MESHID_WRITE_EVENTS_DOC === "1") writeFileSync(DOC_PATH, rendered);
  });

  it("events doc – is up to date with the catalog and the proto (npm run docs rewrites it)", () => {
    expect(readFileSync(DOC_PATH, "utf8")).toBe(rendered);
  });

  it.each(EVENT_TYPES)("events doc – documents %s with subject, ce-type and schema", (type) => {
    const def = EVENT_CATALOG[type];
    expect(rendered).toContain(`### ${type}\n`);
    expect(rendered).toContain(def.ceType);
    expect(rendered).toContain(def.subject);
    expect(rendered).toContain(`"title": "${def.messageName}"`);
  });

  it.each(EVENT_TYPES)("events doc – the %s example matches its JSON Schema", (type) => {
    const schema = eventJsonSchema(descriptors, type);
    const example = examplePayloadJson(type);
    expect(schemaErrors(schema, example)).toEqual([]);
    expect(Object.keys(example as object).length).toBeGreaterThan(0);
  });

  it("events doc – schemas map timestamps, 64-bit integers, nested and repeated fields", () => {
    const svid = eventJsonSchema(descriptors, "svid.issued");
    const props = svid.properties as Record<string, JsonSchema>;
    expect(props.expiresAt).toMatchObject({ type: "string", format: "date-time" });
    expect(props.spiffeId).toMatchObject({
      type: "object",
      properties: { trustDomain: { type: "string" }, path: { type: "string" } },
    });
    const bundle = eventJsonSchema(descriptors, "bundle.updated").properties as Record<
      string,
      JsonSchema
    >;
    expect(bundle.sequenceNumber).toMatchObject({ type: "integer" });
    expect(bundle.x509AuthorityIds).toMatchObject({ type: "array", items: { type: "string" } });
  });

  it("events doc – says no secret ever travels in an event", () => {
    expect(rendered).toMatch(/no event ever carries a private key/i);
  });
});
