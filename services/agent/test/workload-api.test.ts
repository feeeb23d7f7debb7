// The SPIFFE Workload API over a real Unix socket: real peer credentials (SO_PEERCRED), the real
// unix attestor and PID-reuse-guarded workload attestation, the real SVID cache minting with a
// real test CA, and clients that are third-party style (hand-decoded wire format), in this
// process (uid 0) and in child processes under other uids (setpriv).
import { X509Certificate, createPrivateKey } from "node:crypto";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import type { EventPayload, EventType } from "@meshid/events";
import {
  bundleFromDer,
  derToPem,
  parseSelector,
  splitDerCertificates,
  validateX509Svid,
  type Selector,
} from "@meshid/spiffe";
import { createMemoryLogger, type MemoryLogger } from "@meshid/telemetry";
import {
  createFakeClock,
  createTempDir,
  createTestCa,
  requireBinary,
  runCommand,
  type FakeClock,
  type TempDir,
  type TestCa,
} from "@meshid/testkit";
import { MeshidError } from "@meshid/errors";
import {
  startWorkloadApiServer,
  type WorkloadApiServer,
} from "../src/adapters/workload-api-server";
import { createUnixAttestor } from "../src/adapters/unix-attestor";
import { createWorkloadAttestation } from "../src/adapters/workload-attestation";
import { NO_IDENTITY_MESSAGE } from "../src/api/workload-api";
import { createSvidCache, type SvidCache } from "../src/domain/svid-cache";
import type { AgentBundle, AgentEntry } from "../src/domain/types";
import type { EventSink, WorkloadAttestor } from "../src/ports";
import { createTestCaClient } from "../src/testing/test-ca-client";
import {
  createWorkloadClient,
  type WorkloadClient,
  type WorkloadStream,
  type WorkloadX509SvidMessage,
} from "../src/testing/workload-client";

const TD = "example.org";
const AGENT_ID = `spiffe://${TD}/meshid/agent/node-1`;
const NOBODY = 65534;
const UNREGISTERED_UID = 43210;
const FIXTURE = join(__dirname, "fixtures", "fetch-x509-svid.js");

if (typeof process.getuid !== "function" || process.getuid() !== 0) {
  throw new Error(
    "test/workload-api.test.ts must run as root: it starts clients under other uids with setpriv",
  );
}

function entry(id: string, selectors: string[]): AgentEntry {
  return {
    id,
    spiffeId: `spiffe://${TD}/workload/${id}`,
    parentId: AGENT_ID,
    selectors: selectors.map(parseSelector),
    dnsNames: [],
    x509SvidTtlSeconds: 0,
    hint: `hint-${id}`,
    revision: 1,
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Reads messages until one satisfies `cond` (the cache may coalesce intermediate states). */
async function nextMatching(
  stream: WorkloadStream<WorkloadX509SvidMessage>,
  cond: (m: WorkloadX509SvidMessage) => boolean,
): Promise<WorkloadX509SvidMessage> {
  for (let i = 0; i < 100; i++) {
    const message = await stream.next();
    if (cond(message)) return message;
  }
  throw new Error("no matching message");
}

const idsOf = (m: WorkloadX509SvidMessage): string[] => m.svids.map((s) => s.spiffeId).sort();

interface ChildResult {
  readonly ok: boolean;
  readonly spiffeIds?: string[];
  readonly complete?: boolean;
  readonly code?: number;
  readonly details?: string;
}

/** Runs the stand-alone client fixture as `uid`:`gid` with no supplementary groups. */
async function fetchAsUid(endpoint: string, uid: number, gid = uid): Promise<ChildResult> {
  const result = await runCommand(
    requireBinary("setpriv", "util-linux"),
    [
      `--reuid=${uid}`,
      `--regid=${gid}`,
      "--clear-groups",
      "--",
      process.execPath,
      FIXTURE,
      endpoint,
    ],
    { timeoutMs: 30_000 },
  );
  if (result.code !== 0) {
    throw new Error(`client fixture failed (${result.code}): ${result.stderr}${result.stdout}`);
  }
  return JSON.parse(result.stdout.trim()) as ChildResult;
}

describe("Workload API server (Unix socket, real attestation and SVID cache)", () => {
  let tmp: TempDir;
  let ca: TestCa;
  let cache: SvidCache;
  let bundle: AgentBundle;
  let server: WorkloadApiServer;
  let socketPath: string;
  let endpoint: string;
  let log: MemoryLogger;
  let clock: FakeClock;
  const entries = new Map<string, AgentEntry>();
  const cacheStop = new AbortController();
  let cacheRunning: Promise<void>;
  const clients: WorkloadClient[] = [];
  const extraServers: WorkloadApiServer[] = [];

  const sync = (): void => cache.applyEntries(new Map(entries));
  const client = (sendHeader = true): WorkloadClient => {
    const c = createWorkloadClient({ endpoint, sendHeader });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    tmp = await createTempDir("agent-wapi");
    // Other uids must reach the socket: the directories on the way are traversable.
    await chmod(tmp.path, 0o755);
    socketPath = join(tmp.path, "run", "meshid", "agent.sock");
    endpoint = `unix://${socketPath}`;
    ca = await createTestCa({ trustDomain: TD });
    const intermediate = await ca.issueIntermediate();
    clock = createFakeClock(new Date());
    const caClient = createTestCaClient({
      ca,
      getEntry: (id) => entries.get(id),
      now: () => clock.now(),
    });
    // SVIDs are signed by an intermediate: the chain sent is leaf + intermediate, leaf first.
    caClient.useAuthority({
      certDer: intermediate.certDer,
      privateKey: intermediate.privateKey,
      chainDer: intermediate.chainDer,
    });
    const events: EventSink = {
      publish<K extends EventType>(_type: K, _payload: EventPayload<K>): Promise<unknown> {
        return Promise.resolve();
      },
    };
    log = createMemoryLogger();
    cache = createSvidCache({ caClient, clock, events, logger: log.logger, agentId: AGENT_ID });
    bundle = {
      trustDomain: TD,
      x509AuthoritiesDer: [ca.rootCertDer],
      taintedAuthorityIds: [],
      sequenceNumber: 1,
    };
    cache.applyBundle(bundle);
    for (const e of [
      entry("nobody", [`unix:uid:${NOBODY}`]),
      entry("nobody-group", [`unix:uid:${NOBODY}`, `unix:gid:${NOBODY}`]),
      entry("root", ["unix:uid:0"]),
    ]) {
      entries.set(e.id, e);
    }
    sync();
    cacheRunning = cache.run(cacheStop.signal);
    await until(() => cache.stats().cached === 3, "the first SVIDs");

    server = await startWorkloadApiServer({
      socketPath,
      attestation: createWorkloadAttestation({
        attestors: [createUnixAttestor()],
        logger: log.logger,
      }),
      identities: cache,
      logger: log.logger,
    });
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(extraServers.map((s) => s.close()));
    await server?.close();
    cacheStop.abort();
    await cacheRunning;
    await tmp?.cleanup();
  });

  it("socket – 0777 socket in 0755 directories it created", async () => {
    expect(server.socketPath).toBe(socketPath);
    const socketInfo = await stat(socketPath);
    expect(socketInfo.isSocket()).toBe(true);
    expect(socketInfo.mode & 0o777).toBe(0o777);
    expect((await stat(join(tmp.path, "run"))).mode & 0o777).toBe(0o755);
    expect((await stat(join(tmp.path, "run", "meshid"))).mode & 0o777).toBe(0o755);
  });

  it("socket – an existing directory keeps its mode", async () => {
    const dir = join(tmp.path, "private");
    await mkdir(dir, { mode: 0o700 });
    await chmod(dir, 0o700);
    const other = await startWorkloadApiServer({
      socketPath: join(dir, "api.sock"),
      attestation: { attest: () => Promise.resolve([]) },
      identities: cache,
      logger: log.logger,
    });
    extraServers.push(other);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    await other.close();
  });

  it("header – a call without workload.spiffe.io: true is INVALID_ARGUMENT", async () => {
    const c = client(false);
    await expect(c.fetchX509Svid().next()).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
    await expect(c.fetchX509Bundles().next()).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
    await expect(c.fetchJwtSvid({ audience: ["a"] })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
    const child = await runCommand(process.execPath, [FIXTURE, endpoint], {
      env: { ...process.env, WORKLOAD_CLIENT_NO_HEADER: "1" },
    });
    expect(JSON.parse(child.stdout)).toMatchObject({ ok: false, code: status.INVALID_ARGUMENT });
  });

  it("FetchX509SVID – a child under uid 65534 gets exactly the SVIDs of unix:uid:65534", async () => {
    const result = await fetchAsUid(endpoint, NOBODY);
    expect(result).toEqual({
      ok: true,
      spiffeIds: [`spiffe://${TD}/workload/nobody`, `spiffe://${TD}/workload/nobody-group`].sort(),
      complete: true,
    });
  });

  it("FetchX509SVID – callers of different uids at once each get only their own SVIDs", async () => {
    const [nobody, otherGid, unregistered, root] = await Promise.all([
      fetchAsUid(endpoint, NOBODY),
      // Same uid, another gid: only the entry that does not need gid 65534.
      fetchAsUid(endpoint, NOBODY, 4321),
      fetchAsUid(endpoint, UNREGISTERED_UID),
      client().fetchX509Svid().next(),
    ]);
    expect(nobody.spiffeIds).toEqual(
      [`spiffe://${TD}/workload/nobody`, `spiffe://${TD}/workload/nobody-group`].sort(),
    );
    expect(otherGid.spiffeIds).toEqual([`spiffe://${TD}/workload/nobody`]);
    expect(unregistered).toMatchObject({ ok: false, code: status.PERMISSION_DENIED });
    expect(idsOf(root)).toEqual([`spiffe://${TD}/workload/root`]);
  });

  it("FetchX509SVID – uid 0 in this process gets only its own SVID", async () => {
    const message = await client().fetchX509Svid().next();
    expect(idsOf(message)).toEqual([`spiffe://${TD}/workload/root`]);
    expect(message.svids[0]!.hint).toBe("hint-root");
    expect(message.crl).toEqual([]);
    expect(message.federatedBundles).toEqual({});
  });

  it("FetchX509SVID – an unregistered uid gets PERMISSION_DENIED", async () => {
    const result = await fetchAsUid(endpoint, UNREGISTERED_UID);
    expect(result).toEqual({
      ok: false,
      code: status.PERMISSION_DENIED,
      details: NO_IDENTITY_MESSAGE,
    });
  });

  it("FetchX509SVID – the SVID is DER, validates against the delivered bundle, and passes openssl verify", async () => {
    const message = await client().fetchX509Svid().next();
    const svid = message.svids[0]!;
    const chain = splitDerCertificates(svid.x509Svid);
    expect(chain).toHaveLength(2);
    const authorities = splitDerCertificates(svid.bundle);
    expect(authorities.map((a) => Buffer.from(a))).toEqual([Buffer.from(ca.rootCertDer)]);

    const validated = await validateX509Svid({
      chain,
      bundle: bundleFromDer(TD, svid.bundle),
      at: new Date(),
    });
    expect(validated.spiffeId.toString()).toBe(svid.spiffeId);

    const key = createPrivateKey({ key: svid.x509SvidKey, format: "der", type: "pkcs8" });
    expect(new X509Certificate(Buffer.from(chain[0]!)).checkPrivateKey(key)).toBe(true);

    const dir = join(tmp.path, "openssl");
    await mkdir(dir);
    await writeFile(join(dir, "leaf.pem"), derToPem("CERTIFICATE", chain[0]!));
    await writeFile(
      join(dir, "chain.pem"),
      chain
        .slice(1)
        .map((c) => derToPem("CERTIFICATE", c))
        .join(""),
    );
    await writeFile(
      join(dir, "bundle.pem"),
      authorities.map((a) => derToPem("CERTIFICATE", a)).join(""),
    );
    const verify = await runCommand(requireBinary("openssl", "openssl"), [
      "verify",
      "-CAfile",
      join(dir, "bundle.pem"),
      "-untrusted",
      join(dir, "chain.pem"),
      join(dir, "leaf.pem"),
    ]);
    expect(verify.stderr).toBe("");
    expect(verify.stdout.trim()).toBe(`${join(dir, "leaf.pem")}: OK`);
  });

  it("FetchX509SVID – a new matching entry appears on the open stream; withdrawing all ends it PERMISSION_DENIED", async () => {
    const stream = client().fetchX509Svid();
    expect(idsOf(await stream.next())).toEqual([`spiffe://${TD}/workload/root`]);

    entries.set("root-2", entry("root-2", ["unix:uid:0", "unix:user:root"]));
    sync();
    const updated = await nextMatching(stream, (m) => m.svids.length === 2);
    expect(idsOf(updated)).toEqual([
      `spiffe://${TD}/workload/root`,
      `spiffe://${TD}/workload/root-2`,
    ]);

    entries.delete("root");
    sync();
    const withdrawn = await nextMatching(stream, (m) => m.svids.length === 1);
    expect(idsOf(withdrawn)).toEqual([`spiffe://${TD}/workload/root-2`]);

    entries.delete("root-2");
    sync();
    await expect(nextMatching(stream, () => false)).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
      details: NO_IDENTITY_MESSAGE,
    });
    expect(await stream.ended).toEqual({
      code: status.PERMISSION_DENIED,
      details: NO_IDENTITY_MESSAGE,
    });

    // Registered again: the client's retry gets the SVID.
    entries.set("root", entry("root", ["unix:uid:0"]));
    sync();
    expect(idsOf(await client().fetchX509Svid().next())).toEqual([`spiffe://${TD}/workload/root`]);
  });

  it("FetchX509Bundles – the bundle keyed by spiffe://<td>, again on every change", async () => {
    const stream = client().fetchX509Bundles();
    const first = await stream.next();
    expect(Object.keys(first.bundles)).toEqual([`spiffe://${TD}`]);
    expect(first.bundles[`spiffe://${TD}`]).toEqual(Buffer.from(ca.rootCertDer));

    const next = await createTestCa({ trustDomain: TD });
    cache.applyBundle({
      ...bundle,
      x509AuthoritiesDer: [ca.rootCertDer, next.rootCertDer],
      sequenceNumber: 2,
    });
    const second = await stream.next();
    expect(second.bundles[`spiffe://${TD}`]).toEqual(
      Buffer.concat([ca.rootCertDer, next.rootCertDer]),
    );
    // The SVID stream carries the new bundle too.
    const svidMessage = await client().fetchX509Svid().next();
    expect(svidMessage.svids[0]!.bundle).toEqual(Buffer.concat([ca.rootCertDer, next.rootCertDer]));
    cache.applyBundle({ ...bundle, sequenceNumber: 3 });
  });

  it("JWT methods – UNIMPLEMENTED", async () => {
    const c = client();
    await expect(c.fetchJwtSvid({ audience: ["x"] })).rejects.toMatchObject({
      code: status.UNIMPLEMENTED,
      details: "JWT-SVIDs are not supported yet",
    });
    await expect(c.validateJwtSvid({ audience: "x", svid: "a.b.c" })).rejects.toMatchObject({
      code: status.UNIMPLEMENTED,
    });
    await expect(c.fetchJwtBundles().next()).rejects.toMatchObject({
      code: status.UNIMPLEMENTED,
    });
  });

  it("logging – no key material in the logs", async () => {
    const message = await client().fetchX509Svid().next();
    const key = message.svids[0]!.x509SvidKey;
    const text = log.text();
    expect(text).not.toContain(key.toString("base64"));
    expect(text).not.toContain(key.toString("hex"));
    expect(text).not.toMatch(/PRIVATE KEY/);
  });

  describe("socket file handling", () => {
    it("socket – a stale socket file is replaced", async () => {
      const path = join(tmp.path, "stale", "api.sock");
      await mkdir(join(tmp.path, "stale"));
      // A process that bound the socket and died without removing it.
      const binder = await runCommand(process.execPath, [
        "-e",
        `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`,
      ]);
      expect(binder.code).toBe(0);
      expect((await stat(path)).isSocket()).toBe(true);

      const replaced = await startWorkloadApiServer({
        socketPath: path,
        attestation: { attest: () => Promise.resolve([parseSelector("unix:uid:0")]) },
        identities: cache,
        logger: log.logger,
      });
      extraServers.push(replaced);
      const c = createWorkloadClient({ endpoint: path });
      clients.push(c);
      expect(idsOf(await c.fetchX509Svid().next())).toEqual([`spiffe://${TD}/workload/root`]);
    });

    it("socket – refuses a socket a live server answers on, and a path that is not a socket", async () => {
      await expect(
        startWorkloadApiServer({
          socketPath,
          attestation: { attest: () => Promise.resolve([]) },
          identities: cache,
          logger: log.logger,
        }),
      ).rejects.toMatchObject({ code: "agent.workload_api.socket_in_use" });
      // The live server still serves.
      expect((await client().fetchX509Svid().next()).svids).toHaveLength(1);

      const file = join(tmp.path, "not-a-socket");
      await writeFile(file, "x");
      await expect(
        startWorkloadApiServer({
          socketPath: file,
          attestation: { attest: () => Promise.resolve([]) },
          identities: cache,
          logger: log.logger,
        }),
      ).rejects.toMatchObject({ code: "agent.workload_api.not_a_socket" });
      expect(await readFile(file, "utf8")).toBe("x");
    });

    it("close – ends open streams with UNAVAILABLE and removes the socket", async () => {
      const path = join(tmp.path, "closing", "api.sock");
      const closing = await startWorkloadApiServer({
        socketPath: path,
        attestation: { attest: () => Promise.resolve([parseSelector("unix:uid:0")]) },
        identities: cache,
        logger: log.logger,
      });
      extraServers.push(closing);
      const c = createWorkloadClient({ endpoint: path });
      clients.push(c);
      const stream = c.fetchX509Svid();
      await stream.next();
      await closing.close();
      expect((await stream.ended).code).toBe(status.UNAVAILABLE);
      await expect(stat(path)).rejects.toMatchObject({ code: "ENOENT" });
      await closing.close();
    });

    it("attestation – once per connection: every call on it reuses the selectors", async () => {
      const path = join(tmp.path, "per-connection", "api.sock");
      const attested: number[] = [];
      const counting = await startWorkloadApiServer({
        socketPath: path,
        attestation: {
          attest: (p) => {
            attested.push(p.pid);
            return Promise.resolve([parseSelector("unix:uid:0")]);
          },
        },
        identities: cache,
        logger: log.logger,
      });
      extraServers.push(counting);
      const c = createWorkloadClient({ endpoint: path });
      clients.push(c);
      const stream = c.fetchX509Svid();
      expect(idsOf(await stream.next())).toEqual([`spiffe://${TD}/workload/root`]);
      for (let i = 0; i < 3; i++) {
        expect(idsOf(await c.fetchX509Svid().next())).toEqual([`spiffe://${TD}/workload/root`]);
      }
      expect((await c.fetchX509Bundles().next()).bundles).toBeDefined();
      expect(attested).toEqual([process.pid]);
      // Another connection is attested on its own.
      const other = createWorkloadClient({ endpoint: path });
      clients.push(other);
      expect(idsOf(await other.fetchX509Svid().next())).toEqual([`spiffe://${TD}/workload/root`]);
      expect(attested).toEqual([process.pid, process.pid]);
      await counting.close();
    });
  });

  describe("attestation failures", () => {
    let procRoot: string;
    let mode: "reuse" | "unavailable" | "ok" = "ok";
    let guarded: WorkloadApiServer;
    let guardedPath: string;

    /** Copies this process's stat file into the fake /proc. */
    async function copyOwnStat(): Promise<string> {
      const text = await readFile(`/proc/${process.pid}/stat`, "utf8");
      await mkdir(join(procRoot, String(process.pid)), { recursive: true });
      await writeFile(join(procRoot, String(process.pid), "stat"), text);
      return text;
    }

    beforeAll(async () => {
      procRoot = join(tmp.path, "proc");
      await copyOwnStat();
      // Runs between the two start-time reads of the workload attestation.
      const attestor: WorkloadAttestor = {
        type: "unix",
        async attest(p): Promise<Selector[]> {
          if (mode === "unavailable") {
            throw new MeshidError("unavailable", "agent.attestation.test", "source unreachable");
          }
          if (mode === "reuse") {
            // The PID now names another process: same pid, later start time.
            const text = await readFile(join(procRoot, String(p.pid), "stat"), "utf8");
            const close = text.lastIndexOf(")");
            const fields = text.slice(close + 2).split(" ");
            fields[19] = String(Number(fields[19]) + 100);
            await writeFile(
              join(procRoot, String(p.pid), "stat"),
              `${text.slice(0, close + 2)}${fields.join(" ")}`,
            );
          }
          return [parseSelector(`unix:uid:${p.uid}`)];
        },
      };
      guardedPath = join(tmp.path, "guarded", "api.sock");
      guarded = await startWorkloadApiServer({
        socketPath: guardedPath,
        attestation: createWorkloadAttestation({
          attestors: [attestor],
          procRoot,
          logger: log.logger,
        }),
        identities: cache,
        logger: log.logger,
      });
      extraServers.push(guarded);
    });

    beforeEach(async () => {
      await copyOwnStat();
    });

    it("attestation – the guarded server serves when the process stays the same", async () => {
      mode = "ok";
      const c = createWorkloadClient({ endpoint: guardedPath });
      clients.push(c);
      expect(idsOf(await c.fetchX509Svid().next())).toEqual([`spiffe://${TD}/workload/root`]);
    });

    it("attestation – PID reuse during attestation is PERMISSION_DENIED", async () => {
      mode = "reuse";
      const c = createWorkloadClient({ endpoint: guardedPath });
      clients.push(c);
      await expect(c.fetchX509Svid().next()).rejects.toMatchObject({
        code: status.PERMISSION_DENIED,
        details: expect.stringMatching(/replaced by another process/) as unknown,
      });
      await expect(c.fetchX509Bundles().next()).rejects.toMatchObject({
        code: status.PERMISSION_DENIED,
      });
    });

    it("attestation – an unreachable attestation source is UNAVAILABLE", async () => {
      mode = "unavailable";
      const c = createWorkloadClient({ endpoint: guardedPath });
      clients.push(c);
      await expect(c.fetchX509Svid().next()).rejects.toMatchObject({
        code: status.UNAVAILABLE,
        details: expect.stringMatching(/source unreachable/) as unknown,
      });
    });
  });

  // Last: it moves the agent's clock past every SVID's half-life.
  it("FetchX509SVID – a rotation sends a new message with the new certificate", async () => {
    const stream = client().fetchX509Svid();
    const before = (await stream.next()).svids[0]!;
    const beforeSerial = new X509Certificate(splitDerCertificates(before.x509Svid)[0]!)
      .serialNumber;
    await clock.advance(40 * 60 * 1000);
    const after = await nextMatching(stream, (m) => !m.svids[0]!.x509Svid.equals(before.x509Svid));
    const rotated = after.svids[0]!;
    expect(rotated.spiffeId).toBe(before.spiffeId);
    expect(new X509Certificate(splitDerCertificates(rotated.x509Svid)[0]!).serialNumber).not.toBe(
      beforeSerial,
    );
    expect(rotated.x509SvidKey.equals(before.x509SvidKey)).toBe(false);
    const key = createPrivateKey({ key: rotated.x509SvidKey, format: "der", type: "pkcs8" });
    expect(
      new X509Certificate(splitDerCertificates(rotated.x509Svid)[0]!).checkPrivateKey(key),
    ).toBe(true);
  });
});
