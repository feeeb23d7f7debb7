// The file target: the bundle written atomically to one path, for runs without Kubernetes.
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { NotifierBundle } from "../domain/bundle";
import type { BundleTarget } from "../ports";

/** Mode of the bundle file: bundles are public (trust anchors, no key material). */
export const BUNDLE_FILE_MODE = 0o644;
/** Mode of a parent directory the target creates. */
export const BUNDLE_DIR_MODE = 0o755;

/** Parameters of {@link createFileTarget}. */
export interface FileTargetParams {
  /** Absolute path of the bundle file. */
  readonly path: string;
  /** `pem` (concatenated CERTIFICATE blocks, default) or `spiffe` (the SPIFFE bundle JWKS). */
  readonly format?: "pem" | "spiffe";
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Writes `content` to `path` atomically: a temporary file in the same directory (mode 0644),
 * fsync, rename over `path`, fsync of the directory. Readers see the old or the new file, never
 * a partial one.
 */
export async function writeFileAtomically(path: string, content: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: BUNDLE_DIR_MODE });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", BUNDLE_FILE_MODE);
  try {
    try {
      await handle.writeFile(content, "utf8");
      // The umask may have narrowed the mode given to open().
      await handle.chmod(BUNDLE_FILE_MODE);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const dirHandle = await open(dir, "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** The text the file holds for `bundle` in `format`. */
export function bundleFileContent(bundle: NotifierBundle, format: "pem" | "spiffe"): string {
  return format === "pem" ? bundle.pem : bundle.spiffeJwks;
}

/**
 * Creates the file target (`file:<path>`): writes the bundle when the file's content differs
 * (or the file is missing), atomically.
 */
export function createFileTarget(params: FileTargetParams): BundleTarget {
  const name = `file:${params.path}`;
  const format = params.format ?? "pem";
  return {
    name,
    async apply(bundle) {
      const content = bundleFileContent(bundle, format);
      if ((await readIfExists(params.path)) === content) return [];
      await writeFileAtomically(params.path, content);
      return [{ target: name }];
    },
  };
}
