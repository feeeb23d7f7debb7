// Reads the JSON lines of fixtures/pod-workload.js: the SVID updates a pod's Workload API
// stream delivered.
import { createHash } from "node:crypto";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import type { ManagedProcess } from "@meshid/testkit";
import { WAIT_MS, waitFor } from "./k8s-mesh";

/** The fixture: `node pod-workload.js <socket>`. */
export const POD_WORKLOAD_JS = join(__dirname, "fixtures", "pod-workload.js");

/** One update seen on a pod's stream. */
export interface SvidUpdate {
  readonly at: number;
  readonly spiffeIds: readonly string[];
  readonly serial: string;
  readonly notAfter: string;
  /** SHA-256 (hex) of each root in the bundle that came with it. */
  readonly bundleRoots: readonly string[];
}

/** Every SVID update the pod's stream printed so far. */
export function svidUpdates(proc: ManagedProcess): SvidUpdate[] {
  const out: SvidUpdate[] = [];
  for (const line of proc.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const parsed = JSON.parse(line) as SvidUpdate & { event?: string };
      if (parsed.event === "svid") out.push(parsed);
    } catch {
      // a partial line
    }
  }
  return out;
}

/** Waits for an update (after the first `after` ones) that satisfies `accept`. */
export function waitForSvidUpdate(
  proc: ManagedProcess,
  what: string,
  accept: (update: SvidUpdate) => boolean = () => true,
  after = 0,
  timeoutMs = WAIT_MS,
): Promise<SvidUpdate> {
  return waitFor(
    `${proc.name}: ${what}`,
    () => svidUpdates(proc).slice(after).find(accept),
    timeoutMs,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; output:\n${proc.output().slice(-4000)}`);
  });
}

/** SHA-256 (hex) of every certificate in a PEM bundle. */
export function pemFingerprints(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) =>
    createHash("sha256").update(new X509Certificate(block).raw).digest("hex"),
  );
}
