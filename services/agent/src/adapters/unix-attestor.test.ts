import { mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatSelector } from "@meshid/spiffe";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { createCachedFile, createUnixAttestor } from "./unix-attestor";

let writes = 0;
/** Writes `file` with an mtime over a minute old (past the racy window), distinct per write. */
function writeOld(file: string, text: string): void {
  writeFileSync(file, text);
  writes += 1;
  const past = new Date(Date.now() - 60_000 - writes * 1_000);
  utimesSync(file, past, past);
}

describe("unix attestor caches", () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await createTempDir("agent-unix-cache-");
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it("cached file – parsed once while unchanged; an edit, a replacement or a removal is seen", async () => {
    const file = join(dir.path, "passwd");
    writeOld(file, "a");
    let parses = 0;
    const cached = createCachedFile(file, (text) => {
      parses += 1;
      return text;
    });
    expect(await cached.get()).toBe("a");
    expect(await Promise.all([cached.get(), cached.get()])).toEqual(["a", "a"]);
    expect(parses).toBe(1);
    // Same size, new content: the times change.
    writeOld(file, "b");
    expect(await cached.get()).toBe("b");
    // Replaced by rename (as vipw and useradd do): a new inode.
    writeOld(join(dir.path, "passwd.new"), "c");
    renameSync(join(dir.path, "passwd.new"), file);
    expect(await cached.get()).toBe("c");
    expect(await cached.get()).toBe("c");
    expect(parses).toBe(3);
    // Modified just now (within the racy window): read every time.
    writeFileSync(file, "e");
    expect(await cached.get()).toBe("e");
    expect(await cached.get()).toBe("e");
    expect(parses).toBe(5);
    rmSync(file);
    expect(await cached.get()).toBeUndefined();
    writeOld(file, "d");
    expect(await cached.get()).toBe("d");
  });

  it("unix attestor – a passwd or group change shows in the next attestation's names", async () => {
    const procRoot = join(dir.path, "proc");
    const etcRoot = join(dir.path, "etc");
    mkdirSync(join(procRoot, "77"), { recursive: true });
    mkdirSync(etcRoot);
    writeFileSync(
      join(procRoot, "77", "status"),
      "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t50\t50\t50\t50\nGroups:\t7 \n",
    );
    writeFileSync(join(etcRoot, "passwd"), "alice:x:1000:50::/home/alice:/bin/sh\n");
    writeFileSync(join(etcRoot, "group"), "staff:x:50:\n");
    const attestor = createUnixAttestor({ procRoot, etcRoot });
    const attest = async () =>
      (await attestor.attest({ pid: 77, uid: 1000, gid: 50 })).map(formatSelector);
    expect(await attest()).toEqual([
      "unix:gid:50",
      "unix:group:staff",
      "unix:supplementary_gid:7",
      "unix:uid:1000",
      "unix:user:alice",
    ]);
    writeFileSync(join(etcRoot, "passwd"), "bob:x:1000:50::/home/bob:/bin/sh\n");
    rmSync(join(etcRoot, "group"));
    expect(await attest()).toEqual([
      "unix:gid:50",
      "unix:supplementary_gid:7",
      "unix:uid:1000",
      "unix:user:bob",
    ]);
  });
});
