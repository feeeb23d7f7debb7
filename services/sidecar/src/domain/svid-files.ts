// What the sidecar writes for NGINX from one SVID: pure naming and content rules.
import type { WorkloadX509Svid } from "@meshid/workload-api";

/** File name of the SVID chain (leaf + intermediates) in the SVID directory. */
export const SVID_CERT_FILE = "svid.pem";
/** File name of the SVID private key (mode 0600) in the SVID directory. */
export const SVID_KEY_FILE = "svid.key";
/** File name of the trust bundle (the SVID's own trust domain) in the SVID directory. */
export const BUNDLE_FILE = "bundle.pem";

/** The three files of one SVID directory, PEM. `keyPem` is never logged. */
export interface SvidFiles {
  readonly certPem: string;
  readonly keyPem: string;
  readonly bundlePem: string;
}

/** The file contents for `svid`: its chain, its key and its own trust domain's bundle. */
export function svidFilesOf(svid: WorkloadX509Svid): SvidFiles {
  return { certPem: svid.certChainPem, keyPem: svid.keyPem, bundlePem: svid.bundlePem };
}

/** Whether NGINX would see anything new in `next` compared with `current`. */
export function svidFilesChanged(
  current: WorkloadX509Svid | undefined,
  next: WorkloadX509Svid,
): boolean {
  return (
    current === undefined ||
    current.serialNumber !== next.serialNumber ||
    current.certChainPem !== next.certChainPem ||
    current.bundlePem !== next.bundlePem
  );
}

/** Name of version `n` of the SVID directory whose link is named `linkName` (`svid` → `svid-7`). */
export function versionDirName(linkName: string, version: number): string {
  return `${linkName}-${version}`;
}

/** The version number in a directory name made by {@link versionDirName}, or undefined. */
export function versionOfDirName(linkName: string, name: string): number | undefined {
  const prefix = `${linkName}-`;
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  if (!/^[0-9]{1,15}$/.test(rest)) return undefined;
  return Number(rest);
}
