// Issue 6's cross-service tests: two workloads A → B through their meshid sidecars (real NGINX),
// configured by proxy-config from the MeshConfig resource and pod annotations (see README.md).
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { meshidProxyconfigV1 } from "@meshid/proto";
import { createTestCa } from "@meshid/testkit";
import { startK8sMesh, waitFor, type K8sMesh } from "../support/k8s-mesh";
import {
  MTLS_MODE_ANNOTATION,
  startMeshWorkload,
  startProxyConfigPod,
  type MeshWorkload,
  type ProxyConfigPod,
} from "../support/sidecar-mesh";

jest.setTimeout(300_000);

const { MtlsMode } = meshidProxyconfigV1;

interface Reply {
  readonly status: number;
  readonly body: string;
}

/**
 * GET on a fresh connection each time: a kept-alive connection could be closed by an NGINX
 * worker retiring after a reload just as the next request is sent on it, a client-side race
 * that says nothing about the mesh.
 */
function get(url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** GET over TLS to 127.0.0.1:`port` with an optional client certificate (server unchecked). */
function getTls(port: number, client?: { cert: string; key: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port,
        path: "/",
        servername: "localhost",
        rejectUnauthorized: false,
        timeout: 10_000,
        agent: false,
        ...client,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Waits until `check` holds 10 times in a row: after a mode change NGINX reloads, and until its
 * old workers are gone a connection can still meet the previous configuration (or, when the
 * port moves between the permissive stream front and an http server, a closed listener).
 */
function waitForSteady(what: string, check: () => Promise<boolean>): Promise<true> {
  let streak = 0;
  return waitFor(what, async () => {
    streak = (await check().catch(() => false)) ? streak + 1 : 0;
    return streak >= 10;
  });
}

/** A workload's NGINX warnings and errors, then its last log lines (for failure messages). */
async function nginxErrors(w: MeshWorkload): Promise<string> {
  const log = await readFile(join(w.svidDir, "..", "nginx", "logs", "error.log"), "utf8").catch(
    () => "",
  );
  const lines = log.split("\n");
  // Problems first (the notices of every reload would push them out of a plain tail).
  const problems = lines.filter((l) => /\[(warn|error|crit|alert|emerg)\]/.test(l)).slice(-15);
  return (
    `--- ${w.pod.name} nginx error.log: warnings and errors ---\n${problems.join("\n")}\n` +
    `--- ${w.pod.name} nginx error.log: last lines ---\n${lines.slice(-6).join("\n")}`
  );
}

/** True when B's sidecar did not serve the request to B's app. */
async function refused(call: () => Promise<Reply>): Promise<boolean> {
  try {
    const res = await call();
    return res.status !== 200;
  } catch {
    return true;
  }
}

/** SHA-256 of the root (in `bundlePem`) that the first certificate of `chainPem` chains to. */
function rootOf(chainPem: string, bundlePem: string): string {
  const split = (pem: string): X509Certificate[] =>
    (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
      (b) => new X509Certificate(b),
    );
  const chain = split(chainPem);
  const roots = split(bundlePem);
  let current = chain[0]!;
  for (let i = 0; i < 5; i++) {
    const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root !== undefined) return root.fingerprint256;
    const next = chain.find((c) => c !== current && current.checkIssued(c));
    if (next === undefined) break;
    current = next;
  }
  throw new Error("the chain leads to no root of the bundle");
}

describe("mTLS modes (A → B through meshid sidecars)", () => {
  let mesh: K8sMesh;
  let pc: ProxyConfigPod;
  let b: MeshWorkload;
  let a: MeshWorkload;
  let foreign: { cert: string; key: string };

  beforeAll(async () => {
    mesh = await startK8sMesh();
    pc = await startProxyConfigPod(mesh, "permissive");
    b = await startMeshWorkload(mesh, pc, {
      namespace: "shop",
      name: "api-b",
      serviceAccount: "api",
    });
    a = await startMeshWorkload(mesh, pc, {
      namespace: "shop",
      name: "web-a",
      serviceAccount: "web",
      peer: b,
    });
    const other = await createTestCa({ trustDomain: "foreign.test" });
    const svid = await other.issueSvid({ spiffeId: "spiffe://foreign.test/ns/shop/sa/web" });
    foreign = { cert: svid.certChainPem, key: svid.keyPem };
  });

  afterAll(async () => {
    pc?.close();
    await mesh?.stop();
  });

  const viaA = (): Promise<Reply> => get(`http://127.0.0.1:${a.outboundPort}/`);
  const plainToB = (): Promise<Reply> => get(`http://127.0.0.1:${b.inboundPort}/`);
  const foreignToB = (): Promise<Reply> => getTls(b.inboundPort, foreign);
  const setModeAnnotation = (w: MeshWorkload, mode: string | undefined): void => {
    const current = mesh.kube.get<{ metadata: { annotations?: Record<string, string> } }>({
      kind: "Pod",
      namespace: w.pod.namespace,
      name: w.pod.name,
    })!;
    const annotations = { ...current.metadata.annotations };
    if (mode === undefined) delete annotations[MTLS_MODE_ANNOTATION];
    else annotations[MTLS_MODE_ANNOTATION] = mode;
    mesh.kube.apply({ ...current, metadata: { ...current.metadata, annotations } });
  };
  const expectMtlsFromA = async (): Promise<void> => {
    const res = await viaA();
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ app: "api-b", caller: a.pod.spiffeId });
  };

  it("mtls modes – strict on B: A's mTLS request 200; plaintext and another trust domain's certificate refused", async () => {
    setModeAnnotation(b, "strict");
    // B's port moves from the permissive stream front to the TLS server: wait for the new
    // rendering to be in force (plaintext refused and A served) before looking closer.
    await waitForSteady(
      "B strict (plaintext refused, A served)",
      async () =>
        (await refused(plainToB)) && (await viaA().catch(() => undefined))?.status === 200,
    );
    await expectMtlsFromA();
    expect(await refused(plainToB)).toBe(true);
    expect(await refused(foreignToB)).toBe(true);
    expect(await refused(() => getTls(b.inboundPort))).toBe(true);
  });

  it("mtls modes – permissive on B: mTLS 200 and plaintext 200", async () => {
    setModeAnnotation(b, "permissive");
    await waitForSteady("B permissive (plaintext and A served)", async () => {
      const res = await plainToB().catch(() => undefined);
      const mtls = await viaA().catch(() => undefined);
      return res?.status === 200 && mtls?.status === 200;
    });
    const plain = await plainToB();
    expect(JSON.parse(plain.body)).toMatchObject({ app: "api-b", caller: null });
    await expectMtlsFromA();
  });

  it("mtls modes – off on B: plaintext 200", async () => {
    setModeAnnotation(b, "off");
    await waitForSteady("B off (TLS no longer served, plaintext served)", async () => {
      const tls = await getTls(b.inboundPort).then(
        () => "tls",
        () => "no tls",
      );
      return tls === "no tls" && (await plainToB().catch(() => undefined))?.status === 200;
    });
    const res = await plainToB();
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ app: "api-b", caller: null });
  });

  it("mtls modes – permissive → strict through MeshConfigService is enforced without restarting anything; a permissive annotation under global strict is ignored with an Event", async () => {
    setModeAnnotation(b, undefined);
    await waitForSteady(
      "B back to the global permissive",
      async () => (await plainToB().catch(() => undefined))?.status === 200,
    );
    const pids = [a.sidecar.pid, b.sidecar.pid];
    const nginxPid = async (w: MeshWorkload): Promise<string> =>
      (await readFile(join(w.svidDir, "..", "nginx", "nginx.pid"), "utf8")).trim();
    const nginxPids = [await nginxPid(a), await nginxPid(b)];

    const updated = await pc.meshConfig.updateMeshConfig({ mtlsMode: MtlsMode.MTLS_MODE_STRICT });
    expect(updated.config?.mtlsMode).toBe(MtlsMode.MTLS_MODE_STRICT);
    // Both sidecars reload; B's port moves from the permissive stream front to the TLS server.
    await waitForSteady(
      "global strict enforced on B (plaintext refused, A served)",
      async () =>
        (await refused(plainToB)) && (await viaA().catch(() => undefined))?.status === 200,
    );
    await expectMtlsFromA();
    expect([a.sidecar.pid, b.sidecar.pid]).toEqual(pids);
    expect(a.sidecar.exitStatus()).toBeUndefined();
    expect(b.sidecar.exitStatus()).toBeUndefined();
    expect([await nginxPid(a), await nginxPid(b)]).toEqual(nginxPids);

    setModeAnnotation(b, "permissive");
    const event = await waitFor("an Event on B about the ignored annotation", () =>
      mesh.kube.events().find((e) => {
        const ev = e as { involvedObject?: { name?: string }; regarding?: { name?: string } };
        return (ev.involvedObject?.name ?? ev.regarding?.name) === b.pod.name;
      }),
    );
    expect(JSON.stringify(event)).toMatch(/permissive/);
    expect(await refused(plainToB)).toBe(true);
    await expectMtlsFromA();
  });

  describe("under load", () => {
    let stopLoad: () => Promise<{ ok: number; failed: string[] }>;

    beforeAll(() => {
      let running = true;
      let ok = 0;
      const failed: string[] = [];
      const loop = (async () => {
        while (running) {
          try {
            const res = await viaA();
            if (res.status === 200) ok++;
            else failed.push(`HTTP ${res.status}: ${res.body.slice(0, 200)}`);
          } catch (err) {
            failed.push((err as Error).message);
          }
        }
      })();
      stopLoad = async () => {
        running = false;
        await loop;
        return { ok, failed };
      };
    });

    afterAll(async () => {
      await stopLoad?.();
    });

    const rotate = async (w: MeshWorkload): Promise<string> => {
      const before = await w.svidSerial();
      const listed = await mesh.admin.entries.listEntries({
        bySelectors: [{ type: "k8s", value: `pod-uid:${w.pod.uid}` }],
      });
      const entry = listed.entries[0]!;
      // A TTL change makes the agent mint a new SVID at once.
      const ttl = entry.x509SvidTtlSeconds === 3600 ? 3601 : 3600;
      const res = await mesh.admin.entries.batchUpdateEntry({
        entries: [{ ...entry, x509SvidTtlSeconds: ttl }],
      });
      expect(res.results[0]?.status?.code).toBe(0);
      const after = await waitFor(`a new SVID for ${w.pod.name}`, async () => {
        const serial = await w.svidSerial().catch(() => before);
        return serial !== before ? serial : undefined;
      });
      await waitFor(
        `NGINX of ${w.pod.name} serving ${after}`,
        async () => (await w.servedSerial().catch(() => "")) === (await w.svidSerial()),
      );
      return after;
    };

    it("mtls modes – B's SVID rotates 5 times under continuous A → B requests: none fails and NGINX serves each new certificate", async () => {
      const serials = new Set<string>([await b.svidSerial()]);
      for (let i = 0; i < 5; i++) serials.add(await rotate(b));
      expect(serials.size).toBeGreaterThanOrEqual(6);
      await expectMtlsFromA();
      const { ok, failed } = await stopLoad();
      if (failed.length > 0) {
        throw new Error(
          `${failed.length} failed (e.g. ${failed[0]?.slice(0, 80) ?? ""})\n${await nginxErrors(a)}\n${await nginxErrors(b)}`,
        );
      }
      expect(ok).toBeGreaterThan(0);
    });

    it("mtls modes – a forced CA rotation: peers of the old and of the new chain accept each other during the overlap", async () => {
      let ok = 0;
      const failed: string[] = [];
      let running = true;
      const loop = (async () => {
        while (running) {
          try {
            const res = await viaA();
            if (res.status === 200) ok++;
            else failed.push(`HTTP ${res.status}`);
          } catch (err) {
            failed.push((err as Error).message);
          }
        }
      })();
      try {
        const oldRoot = rootOf(
          await readFile(join(b.svidDir, "svid.pem"), "utf8"),
          await mesh.caBundlePem(),
        );
        const prepared = await mesh.admin.authorities.prepareX509Authority({});
        // Both sidecars have the new root before anything is signed with it.
        for (const w of [a, b]) {
          await waitFor(`two roots in ${w.pod.name}'s bundle`, async () => {
            const pem = await readFile(join(w.svidDir, "bundle.pem"), "utf8");
            return (pem.match(/BEGIN CERTIFICATE/g) ?? []).length >= 2;
          });
        }
        await mesh.admin.authorities.activateX509Authority({ authorityId: prepared.authorityId });
        await rotate(b);
        const bundle = await mesh.caBundlePem();
        const rootB = rootOf(await readFile(join(b.svidDir, "svid.pem"), "utf8"), bundle);
        const rootA = rootOf(await readFile(join(a.svidDir, "svid.pem"), "utf8"), bundle);
        expect(rootB).not.toBe(oldRoot);
        expect(rootA).toBe(oldRoot);
        // Old-chain client A → new-chain server B.
        await expectMtlsFromA();
        await rotate(a);
        expect(rootOf(await readFile(join(a.svidDir, "svid.pem"), "utf8"), bundle)).toBe(rootB);
        await expectMtlsFromA();
      } finally {
        running = false;
        await loop;
      }
      if (failed.length > 0) {
        throw new Error(
          `${failed.length} failed (e.g. ${failed[0]?.slice(0, 80) ?? ""})\n${await nginxErrors(a)}\n${await nginxErrors(b)}`,
        );
      }
      expect(ok).toBeGreaterThan(0);
    });
  });
});
