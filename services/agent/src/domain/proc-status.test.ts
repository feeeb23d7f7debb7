import { parseProcStatus } from "./proc-status";

const status = (groups: string) => `Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Pid:\t4242
PPid:\t1
Uid:\t1000\t1001\t1002\t1003
Gid:\t2000\t2001\t2002\t2003
FDSize:\t64
Groups:\t${groups}
NStgid:\t4242
`;

describe("parseProcStatus", () => {
  it("proc status – reads real, effective, saved and filesystem ids and the groups", () => {
    expect(parseProcStatus(status("4 24 27 100 "))).toEqual({
      uids: { real: 1000, effective: 1001, saved: 1002, filesystem: 1003 },
      gids: { real: 2000, effective: 2001, saved: 2002, filesystem: 2003 },
      groups: [4, 24, 27, 100],
    });
  });

  it("proc status – an empty Groups line is no supplementary groups", () => {
    expect(parseProcStatus(status("")).groups).toEqual([]);
  });

  it.each([
    ["no Uid line", status("1").replace(/^Uid:.*\n/m, "")],
    ["short Gid line", status("1").replace(/^Gid:.*\n/m, "Gid:\t1\t2\n")],
    ["bad group", status("1 x")],
    ["no Groups line", status("1").replace(/^Groups:.*\n/m, "")],
  ])("proc status – rejects %s", (_name, text) => {
    expect(() => parseProcStatus(text)).toThrow(
      expect.objectContaining({ code: "agent.attestation.proc_unparsable" }) as Error,
    );
  });
});
