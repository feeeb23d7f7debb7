// SVID files across many rotations and the certificate NGINX serves, against the real agent,
// CA, nats-server and nginx.
import { readFile, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { WorkloadX509Svid } from "@meshid/workload-api";
import {
  eventually,
  readSvidFiles,
  startSidecarStack,
  startTestSidecar,
  tlsPeer,
  type SidecarStack,
  type SvidFilesSeen,
  type TestSidecar,
} from "./sidecar-harness";

jest.setTimeout(300_000);

const ROTATIONS = 8;
const SERVER_ID = "spiffe://example.org/sidecar/server";
const CLIENT_ID = "spiffe://example.org/sidecar/client";

describe("sidecar – SVID rotation", () => {
  let stack: SidecarStack;
  let sidecar: TestSidecar | undefined;
  let serverEntry: string;
  let client: WorkloadX509Svid;

  beforeAll(async () => {
    stack = await startSidecarStack();
    serverEntry = await stack.createEntry("/sidecar/server");
    await stack.createEntry("/sidecar/client");
    client = await stack.fetchSvid(CLIENT_ID);
  });

  afterAll(async () => {
    await sidecar?.stop();
    await stack?.stop();
  });

  it("sidecar rotation – files stay consistent with 0600/0700 modes and NGINX serves each new certificate", async () => {
    sidecar = await startTestSidecar({
      stack,
      name: "rotation",
      config: { spiffeId: SERVER_ID },
    });
    const s = sidecar;
    const { port } = s;
    await eventually("sidecar ready", () => (s.sidecar.ready() ? true : undefined)).catch(
      (err: unknown) => {
        throw new Error(
          `${String(err)}\nstatus: ${JSON.stringify(s.sidecar.status())}\nlog:\n${s.memory.text()}`,
        );
      },
    );

    // A reader that keeps resolving the link and checking that what it finds belongs together.
    const seen: SvidFilesSeen[] = [];
    const problems: string[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        try {
          const files = await readSvidFiles(s.config.svidDir);
          if (!files.keyMatches || !files.chainVerifies || files.uri !== SERVER_ID) {
            problems.push(`inconsistent ${files.dir}: ${JSON.stringify(files)}`);
          }
          seen.push(files);
        } catch (err) {
          // A version pruned between resolving the link and reading it is fine; a missing
          // link is not.
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") problems.push(String(err));
          else
            await readSvidFiles(s.config.svidDir).catch((e: unknown) => {
              if ((e as NodeJS.ErrnoException).code !== "ENOENT") problems.push(String(e));
            });
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const served: string[] = [];
    try {
      for (let i = 0; i <= ROTATIONS; i += 1) {
        if (i > 0) {
          const before = s.sidecar.status().svid?.serialNumber;
          await stack.forceRotation(serverEntry);
          await eventually(`rotation ${i} written`, () => {
            const now = s.sidecar.status().svid?.serialNumber;
            return now !== undefined && now !== before ? now : undefined;
          });
        }
        const expected = await eventually(`rotation ${i} served by NGINX`, () => {
          const st = s.sidecar.status();
          return st.servedSerialNumber !== undefined &&
            st.servedSerialNumber === st.svid?.serialNumber
            ? st.servedSerialNumber
            : undefined;
        });
        // The reload is confirmed: a fresh handshake presents exactly the new certificate.
        const peer = await tlsPeer(port, client);
        expect(peer.serialNumber).toBe(expected.toUpperCase());
        expect(peer.uri).toBe(SERVER_ID);
        served.push(peer.serialNumber);

        const files = await readSvidFiles(s.config.svidDir);
        expect(files.serialNumber).toBe(expected.toUpperCase());
        expect(files.keyMatches).toBe(true);
        expect(files.chainVerifies).toBe(true);
        expect(files.modes).toEqual({ dir: "700", key: "600", cert: "600", bundle: "600" });
      }
    } finally {
      reading = false;
      await reader;
    }
    expect(problems).toEqual([]);
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(served).size).toBe(ROTATIONS + 1);

    // Old versions are pruned: the current one and the previous one stay.
    const versions = (await readdir(dirname(s.config.svidDir))).filter((n) => /^svid-\d+$/.test(n));
    expect(versions.length).toBeLessThanOrEqual(2);
    const st = s.sidecar.status();
    expect(st.degraded).toBe(false);
    expect(st.lastReload).toMatchObject({ kind: "reload", result: "success" });
    expect(s.memory.text()).not.toMatch(/PRIVATE KEY/);
  });

  it("sidecar rotation – a bundle change (a prepared CA authority) rewrites bundle.pem and reloads NGINX", async () => {
    const s = sidecar!;
    const countRoots = (pem: string): number => pem.split("BEGIN CERTIFICATE").length - 1;
    const before = await readFile(join(s.config.svidDir, "bundle.pem"), "utf8");
    const reloadsBefore = s.events.filter((e) => e.type === "reloaded").length;
    const admin = stack.ca.admin();
    await admin.authorities.prepareX509Authority({});
    const after = await s.until("bundle.pem with the prepared authority", async () => {
      const pem = await readFile(join(s.config.svidDir, "bundle.pem"), "utf8");
      return countRoots(pem) > countRoots(before) ? pem : undefined;
    });
    expect(countRoots(after)).toBe(countRoots(before) + 1);
    await s.until("NGINX reloaded after the bundle change", () =>
      s.events.filter((e) => e.type === "reloaded").length > reloadsBefore &&
      s.sidecar.status().lastReload?.result === "success"
        ? true
        : undefined,
    );
    // NGINX still verifies clients with the new bundle (the old authority still signs).
    const peer = await tlsPeer(s.port, client);
    expect(peer.uri).toBe(SERVER_ID);
  });
});
