/** One `/etc/passwd` line. */
export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** One `/etc/group` line. */
export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

function lines(text: string): string[][] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.split(":"));
}

const ID = /^[0-9]+$/;

/**
 * Parses `/etc/passwd` (`name:password:uid:gid:gecos:home:shell`). Comments, blank and
 * malformed lines (e.g. NIS `+` entries) are skipped.
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of lines(text)) {
    const [name, , uid, gid] = f;
    if (f.length < 4 || !name || !ID.test(uid ?? "") || !ID.test(gid ?? "")) continue;
    out.push({ name, uid: Number(uid), gid: Number(gid) });
  }
  return out;
}

/**
 * Parses `/etc/group` (`name:password:gid:member,member`). Comments, blank and malformed lines
 * are skipped.
 */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const f of lines(text)) {
    const [name, , gid, members] = f;
    if (f.length < 3 || !name || !ID.test(gid ?? "")) continue;
    out.push({
      name,
      gid: Number(gid),
      members: (members ?? "").split(",").filter((m) => m !== ""),
    });
  }
  return out;
}

/** The name of the first passwd entry with `uid` (as getpwuid does), or undefined. */
export function findUserName(entries: readonly PasswdEntry[], uid: number): string | undefined {
  return entries.find((e) => e.uid === uid)?.name;
}

/** The name of the first group entry with `gid` (as getgrgid does), or undefined. */
export function findGroupName(entries: readonly GroupEntry[], gid: number): string | undefined {
  return entries.find((e) => e.gid === gid)?.name;
}
