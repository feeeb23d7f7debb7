// The shipped ClusterSPIFFEID CRD (deploy/crds/clusterspiffeid.yaml) matches what the
// registrar reads, and the API server stand-in serves it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { startKubeApiServer } from "@meshid/testkit";
import { parse } from "yaml";
import {
  CLUSTER_SPIFFE_ID_API_VERSION,
  CLUSTER_SPIFFE_ID_KIND,
  CLUSTER_SPIFFE_ID_PLURAL,
  CLUSTER_SPIFFE_ID_SPEC_FIELDS,
  parseClusterSpiffeId,
} from "../src/domain/cluster-spiffe-id";

jest.setTimeout(180_000);

const CRD_FILE = join(__dirname, "..", "..", "..", "deploy", "crds", "clusterspiffeid.yaml");

interface Crd {
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string };
    versions: {
      name: string;
      schema: {
        openAPIV3Schema: {
          properties: { spec: { properties: Record<string, unknown>; required: string[] } };
        };
      };
    }[];
  };
}

describe("ClusterSPIFFEID CRD", () => {
  it("CRD – group, kind, scope and spec fields match the registrar", () => {
    const crd = parse(readFileSync(CRD_FILE, "utf8")) as Crd;
    expect(`${crd.spec.group}/${crd.spec.versions[0]?.name}`).toBe(CLUSTER_SPIFFE_ID_API_VERSION);
    expect(crd.spec.names).toMatchObject({
      kind: CLUSTER_SPIFFE_ID_KIND,
      plural: CLUSTER_SPIFFE_ID_PLURAL,
    });
    expect(crd.spec.scope).toBe("Cluster");
    const spec = crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec;
    expect(Object.keys(spec?.properties ?? {}).sort()).toEqual(
      [...CLUSTER_SPIFFE_ID_SPEC_FIELDS].sort(),
    );
    expect(spec?.required).toEqual(["spiffeIDTemplate"]);
  });

  it("CRD – the stand-in serves it and a resource written through it parses", async () => {
    const kube = await startKubeApiServer();
    try {
      kube.apply(parse(readFileSync(CRD_FILE, "utf8")) as object);
      const custom = kube.kubeConfig().makeApiClient(CustomObjectsApi);
      const created = (await custom.createClusterCustomObject({
        group: "meshid.io",
        version: "v1alpha1",
        plural: CLUSTER_SPIFFE_ID_PLURAL,
        body: {
          apiVersion: CLUSTER_SPIFFE_ID_API_VERSION,
          kind: CLUSTER_SPIFFE_ID_KIND,
          metadata: { name: "by-app" },
          spec: {
            spiffeIDTemplate: "spiffe://{{ .TrustDomain }}/app/{{ .PodMeta.Labels.app }}",
            ttl: "1h",
          },
        },
      })) as unknown;
      expect(parseClusterSpiffeId(created)).toMatchObject({
        ok: true,
        template: { ttlSeconds: 3600 },
      });
    } finally {
      await kube.stop();
    }
  });
});
