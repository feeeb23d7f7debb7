// SVID files on disk, swapped atomically: each version in a fresh 0700 directory next to the
// link, then a new symlink renamed over the link (rename(2) is atomic), so a reader resolving
// the link sees one whole version, never a key of one SVID with the certificate of another.
import { constants } from "node:fs";
import { lstat, mkdir, open, readdir, readlink, rename, rm, symlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { MeshidError } from "@meshid/errors";
import type { Logger } from "@meshid/telemetry";
import {
  BUNDLE_FILE,
  SVID_CERT_FILE,
  SVID_KEY_FILE,
  versionDirName,
  versionOfDirName,
  type SvidFiles,
} from "../domain/svid-files";
import type { SvidDirVersion, SvidFileStore } from "../ports";

/** Error code when the SVID directory path exists and is not a symbolic link. */
export const SVID_DIR_NOT_A_LINK_CODE = "sidecar.svid_dir.not_a_link";

/** Mode of version directories (and of the parent, when created). */
export const SVID_DIR_MODE = 0o700;
/** Mode of every SVID file (key, chain, bundle). */
export const SVID_FILE_MODE = 0o600;

/** Parameters of {@link createDiskSvidFileStore}. */
export interface CreateDiskSvidFileStoreParams {
  /** The stable path NGINX reads (`svidDir`): a symlink this store owns. */
  readonly linkPath: string;
  readonly logger: Logger;
}

async function writeDurably(path: string, text: string): Promise<void> {
  // O_EXCL: a version directory is always fresh, so an existing file means a bug.
  const handle = await open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
    SVID_FILE_MODE,
  );
  try {
    await handle.writeFile(text);
    await handle.chmod(SVID_FILE_MODE);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function isMissing(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw err;
  }
}

/**
 * Creates the store for `linkPath`: creates its parent directory (0700) if missing, refuses a
 * `linkPath` that is a real file or directory, and numbers new versions after the highest
 * version directory already there (a restarted sidecar never reuses a directory NGINX may hold).
 *
 * @throws MeshidError `failed_precondition` / {@link SVID_DIR_NOT_A_LINK_CODE}.
 */
export async function createDiskSvidFileStore(
  params: CreateDiskSvidFileStoreParams,
): Promise<SvidFileStore> {
  const { linkPath, logger } = params;
  const parent = dirname(linkPath);
  const linkName = basename(linkPath);
  await mkdir(parent, { recursive: true, mode: SVID_DIR_MODE });
  try {
    const info = await lstat(linkPath);
    if (!info.isSymbolicLink()) {
      throw new MeshidError(
        "failed_precondition",
        SVID_DIR_NOT_A_LINK_CODE,
        `svidDir ${linkPath} exists and is not a symbolic link: remove it or choose another path`,
      );
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const versions = (await readdir(parent))
    .map((name) => versionOfDirName(linkName, name))
    .filter((v): v is number => v !== undefined);
  let next = versions.length === 0 ? 1 : Math.max(...versions) + 1;

  const linkTarget = async (): Promise<string | undefined> => {
    try {
      return basename(await readlink(linkPath));
    } catch {
      return undefined;
    }
  };

  return {
    async swap(files: SvidFiles): Promise<SvidDirVersion> {
      const version = next;
      next += 1;
      const name = versionDirName(linkName, version);
      const dir = join(parent, name);
      if (!(await isMissing(dir))) await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { mode: SVID_DIR_MODE });
      await writeDurably(join(dir, SVID_KEY_FILE), files.keyPem);
      await writeDurably(join(dir, SVID_CERT_FILE), files.certPem);
      await writeDurably(join(dir, BUNDLE_FILE), files.bundlePem);
      await syncDir(dir);
      const tmp = join(parent, `.${linkName}.tmp-${version}`);
      await rm(tmp, { force: true });
      // A relative target keeps the tree valid when the parent is mounted elsewhere.
      await symlink(name, tmp);
      await rename(tmp, linkPath);
      await syncDir(parent);
      return { version, dir };
    },
    async prune(keep: readonly number[]): Promise<void> {
      const target = await linkTarget();
      for (const name of await readdir(parent)) {
        const version = versionOfDirName(linkName, name);
        if (version === undefined || keep.includes(version) || name === target) continue;
        await rm(join(parent, name), { recursive: true, force: true });
        logger.debug({ version }, "old SVID directory removed");
      }
    },
  };
}
