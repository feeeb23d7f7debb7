// deploy/crds/meshconfig.yaml matches what proxy-config reads and writes, and the API server
// stand-in serves it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startKubeApiServer } from "@meshid/testkit";
import { parse } from "yaml";
import {
  MESH_CONFIG_GROUP,
  MESH_CONFIG_KIND,
  MESH_CONFIG_PLURAL,
  MESH_CONFIG_VERSION,
} from "../src/adapters/mesh-config-document";
import { CA_KEY_TYPES, MTLS_MODES } from "../src/domain/mesh-config";

const CRD_FILE = join(__dirname, "..", "..", "..", "deploy", "crds", "meshconfig.yaml");

interface Crd {
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string };
    versions: {
      name: string;
      schema: {
        openAPIV3Schema: {
          properties: {
            spec: {
              properties: Record<string, { enum?: string[]; pattern?: string; default?: string }>;
            };
          };
        };
      };
    }[];
  };
}

describe("meshconfig crd", () => {
  const crd = parse(readFileSync(CRD_FILE, "utf8")) as Crd;
  const fields = crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec.properties ?? {};

  it("meshconfig crd – names the resource proxy-config uses", () => {
    expect(crd.kind).toBe("CustomResourceDefinition");
    expect(crd.metadata.name).toBe(`${MESH_CONFIG_PLURAL}.${MESH_CONFIG_GROUP}`);
    expect(crd.spec).toMatchObject({
      group: MESH_CONFIG_GROUP,
      scope: "Cluster",
      names: { kind: MESH_CONFIG_KIND, plural: MESH_CONFIG_PLURAL },
    });
    expect(crd.spec.versions.map((v) => v.name)).toEqual([MESH_CONFIG_VERSION]);
  });

  it("meshconfig crd – enums and defaults agree with the validation", () => {
    expect(fields.mtlsMode?.enum).toEqual([...MTLS_MODES]);
    expect(fields.caKeyType?.enum).toEqual([...CA_KEY_TYPES]);
    expect(fields.mtlsMode?.default).toBe("permissive");
    expect(fields.caTTL?.default).toBe("720h");
    expect(fields.svidTTL?.default).toBe("1h");
    const pattern = new RegExp(fields.caTTL?.pattern ?? "^$");
    for (const ok of ["720h", "1h30m", "90s", "24h"]) expect(pattern.test(ok)).toBe(true);
    for (const bad of ["1d", "soon", "-1h"]) expect(pattern.test(bad)).toBe(false);
  });

  it("meshconfig crd – the API server stand-in serves MeshConfig objects once it is applied", async () => {
    const kube = await startKubeApiServer();
    try {
      kube.apply(crd);
      kube.apply({
        apiVersion: `${MESH_CONFIG_GROUP}/${MESH_CONFIG_VERSION}`,
        kind: MESH_CONFIG_KIND,
        metadata: { name: "meshid" },
        spec: { mtlsMode: "strict" },
      });
      expect(kube.get({ kind: MESH_CONFIG_KIND, name: "meshid" })).toMatchObject({
        spec: { mtlsMode: "strict" },
      });
    } finally {
      await kube.stop();
    }
  });
});
