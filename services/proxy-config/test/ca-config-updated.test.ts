// config.updated from proxy-config reaches the real CA process (startMeshidCa, built
// services/ca) over a real nats-server, and the CA applies it.
import { meshidProxyconfigV1 as pb } from "@meshid/proto";
import {
  createTestCa,
  startMeshidCa,
  startNatsServer,
  type MeshidCaProcess,
  type NatsServer,
} from "@meshid/testkit";
import { startProxyConfigHarness, type ProxyConfigHarness } from "./fixtures/proxy-config-harness";
import { waitFor } from "./fixtures/wait";

jest.setTimeout(180_000);

describe("ca config updated", () => {
  let nats: NatsServer;
  let ca: MeshidCaProcess;
  let h: ProxyConfigHarness;

  beforeAll(async () => {
    nats = await startNatsServer();
    ca = await startMeshidCa({ natsUrl: nats.url });
    h = await startProxyConfigHarness({ ca: await createTestCa(), natsUrl: nats.url });
  });

  afterAll(async () => {
    await h?.stop();
    await ca?.stop();
    await nats?.stop();
  });

  it("ca config updated – the CA applies a new svidTTL", async () => {
    const res = await h.admin.meshConfig.updateMeshConfig({ svidTtl: "30m", rotateNow: false });
    expect(res.config?.svidTtl).toBe("30m");
    await waitFor("the CA's log line", () =>
      /"svidTtlSeconds":1800[^\n]*ca: applied config\.updated/.test(ca.output()) ? true : undefined,
    );
  });

  it("ca config updated – caKeyType with rotateNow makes the CA activate a new ec-p384 authority", async () => {
    const admin = ca.admin();
    const before = await admin.authorities.getX509AuthorityState({});
    const res = await h.admin.meshConfig.updateMeshConfig({
      caKeyType: "ec-p384",
      rotateNow: true,
    });
    expect(res.config).toMatchObject({
      caKeyType: "ec-p384",
      mtlsMode: pb.MtlsMode.MTLS_MODE_PERMISSIVE,
    });
    const after = await waitFor("a new active authority", async () => {
      const state = await admin.authorities.getX509AuthorityState({});
      return state.active?.authorityId !== before.active?.authorityId ? state : undefined;
    });
    expect(after.active?.keyType).toBe("ec-p384");
    expect(after.old.map((a) => a.authorityId)).toContain(before.active?.authorityId);
  });

  it("ca config updated – rotateNow alone (no change) still asks the CA to rotate", async () => {
    const admin = ca.admin();
    const before = await admin.authorities.getX509AuthorityState({});
    const generation = (await h.admin.meshConfig.getMeshConfig({})).config?.generation;
    const res = await h.admin.meshConfig.updateMeshConfig({ rotateNow: true });
    expect(res.config?.generation).toBe(generation);
    await waitFor("another new active authority", async () => {
      const state = await admin.authorities.getX509AuthorityState({});
      return state.active?.authorityId !== before.active?.authorityId ? true : undefined;
    });
  });
});
