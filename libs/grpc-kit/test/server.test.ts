import { stat, rename, writeFile } from "node:fs/promises";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import { join } from "node:path";
import type { Channel } from "@grpc/grpc-js";
import { MeshidError, isMeshidError, type ErrorKind } from "@meshid/errors";
import { spiffeWorkload } from "@meshid/proto";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { ClientError, Metadata, Status } from "nice-grpc-common";
import { HealthDefinition } from "nice-grpc-server-health";
import {
  ERROR_CODE_TRAILER_KEY,
  GrpcLogKeys,
  INTERNAL_ERROR_MESSAGE,
  PEER_URI_SANS_METADATA_KEY,
  addHealth,
  createGrpcChannel,
  createGrpcClient,
  createGrpcServer,
  statusForErrorKind,
  type GrpcServer,
} from "../src";
import { createMemoryLogger } from "./support/memory-logger";
import { createTestWorkloadService, type FetchJwtSvidBehaviour } from "./support/workload-service";

const SERVING = 1;
const NOT_SERVING = 2;

const WorkloadApi = spiffeWorkload.SpiffeWorkloadAPIDefinition;

/** Servers and channels opened by a test, closed in afterEach. */
const servers: GrpcServer[] = [];
const channels: Channel[] = [];
const netServers: NetServer[] = [];
let tempDir: TempDir | undefined;

afterEach(async () => {
  for (const channel of channels.splice(0)) channel.close();
  await Promise.all(servers.splice(0).map((s) => s.shutdown({ graceMs: 0 })));
  await Promise.all(
    netServers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
  await tempDir?.cleanup();
  tempDir = undefined;
});

function startWorkloadServer(behaviour?: FetchJwtSvidBehaviour) {
  const logger = createMemoryLogger();
  const server = createGrpcServer({ logger });
  servers.push(server);
  server.add(WorkloadApi, createTestWorkloadService(behaviour));
  const health = addHealth(server);
  return { server, logger, health };
}

function channelTo(target: string): Channel {
  const channel = createGrpcChannel({ target });
  channels.push(channel);
  return channel;
}

async function expectClientError(promise: Promise<unknown>): Promise<ClientError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    return err as ClientError;
  }
  throw new Error("expected the call to fail");
}

/** A promise plus its resolve function. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function waitForAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new MeshidError("aborted", "test.aborted", "call cancelled"));
    if (signal.aborted) fail();
    else signal.addEventListener("abort", fail, { once: true });
  });
}

describe("createGrpcServer – plaintext TCP", () => {
  it("server – plain TCP call on 127.0.0.1:0 reaches the handler without a caller ID", async () => {
    const { server, logger } = startWorkloadServer();
    const port = await server.listen("127.0.0.1:0");
    expect(port).toBeGreaterThan(0);

    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`));
    const response = await client.fetchJWTSVID({ audience: ["a"] });
    expect(response.svids[0]?.spiffeId).toBe("");

    const line = logger.lines.find((l) => l.message === "gRPC call finished");
    expect(line?.fields[GrpcLogKeys.method]).toBe("/SpiffeWorkloadAPI/FetchJWTSVID");
    expect(line?.fields[GrpcLogKeys.status]).toBe("OK");
    expect(typeof line?.fields[GrpcLogKeys.durationMs]).toBe("number");
  });

  it("server – a client cannot forge the verified-peer metadata", async () => {
    const { server } = startWorkloadServer();
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`));
    const forged = Metadata({
      [PEER_URI_SANS_METADATA_KEY]: JSON.stringify(["spiffe://example.org/admin"]),
    });
    const response = await client.fetchJWTSVID({ audience: ["a"] }, { metadata: forged });
    expect(response.svids[0]?.spiffeId).toBe("");
  });

  it("server – health check reports SERVING, NOT_SERVING and unknown services", async () => {
    const { server, health } = startWorkloadServer();
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(HealthDefinition, channelTo(`127.0.0.1:${port}`));

    expect((await client.check({ service: "" })).status).toBe(SERVING);
    health.setStatus("healthy", "meshid.ca.v1.SvidService");
    expect((await client.check({ service: "meshid.ca.v1.SvidService" })).status).toBe(SERVING);
    health.setStatus("unhealthy", "meshid.ca.v1.SvidService");
    expect((await client.check({ service: "meshid.ca.v1.SvidService" })).status).toBe(NOT_SERVING);
    const err = await expectClientError(client.check({ service: "nope" }));
    expect(err.code).toBe(Status.NOT_FOUND);
  });
});

describe("createGrpcServer – Unix sockets", () => {
  it("server – listens on a Unix socket with the given socket and directory modes", async () => {
    tempDir = await createTempDir("grpc-kit");
    const socketPath = join(tempDir.path, "run", "agent", "api.sock");
    const { server } = startWorkloadServer();
    await server.listenUnix(socketPath, { mode: 0o666, directoryMode: 0o711 });

    const socketStat = await stat(socketPath);
    expect(socketStat.isSocket()).toBe(true);
    expect(socketStat.mode & 0o777).toBe(0o666);
    expect((await stat(join(tempDir.path, "run", "agent"))).mode & 0o777).toBe(0o711);

    const client = createGrpcClient(WorkloadApi, channelTo(`unix://${socketPath}`));
    const response = await client.fetchJWTSVID({ audience: ["a"] });
    expect(response.svids).toHaveLength(1);
  });

  it("server – removes a stale socket left by a dead server", async () => {
    tempDir = await createTempDir("grpc-kit");
    const socketPath = join(tempDir.path, "api.sock");
    // A socket file nobody listens on: bind elsewhere, move the file, close the listener.
    const dead = createNetServer();
    const boundPath = join(tempDir.path, "dead.sock");
    await new Promise<void>((resolve) => dead.listen(boundPath, resolve));
    await rename(boundPath, socketPath);
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    expect((await stat(socketPath)).isSocket()).toBe(true);

    const { server } = startWorkloadServer();
    await server.listenUnix(socketPath, { mode: 0o600 });
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
    const client = createGrpcClient(WorkloadApi, channelTo(`unix://${socketPath}`));
    await expect(client.fetchJWTSVID({ audience: ["a"] })).resolves.toBeDefined();
  });

  it("server – refuses a socket path a live server answers on, or a regular file", async () => {
    tempDir = await createTempDir("grpc-kit");
    const livePath = join(tempDir.path, "live.sock");
    const live = createNetServer();
    netServers.push(live);
    await new Promise<void>((resolve) => live.listen(livePath, resolve));

    const { server } = startWorkloadServer();
    const inUse = await server.listenUnix(livePath, { mode: 0o600 }).catch((e: unknown) => e);
    expect(isMeshidError(inUse, "grpc.unix_socket.in_use")).toBe(true);

    const filePath = join(tempDir.path, "file.sock");
    await writeFile(filePath, "not a socket");
    const notSocket = await server.listenUnix(filePath, { mode: 0o600 }).catch((e: unknown) => e);
    expect(isMeshidError(notSocket, "grpc.unix_socket.not_a_socket")).toBe(true);
  });
});

describe("createGrpcServer – error mapping", () => {
  const kinds: ErrorKind[] = [
    "invalid_argument",
    "not_found",
    "already_exists",
    "permission_denied",
    "unauthenticated",
    "failed_precondition",
    "resource_exhausted",
    "unavailable",
    "deadline_exceeded",
    "aborted",
    "unimplemented",
    "internal",
  ];

  it("errors – every MeshidError kind arrives as its status with only the message", async () => {
    const { server, logger } = startWorkloadServer((request) => {
      const kind = request.audience[0] as ErrorKind;
      throw new MeshidError(kind, `test.${kind}`, `failed with ${kind}`, {
        cause: new Error("db at /var/lib/meshid/secret.db is locked"),
        details: { table: "entries" },
      });
    });
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`));

    for (const kind of kinds) {
      let trailer: Metadata | undefined;
      const err = await expectClientError(
        client.fetchJWTSVID({ audience: [kind] }, { onTrailer: (t) => (trailer = t) }),
      );
      expect(err.code).toBe(statusForErrorKind(kind));
      expect(err.details).toBe(
        kind === "internal" ? INTERNAL_ERROR_MESSAGE : `failed with ${kind}`,
      );
      expect(err.message).not.toContain("secret.db");
      expect(err.message).not.toContain("entries");
      expect(trailer?.get(ERROR_CODE_TRAILER_KEY)).toBe(`test.${kind}`);
    }
    // Only the internal one is logged as an error, with its cause.
    const errorLines = logger.lines.filter((l) => l.level === "error");
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]?.fields[GrpcLogKeys.errorCode]).toBe("test.internal");
  });

  it("errors – NOT_FOUND carries the MeshidError message and nothing of the cause", async () => {
    const { server } = startWorkloadServer(() => {
      throw new MeshidError("not_found", "entry.not_found", "registration entry not found", {
        cause: new Error("SELECT * FROM entries WHERE id = 'x' at store.ts:42"),
      });
    });
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`));
    const err = await expectClientError(client.fetchJWTSVID({ audience: [] }));
    expect(err.code).toBe(Status.NOT_FOUND);
    expect(err.details).toBe("registration entry not found");
    expect(err.message).not.toMatch(/SELECT|store\.ts|at /);
  });

  it('errors – an unknown error becomes INTERNAL "internal error" and is logged with its cause', async () => {
    const boom = new TypeError("cannot read properties of undefined (reading 'privateKey')");
    const { server, logger } = startWorkloadServer(() => {
      throw boom;
    });
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`));
    const err = await expectClientError(client.fetchJWTSVID({ audience: [] }));
    expect(err.code).toBe(Status.INTERNAL);
    expect(err.details).toBe(INTERNAL_ERROR_MESSAGE);
    expect(err.message).not.toContain("privateKey");

    const errorLine = logger.lines.find((l) => l.level === "error");
    expect(errorLine?.fields[GrpcLogKeys.err]).toBe(boom);
    const callLine = logger.lines.find((l) => l.message === "gRPC call failed");
    expect(callLine?.fields[GrpcLogKeys.status]).toBe("INTERNAL");
  });
});

describe("createGrpcClient – deadlines", () => {
  it("client – a call past its deadline fails with DEADLINE_EXCEEDED and the handler is cancelled", async () => {
    const handlerCancelled = deferred();
    const { server } = startWorkloadServer(async (_request, context) => {
      context.signal.addEventListener("abort", () => handlerCancelled.resolve(), { once: true });
      return waitForAbort(context.signal);
    });
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`), {
      deadlineMs: 60_000,
    });
    const err = await expectClientError(client.fetchJWTSVID({ audience: [] }, { deadline: 50 }));
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
    await handlerCancelled.promise;
  });

  it("client – the default deadlineMs applies when the call sets none", async () => {
    const { server } = startWorkloadServer((_request, context) => waitForAbort(context.signal));
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`), {
      deadlineMs: 50,
    });
    const err = await expectClientError(client.fetchJWTSVID({ audience: [] }));
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
  });
});

describe("GrpcServer.shutdown", () => {
  it("server – graceful shutdown lets an in-flight call finish and refuses new calls", async () => {
    const entered = deferred();
    const release = deferred();
    const { server, health } = startWorkloadServer(async () => {
      entered.resolve();
      await release.promise;
      return { svids: [{ spiffeId: "done", svid: "", hint: "" }] };
    });
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`));

    const inFlight = client.fetchJWTSVID({ audience: [] });
    await entered.promise;
    const stopped = server.shutdown({ graceMs: 60_000 });
    expect(health.getStatus()).toBe("unhealthy");
    release.resolve();
    await expect(inFlight).resolves.toMatchObject({ svids: [{ spiffeId: "done" }] });
    await stopped;

    const err = await expectClientError(
      createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`)).fetchJWTSVID(
        { audience: [] },
        { deadline: 5_000 },
      ),
    );
    expect([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]).toContain(err.code);
  });

  it("server – after the grace period remaining calls are cancelled", async () => {
    const entered = deferred();
    const { server } = startWorkloadServer(async (_request, context) => {
      entered.resolve();
      return waitForAbort(context.signal);
    });
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`));
    const inFlight = expectClientError(client.fetchJWTSVID({ audience: [] }));
    await entered.promise;
    await server.shutdown({ graceMs: 10 });
    expect([Status.CANCELLED, Status.UNAVAILABLE]).toContain((await inFlight).code);
  });

  it("server – an aborted signal ends the grace period at once", async () => {
    const entered = deferred();
    const { server } = startWorkloadServer(async (_request, context) => {
      entered.resolve();
      return waitForAbort(context.signal);
    });
    const port = await server.listen("127.0.0.1:0");
    const client = createGrpcClient(WorkloadApi, channelTo(`127.0.0.1:${port}`));
    const inFlight = expectClientError(client.fetchJWTSVID({ audience: [] }));
    await entered.promise;
    const controller = new AbortController();
    const stopped = server.shutdown({ graceMs: 600_000, signal: controller.signal });
    controller.abort();
    await stopped;
    expect([Status.CANCELLED, Status.UNAVAILABLE]).toContain((await inFlight).code);
  });
});
