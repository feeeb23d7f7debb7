import { createServer } from "node:net";

/**
 * Returns a TCP port that is free on 127.0.0.1 right now, by binding port 0 and closing.
 * Prefer letting the server under test bind port 0 itself; use this only for programs that
 * must be told a port up front (nats-server cluster routes, PostgreSQL, nginx).
 */
export async function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("getFreePort: server has no TCP address"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
