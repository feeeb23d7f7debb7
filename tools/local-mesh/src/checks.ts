// The local mesh's traffic checks: A → B through both sidecars over mTLS must work; plaintext,
// no certificate, and a certificate of another trust domain must all be refused by B's sidecar.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { runCommand } from "@meshid/testkit";
import type { DemoWorkloadSummary, LocalMeshSummary, MeshCheck } from "./mesh";

/** Trust domain of the throwaway foreign CA. */
export const FOREIGN_TRUST_DOMAIN = "foreign.example";

interface HttpResult {
  readonly status: number;
  readonly body: string;
}

async function getPlain(url: string): Promise<HttpResult> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** GET over TLS to `address` with an optional client certificate (server not verified). */
function getTls(address: string, cert?: { cert: string; key: string }): Promise<HttpResult> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port),
        path: "/",
        method: "GET",
        servername: "localhost",
        rejectUnauthorized: false,
        timeout: 10_000,
        ...(cert === undefined ? {} : { cert: cert.cert, key: cert.key }),
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  const result = await runCommand("openssl", args, { cwd });
  if (result.code !== 0) throw new Error(`openssl ${args[0] ?? ""} failed: ${result.stderr}`);
}

/** Makes a throwaway CA of {@link FOREIGN_TRUST_DOMAIN} and a client certificate it signed. */
async function foreignClientCertificate(dir: string): Promise<{ cert: string; key: string }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "1",
      "-subj",
      "/O=foreign CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign",
    ],
    dir,
  );
  await openssl(
    ["req", ...ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/O=foreign"],
    dir,
  );
  await writeFile(
    join(dir, "ext.cnf"),
    `subjectAltName=URI:spiffe://${FOREIGN_TRUST_DOMAIN}/demo/a\nextendedKeyUsage=clientAuth,serverAuth\n`,
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "client.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "client.pem",
      "-days",
      "1",
      "-extfile",
      "ext.cnf",
    ],
    dir,
  );
  return {
    cert: await readFile(join(dir, "client.pem"), "utf8"),
    key: await readFile(join(dir, "client.key"), "utf8"),
  };
}

function refused(what: string, run: () => Promise<HttpResult>): Promise<MeshCheck> {
  return run().then(
    (res) =>
      res.status === 200
        ? { name: what, ok: false, detail: `served with 200: ${res.body.trim()}` }
        : {
            name: what,
            ok: true,
            detail: `refused by NGINX (HTTP ${res.status}, app not reached)`,
          },
    (err: unknown) => ({
      name: what,
      ok: true,
      detail: `refused (${err instanceof Error ? err.message : String(err)})`,
    }),
  );
}

/**
 * Runs the checks against B (through A's sidecar for the mTLS request).
 * Never throws: each failure is a check with `ok: false`.
 */
export async function runMeshChecks(
  summary: LocalMeshSummary,
  stateDir: string,
): Promise<MeshCheck[]> {
  const a = summary.workloads.find((w) => w.name === "a") as DemoWorkloadSummary;
  const b = summary.workloads.find((w) => w.name === "b") as DemoWorkloadSummary;
  const checks: MeshCheck[] = [];
  try {
    const res = await getPlain(`${a.outboundUrl}/hello`);
    const reply = JSON.parse(res.body) as { workload?: string; clientSpiffeId?: string | null };
    const ok = res.status === 200 && reply.workload === "b" && reply.clientSpiffeId === a.spiffeId;
    checks.push({
      name: "A → B over mTLS",
      ok,
      detail: ok
        ? `HTTP 200 from B, which saw the caller as ${a.spiffeId}`
        : `HTTP ${res.status}: ${res.body.trim()}`,
    });
  } catch (err) {
    checks.push({ name: "A → B over mTLS", ok: false, detail: (err as Error).message });
  }
  checks.push(
    await refused("plaintext to B", () => getPlain(`http://${b.inboundAddress}/`)),
    await refused("TLS without a client certificate to B", () => getTls(b.inboundAddress)),
  );
  let foreign: { cert: string; key: string } | undefined;
  try {
    foreign = await foreignClientCertificate(join(stateDir, "foreign-ca"));
  } catch (err) {
    checks.push({
      name: `certificate of ${FOREIGN_TRUST_DOMAIN} to B`,
      ok: false,
      detail: `could not make the foreign certificate: ${(err as Error).message}`,
    });
  }
  if (foreign !== undefined) {
    const cert = foreign;
    checks.push(
      await refused(`certificate of ${FOREIGN_TRUST_DOMAIN} to B`, () =>
        getTls(b.inboundAddress, cert),
      ),
    );
  }
  return checks;
}
