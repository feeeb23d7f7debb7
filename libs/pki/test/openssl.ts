// Test helper: runs the real `openssl verify` on a chain written to a temp directory.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { certificatesToPem } from "../src/pem";

const execFileAsync = promisify(execFile);

/** What `openssl verify` said about a chain. */
export interface OpensslResult {
  readonly ok: boolean;
  readonly output: string;
}

/**
 * Verifies `leafDer` against `rootDer` (trusted, -CAfile) with `intermediatesDer`
 * (-untrusted) for the given purpose, using the real openssl binary.
 */
export async function opensslVerify(p: {
  rootDer: Uint8Array;
  intermediatesDer?: readonly Uint8Array[];
  leafDer: Uint8Array;
  purpose: "sslclient" | "sslserver";
}): Promise<OpensslResult> {
  const dir = await mkdtemp(join(tmpdir(), "meshid-pki-openssl-"));
  try {
    const root = join(dir, "root.pem");
    const leaf = join(dir, "leaf.pem");
    await writeFile(root, certificatesToPem([p.rootDer]));
    await writeFile(leaf, certificatesToPem([p.leafDer]));
    const args = ["verify", "-x509_strict", "-purpose", p.purpose, "-CAfile", root];
    if (p.intermediatesDer !== undefined && p.intermediatesDer.length > 0) {
      const untrusted = join(dir, "untrusted.pem");
      await writeFile(untrusted, certificatesToPem(p.intermediatesDer));
      args.push("-untrusted", untrusted);
    }
    args.push(leaf);
    try {
      const { stdout, stderr } = await execFileAsync("openssl", args);
      return { ok: /: OK\s*$/.test(stdout), output: stdout + stderr };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      return { ok: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Prints a certificate with `openssl x509 -text` (for debugging failures). */
export async function opensslText(der: Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "meshid-pki-openssl-"));
  try {
    const f = join(dir, "c.pem");
    await writeFile(f, certificatesToPem([der]));
    const { stdout } = await execFileAsync("openssl", ["x509", "-noout", "-text", "-in", f]);
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
