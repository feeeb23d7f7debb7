import { findGroupName, findUserName, parseGroup, parsePasswd } from "./passwd";

const PASSWD = `root:x:0:0:root:/root:/bin/bash
# a comment

daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
+::::::
broken:x:abc:1::/:/bin/sh
toor:x:0:0::/root:/bin/sh
`;

const GROUP = `root:x:0:
users:x:100:alice,bob
nogroup:x:65534:
bad:x:
`;

describe("passwd and group parsing", () => {
  it("passwd – parses names and ids, skipping comments, NIS and malformed lines", () => {
    expect(parsePasswd(PASSWD)).toEqual([
      { name: "root", uid: 0, gid: 0 },
      { name: "daemon", uid: 1, gid: 1 },
      { name: "nobody", uid: 65534, gid: 65534 },
      { name: "toor", uid: 0, gid: 0 },
    ]);
  });

  it("passwd – the first entry with a uid names it, like getpwuid", () => {
    const entries = parsePasswd(PASSWD);
    expect(findUserName(entries, 0)).toBe("root");
    expect(findUserName(entries, 65534)).toBe("nobody");
    expect(findUserName(entries, 4242)).toBeUndefined();
  });

  it("group – parses names, gids and members", () => {
    const entries = parseGroup(GROUP);
    expect(entries).toEqual([
      { name: "root", gid: 0, members: [] },
      { name: "users", gid: 100, members: ["alice", "bob"] },
      { name: "nogroup", gid: 65534, members: [] },
    ]);
    expect(findGroupName(entries, 100)).toBe("users");
    expect(findGroupName(entries, 7)).toBeUndefined();
  });
});
