import { existsSync, readFileSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { join } from "node:path";

import { isMeshidError } from "@meshid/errors";

import { getFreePort } from "../src/ports";
import {
  checkNginxPrefixConfig,
  nginxPrefixDirectives,
  startNginx,
  type NginxConfigContext,
  type NginxServer,
} from "../src/nginx";
import { isProcessAlive, listProcessTree } from "../src/process";

// Starts a real nginx (Debian 1.22) with `daemon off` in a temp prefix.

function staticConfig(body: string): (context: NginxConfigContext) => string {
  return ({ ports, main, http }) => `
${main}
events { worker_connections 64; }
http {
  ${http}
  server {
    listen 127.0.0.1:${ports[0]};
    location / { return 200 "${body}"; }
  }
}
`;
}

/** GET / on a fresh connection (no keep-alive, which could stick to a pre-reload worker). */
async function fetchBody(port: number): Promise<string> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    get({ host: "127.0.0.1", port, path: "/", agent: false }, resolve).on("error", reject);
  });
  expect(response.statusCode).toBe(200);
  let body = "";
  for await (const chunk of response) body += (chunk as Buffer).toString();
  return body;
}

describe("startNginx", () => {
  let nginx: NginxServer | undefined;

  afterAll(async () => {
    await nginx?.stop();
  });

  it("nginx – serves a static response, reloads to a new one, rejects broken configs, stops cleanly", async () => {
    nginx = await startNginx({ config: staticConfig("first") });
    const port = nginx.ports[0]!;
    expect(await fetchBody(port)).toBe("first");

    await nginx.reload(staticConfig("second"));
    // After reload() resolves only new workers accept, so every request sees the new body.
    for (let i = 0; i < 5; i++) expect(await fetchBody(port)).toBe("second");

    const broken = await nginx.testConfig(
      ({ main, http }) =>
        `${main}\nevents {}\nhttp {\n${http}\n server { listen 127.0.0.1:1 bogus_directive on; } }`,
    );
    expect(broken.ok).toBe(false);
    expect(broken.output).toMatch(/\[emerg\]/);
    expect(broken.output).toMatch(/invalid parameter "bogus_directive"/);

    const good = await nginx.testConfig(staticConfig("third"));
    expect(good).toEqual({
      ok: true,
      output: expect.stringMatching(/test is successful/) as unknown,
    });

    let reloadError: unknown;
    try {
      await nginx.reload(({ main }) => `${main}\nevents {}\nhttp { unknown_thing; }`);
    } catch (err) {
      reloadError = err;
    }
    expect(isMeshidError(reloadError, "testkit.nginx.config_invalid")).toBe(true);
    expect(await fetchBody(port)).toBe("second"); // the running config is kept

    const tree = await listProcessTree(nginx.pid);
    expect(tree.length).toBeGreaterThan(1); // master + worker(s)
    const prefix = nginx.prefix;
    await nginx.stop();
    await nginx.stop(); // idempotent
    expect(tree.filter((p) => isProcessAlive(p.pid))).toEqual([]);
    expect(existsSync(prefix)).toBe(false);
  });

  it("nginx – accepts a plain string config with prefix-relative paths", async () => {
    const { main, http } = nginxPrefixDirectives(".");
    const port = await getFreePort();
    const server = await startNginx({
      config: `${main}\nevents {}\nhttp {\n${http}\nserver { listen 127.0.0.1:${port}; return 200 "relative"; } }`,
    });
    try {
      expect(await fetchBody(port)).toBe("relative");
      // "pid nginx.pid" resolved against the prefix.
      expect(readFileSync(join(server.prefix, "nginx.pid"), "utf8").trim()).toBe(
        String(server.pid),
      );
    } finally {
      await server.stop();
    }
  });

  it("nginx – refuses a config that would write outside its prefix", async () => {
    let caught: unknown;
    try {
      await startNginx({
        config: ({ ports }) =>
          `events {}\nhttp { server { listen 127.0.0.1:${ports[0]}; return 200; } }`,
      });
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "testkit.nginx.config_invalid")).toBe(true);
    expect((caught as Error).message).toMatch(/missing "pid"/);
  });
});

describe("checkNginxPrefixConfig", () => {
  it("nginx – flags paths outside the prefix and the daemon directive", () => {
    const problems = checkNginxPrefixConfig(
      `daemon on;\npid /run/nginx.pid;\nerror_log logs/error.log;\nhttp { access_log /var/log/x.log; client_body_temp_path /p/a; proxy_temp_path /p/b; fastcgi_temp_path /p/c; uwsgi_temp_path /p/d; scgi_temp_path /p/e; }`,
      "/p",
    );
    expect(problems).toEqual([
      '"pid /run/nginx.pid" points outside the prefix /p',
      '"access_log /var/log/x.log" points outside the prefix /p',
      'remove the "daemon" directive: the helper runs nginx with "daemon off;"',
    ]);
  });
});
