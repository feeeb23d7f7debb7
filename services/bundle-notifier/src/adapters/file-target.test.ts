import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createTempDir, type TempDir } from "@meshid/testkit";
import type { NotifierBundle } from "../domain/bundle";
import { createFileTarget } from "./file-target";

function bundle(sequenceNumber: number): NotifierBundle {
  return {
    trustDomain: "example.org",
    sequenceNumber,
    pem: `-----BEGIN CERTIFICATE-----\n${sequenceNumber}\n-----END CERTIFICATE-----\n`,
    spiffeJwks: `{"keys":[],"spiffe_sequence":${sequenceNumber}}`,
  };
}

describe("file target", () => {
  let dir: TempDir;
  const signal = new AbortController().signal;

  beforeEach(async () => {
    dir = await createTempDir("bn-file-target");
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it("file target – writes the PEM (0644) into a new directory, only when it changed, leaving no temp files", async () => {
    const path = join(dir.path, "sub", "bundle.pem");
    const target = createFileTarget({ path });
    expect(target.name).toBe(`file:${path}`);
    expect(await target.apply(bundle(1), signal)).toEqual([{ target: `file:${path}` }]);
    expect(await readFile(path, "utf8")).toBe(bundle(1).pem);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    const before = (await stat(path)).ino;
    expect(await target.apply(bundle(1), signal)).toEqual([]);
    expect((await stat(path)).ino).toBe(before);
    expect(await target.apply(bundle(2), signal)).toEqual([{ target: `file:${path}` }]);
    expect(await readFile(path, "utf8")).toBe(bundle(2).pem);
    expect(await readdir(join(dir.path, "sub"))).toEqual(["bundle.pem"]);
  });

  it("file target – the spiffe format writes the JWKS; a file changed by hand is put back", async () => {
    const path = join(dir.path, "bundle.spiffe");
    const target = createFileTarget({ path, format: "spiffe" });
    await target.apply(bundle(3), signal);
    expect(await readFile(path, "utf8")).toBe(bundle(3).spiffeJwks);
    await writeFile(path, "tampered");
    expect(await target.apply(bundle(3), signal)).toHaveLength(1);
    expect(await readFile(path, "utf8")).toBe(bundle(3).spiffeJwks);
  });

  it("file target – an unwritable location fails the apply and leaves nothing behind", async () => {
    const blocker = join(dir.path, "not-a-dir");
    await writeFile(blocker, "x");
    const target = createFileTarget({ path: join(blocker, "bundle.pem") });
    await expect(target.apply(bundle(1), signal)).rejects.toThrow();
    expect(await readdir(dir.path)).toEqual(["not-a-dir"]);
  });
});
