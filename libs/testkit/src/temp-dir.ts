import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A temporary directory that removes itself. */
export interface TempDir {
  /** Absolute path of the directory (mode 0700). */
  readonly path: string;
  /** Removes the directory and everything in it. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Creates a fresh 0700 temporary directory whose name starts with `meshid-<prefix>-`. */
export async function createTempDir(prefix = "test"): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `meshid-${prefix}-`));
  return {
    path,
    cleanup: () => rm(path, { recursive: true, force: true }),
  };
}
