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

/** Calls `each` with the colon-separated fields of every non-blank, non-comment line. */
function forEachLine(text: string, each: (fields: string[]) => void): void {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line !== "" && line.charCodeAt(0) !== 0x23 /* # */) each(line.split(":"));
  }
}

/** A decimal id (digits only), or -1. */
function parseId(text: string | undefined): number {
  if (text === undefined || text.length === 0) return -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  return Number(text);
}

/**
 * Parses `/etc/passwd` (`name:password:uid:gid:gecos:home:shell`). Comments, blank and
 * malformed lines (e.g. NIS `+` entries) are skipped.
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  forEachLine(text, (f) => {
    const [name, , uidText, gidText] = f;
    const uid = parseId(uidText);
    const gid = parseId(gidText);
    if (f.length < 4 || !name || uid < 0 || gid < 0) return;
    out.push({ name, uid, gid });
  });
  return out;
}

/**
 * Parses `/etc/group` (`name:password:gid:member,member`). Comments, blank and malformed lines
 * are skipped.
 */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  forEachLine(text, (f) => {
    const [name, , gidText, members] = f;
    const gid = parseId(gidText);
    if (f.length < 3 || !name || gid < 0) return;
    out.push({ name, gid, members: (members ?? "").split(",").filter((m) => m !== "") });
  });
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

/**
 * Id → name of `/etc/passwd` text (the first line with an id names it, as getpwuid does), for
 * lookups without a scan.
 */
export function userNamesById(text: string): ReadonlyMap<number, string> {
  const names = new Map<number, string>();
  for (const e of parsePasswd(text)) if (!names.has(e.uid)) names.set(e.uid, e.name);
  return names;
}

/** Id → name of `/etc/group` text (the first line with a gid names it, as getgrgid does). */
export function groupNamesById(text: string): ReadonlyMap<number, string> {
  const names = new Map<number, string>();
  for (const e of parseGroup(text)) if (!names.has(e.gid)) names.set(e.gid, e.name);
  return names;
}
