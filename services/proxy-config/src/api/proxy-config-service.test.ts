import { type meshidProxyconfigV1 as pb } from "@meshid/proto";
import type { ProxyConfigHub } from "../domain/proxy-config-hub";
import type { ProxyConfigCallContext } from "./authz";
import { createProxyConfigService, validProxyConfigRequest } from "./proxy-config-service";

const request: pb.ProxyConfigRequest = {
  namespace: "apps",
  podName: "web-0",
  inbound: [],
  outbound: [],
  layout: { svidDir: "/svid", nginxPrefix: "/nginx", streamModulePath: "", nginxUser: "" },
};

describe("proxy config service", () => {
  it("proxy config service – a Watch beyond the stream limit is RESOURCE_EXHAUSTED", async () => {
    const hub: ProxyConfigHub = {
      get: () => {
        throw new Error("unused");
      },
      watch: () => {
        throw new Error("must not be opened");
      },
      openStreams: () => 2,
    };
    const service = createProxyConfigService({ hub, maxWatchStreams: 2 });
    const context = { signal: new AbortController().signal } as unknown as Parameters<
      typeof service.watchProxyConfig
    >[1] &
      ProxyConfigCallContext;
    const stream = service.watchProxyConfig(request, context) as AsyncIterable<unknown>;
    await expect(
      (async () => {
        for await (const _ of stream) return;
      })(),
    ).rejects.toMatchObject({
      kind: "resource_exhausted",
      code: "proxy_config.watch.too_many_streams",
    });
  });

  it("proxy config service – namespace and pod name must be Kubernetes names", () => {
    expect(() => validProxyConfigRequest({ ...request, namespace: "", podName: "Web_0" })).toThrow(
      /namespace: must be a Kubernetes name[\s\S]*podName: must be a Kubernetes name/,
    );
  });
});
