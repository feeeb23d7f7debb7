import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createConnection, createServer, Socket, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { isMeshidError } from "@meshid/errors";

import { getPeerCredentials, PEERCRED_UNAVAILABLE, type PeerCredentials } from "../src";

// These tests use a real Unix socket server and real child processes: the kernel fills in
// SO_PEERCRED at connect time, so nothing here can be faked. The second case needs root
// (CI runs as root) to start the client under another uid/gid with setpriv.

const NOBODY = 65534;

/** Client script: connect, then wait for the server to say it is done. */
const CLIENT = `
const s = require("node:net").createConnection(process.argv[1]);
s.on("data", () => s.end());
s.on("close", () => process.exit(0));
s.on("error", (e) => { console.error(e.message); process.exit(2); });
`;

let dir: string;
let socketPath: string;
let server: Server;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "meshid-peercred-"));
  socketPath = join(dir, "peer.sock");
  server = createServer();
  server.listen(socketPath);
  await once(server, "listening");
  // Let the unprivileged client reach the socket: search permission on the directory and
  // write permission on the socket file are what connect() checks.
  await chmod(dir, 0o711);
  await chmod(socketPath, 0o777);
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

/** Starts `command args…` and returns the credentials the server sees for its connection. */
async function credentialsOfClient(
  command: string,
  args: string[],
): Promise<{ child: ChildProcess; creds: PeerCredentials }> {
  const connection = once(server, "connection") as Promise<[Socket]>;
  const child = spawn(command, args, { cwd: "/", stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`client exited early (code ${String(code)}): ${stderr}`);
  });
  const [socket] = await Promise.race([connection, exited]);
  exited.catch(() => undefined);
  const creds = getPeerCredentials(socket);
  socket.end("done");
  await once(child, "exit");
  children.delete(child);
  return { child, creds };
}

describe("getPeerCredentials", () => {
  it("peercred – reports the pid, uid and gid of a child process connecting over a Unix socket", async () => {
    const { child, creds } = await credentialsOfClient(process.execPath, [
      "-e",
      CLIENT,
      socketPath,
    ]);
    expect(creds).toEqual({ pid: child.pid, uid: process.getuid!(), gid: process.getgid!() });
  });

  // CI runs as root, so this case runs there. As a non-root user setpriv cannot change uid;
  // the test then fails loudly rather than silently skipping (run the suite as root).
  it("peercred – reports another uid/gid when the client runs as nobody (needs root)", async () => {
    if (process.getuid!() !== 0) {
      throw new Error(
        "this test needs root (CI runs as root): only root can start the client as uid/gid 65534 with setpriv",
      );
    }
    const { child, creds } = await credentialsOfClient("setpriv", [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      process.execPath,
      "-e",
      CLIENT,
      socketPath,
    ]);
    // setpriv execs the command, so the client keeps setpriv's pid.
    expect(creds).toEqual({ pid: child.pid, uid: NOBODY, gid: NOBODY });
  });

  it("peercred – rejects a TCP socket with a clear error", async () => {
    const tcp = createServer();
    tcp.listen(0, "127.0.0.1");
    await once(tcp, "listening");
    const address = tcp.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    const accepted = once(tcp, "connection") as Promise<[Socket]>;
    const client = createConnection(address.port, "127.0.0.1");
    const [socket] = await accepted;
    try {
      let caught: unknown;
      try {
        getPeerCredentials(socket);
      } catch (err) {
        caught = err;
      }
      expect(isMeshidError(caught, PEERCRED_UNAVAILABLE)).toBe(true);
      expect((caught as Error).message).toMatch(/not a Unix domain socket/);
    } finally {
      client.destroy();
      socket.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    }
  });

  it("peercred – rejects a socket that has no file descriptor", () => {
    let caught: unknown;
    try {
      getPeerCredentials(new Socket());
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, PEERCRED_UNAVAILABLE)).toBe(true);
    expect((caught as Error).message).toMatch(/no file descriptor/);
  });

  it("peercred – reports the current process for an in-process Unix client", async () => {
    const accepted = once(server, "connection") as Promise<[Socket]>;
    const client = createConnection(socketPath);
    const [[socket]] = await Promise.all([accepted, once(client, "connect")]);
    try {
      expect(getPeerCredentials(socket)).toEqual({
        pid: process.pid,
        uid: process.getuid!(),
        gid: process.getgid!(),
      });
      // The client side sees the server, which is this process too.
      expect(getPeerCredentials(client).pid).toBe(process.pid);
    } finally {
      client.destroy();
      socket.destroy();
    }
  });
});
