import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { get } from "node:https";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { startKubeApiServer, startKubeletStandIn, type StandInTlsOptions } from "../src/kube";
import { createTempDir, type TempDir } from "../src/temp-dir";

describe("kube stand-ins over https", () => {
  let dir: TempDir;
  let tls: StandInTlsOptions;

  beforeAll(async () => {
    dir = await createTempDir("kube-tls");
    const key = join(dir.path, "key.pem");
    const cert = join(dir.path, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout",
        key,
        "-out",
        cert,
      ],
      { stdio: "ignore" },
    );
    tls = { certPem: readFileSync(cert, "utf8"), keyPem: readFileSync(key, "utf8") };
  });

  afterAll(async () => {
    await dir.cleanup();
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
