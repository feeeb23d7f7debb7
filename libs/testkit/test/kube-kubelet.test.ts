import type * as k8s from "@kubernetes/client-node";
import { startKubeletStandIn } from "../src/kube";

describe("kubelet stand-in", () => {
  it("kubelet – GET /pods serves the configured pods as a PodList and follows setPods", async () => {
    const kubelet = await startKubeletStandIn({
      pods: [
        { metadata: { name: "a", namespace: "default", uid: "uid-a" }, spec: { containers: [] } },
      ],
      bearerToken: "kubelet-token",
    });
    try {
      const headers = { Authorization: "Bearer kubelet-token" };
      const first = (await (
        await fetch(`${kubelet.url}/pods`, { headers })
      ).json()) as k8s.V1PodList;
      expect(first.kind).toBe("PodList");
      expect(first.items.map((p) => p.metadata?.uid)).toEqual(["uid-a"]);
      kubelet.setPods([]);
      const second = (await (
        await fetch(`${kubelet.url}/pods/`, { headers })
      ).json()) as k8s.V1PodList;
      expect(second.items).toEqual([]);
      expect((await fetch(`${kubelet.url}/pods`)).status).toBe(401);
      expect((await fetch(`${kubelet.url}/stats`, { headers })).status).toBe(404);
      expect(kubelet.requestCount()).toBe(2);
    } finally {
      await kubelet.stop();
    }
  });
});
