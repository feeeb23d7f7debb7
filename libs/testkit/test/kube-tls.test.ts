import { get } from "node:https";
import * as k8s from "@kubernetes/client-node";
import {
  createSelfSignedStandInTls,
  startKubeApiServer,
  startKubeletStandIn,
  type StandInTlsOptions,
} from "../src/kube";

describe("kube stand-ins over https", () => {
  let tls: StandInTlsOptions;

  beforeAll(async () => {
    tls = await createSelfSignedStandInTls({ subjectAltName: "IP:127.0.0.1,DNS:localhost" });
  });

  it("https – client-node talks to the API server stand-in trusting the kubeconfig CA", async () => {
    const server = await startKubeApiServer({ tls });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(server.kubeConfigYaml()).not.toContain("insecure-skip-tls-verify");
      const core = server.kubeConfig().makeApiClient(k8s.CoreV1Api);
      const namespaces = await core.listNamespace();
      expect(namespaces.items.map((n) => n.metadata?.name)).toContain("kube-system");
    } finally {
      await server.stop();
    }
  });

  it("https – the kubelet stand-in serves /pods over TLS", async () => {
    const kubelet = await startKubeletStandIn({
      tls,
      pods: [{ metadata: { name: "a", namespace: "default", uid: "u" }, spec: { containers: [] } }],
    });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        get(`${kubelet.url}/pods`, { ca: tls.certPem }, (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk.toString()));
          res.on("end", () => resolve(text));
        }).on("error", reject);
      });
      expect((JSON.parse(body) as k8s.V1PodList).items[0]?.metadata?.uid).toBe("u");
    } finally {
      await kubelet.stop();
    }
  });
});
