import { lstat, mkdir, readFile, readdir, readlink, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import { isMeshidError } from "@meshid/errors";
import { createNoopLogger } from "@meshid/telemetry";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { SVID_DIR_NOT_A_LINK_CODE, createDiskSvidFileStore } from "./disk-svid-file-store";

const files = (n: number) => ({
  certPem: `cert ${n}\n`,
  keyPem: `key ${n}\n`,
  bundlePem: `bundle ${n}\n`,
});

describe("disk SVID file store", () => {
  let dir: TempDir;

  beforeEach(async () => {
    dir = await createTempDir("svid-store");
  });

  afterEach(async () => {
    await dir.cleanup();
  });

  it("svid store – each swap is a fresh 0700 directory of 0600 files behind one relative link", async () => {
    const link = join(dir.path, "run", "svid");
    const store = await createDiskSvidFileStore({ linkPath: link, logger: createNoopLogger() });
    expect((await stat(join(dir.path, "run"))).mode & 0o777).toBe(0o700);
    const v1 = await store.swap(files(1));
    expect(v1).toEqual({ version: 1, dir: join(dir.path, "run", "svid-1") });
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readlink(link)).toBe("svid-1");
    expect(await readFile(join(link, "svid.key"), "utf8")).toBe("key 1\n");
    const v2 = await store.swap(files(2));
    expect(await realpath(link)).toBe(v2.dir);
    expect((await stat(v2.dir)).mode & 0o777).toBe(0o700);
    for (const name of ["svid.pem", "svid.key", "bundle.pem"]) {
      expect((await stat(join(v2.dir, name))).mode & 0o777).toBe(0o600);
    }
    expect(await readFile(join(link, "svid.pem"), "utf8")).toBe("cert 2\n");
    expect(await readFile(join(link, "bundle.pem"), "utf8")).toBe("bundle 2\n");
    // No temporary link is left behind.
    expect((await readdir(join(dir.path, "run"))).sort()).toEqual(["svid", "svid-1", "svid-2"]);
  });

  it("svid store – prune keeps the listed versions and the link target; a restart continues numbering", async () => {
    const link = join(dir.path, "svid");
    const store = await createDiskSvidFileStore({ linkPath: link, logger: createNoopLogger() });
    for (let i = 1; i <= 4; i += 1) await store.swap(files(i));
    await store.prune([3]);
    expect((await readdir(dir.path)).sort()).toEqual(["svid", "svid-3", "svid-4"]);
    const again = await createDiskSvidFileStore({ linkPath: link, logger: createNoopLogger() });
    expect((await again.swap(files(5))).version).toBe(5);
    expect(await readFile(join(link, "svid.key"), "utf8")).toBe("key 5\n");
  });

  it("svid store – refuses a svidDir that is a real directory", async () => {
    const path = join(dir.path, "svid");
    await mkdir(path);
    let caught: unknown;
    try {
      await createDiskSvidFileStore({ linkPath: path, logger: createNoopLogger() });
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, SVID_DIR_NOT_A_LINK_CODE)).toBe(true);
  });
});
