import { createKubeClient, type KubeClient } from "@meshid/kube";
import { createMemoryLogger } from "@meshid/telemetry";
import { startKubeApiServer, type KubeApiServer } from "@meshid/testkit";
import { DEFAULT_TEMPLATE_NAME } from "../domain/cluster-spiffe-id";
import {
  MAX_EVENTS_PER_TEMPLATE,
  TEMPLATE_RENDER_FAILED_REASON,
  createKubeTemplateReporter,
} from "./kube-template-reporter";

jest.setTimeout(60_000);

let kube: KubeApiServer;
let client: KubeClient;
beforeAll(async () => {
  kube = await startKubeApiServer();
  client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
});
afterAll(async () => {
  client.close();
  await kube.stop();
});

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("createKubeTemplateReporter", () => {
  it("template reporter – one Warning Event per distinct problem, capped per resource", async () => {
    const log = createMemoryLogger();
    const reporter = createKubeTemplateReporter({
      client,
      logger: log.logger,
    });
    const problem = {
      template: "t1",
      templateUid: "uid-t1",
      templateRevision: "7",
      message: "spiffeIDTemplate: unknown field",
    };
    reporter.report(problem);
    reporter.report(problem);
    for (let i = 0; i < MAX_EVENTS_PER_TEMPLATE + 10; i += 1) {
      reporter.report({ ...problem, message: `pod ns/p-${i}: .PodMeta.Labels[x] has no value` });
    }
    reporter.report({
      template: DEFAULT_TEMPLATE_NAME,
      templateUid: "",
      templateRevision: "",
      message: "default failed",
    });
    const events = () =>
      kube
        .events()
        .filter((e) => (e as { reason?: string }).reason === TEMPLATE_RENDER_FAILED_REASON);
    await until(() => events().length === MAX_EVENTS_PER_TEMPLATE);
    await new Promise((r) => setTimeout(r, 200));
    expect(events()).toHaveLength(MAX_EVENTS_PER_TEMPLATE);
    expect(events()[0]).toMatchObject({
      type: "Warning",
      involvedObject: {
        kind: "ClusterSPIFFEID",
        name: "t1",
        uid: "uid-t1",
        apiVersion: "meshid.io/v1alpha1",
      },
      source: { component: "meshid-registrar" },
    });
    // Logged once per distinct problem, Events or not (the default's included).
    const logged = log.entries().filter((l) => l.msg === "ClusterSPIFFEID template failed");
    expect(logged).toHaveLength(1 + MAX_EVENTS_PER_TEMPLATE + 10 + 1);

    // A new version of the resource has its problems reported afresh.
    reporter.report({ ...problem, templateRevision: "8" });
    await until(() => events().length === MAX_EVENTS_PER_TEMPLATE + 1);
  });
});
