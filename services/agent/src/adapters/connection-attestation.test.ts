import { mkdirSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MeshidError, isMeshidError } from "@meshid/errors";
import { formatSelector, type Selector } from "@meshid/spiffe";
import { createNoopLogger } from "@meshid/telemetry";
import { createTempDir, requireBinary, spawnManaged, type TempDir } from "@meshid/testkit";
import type { AttestedProcess, WorkloadAttestation } from "../api/deps";
import type { WorkloadProcess } from "../domain/types";
import type { WorkloadAttestor } from "../ports";
import { createConnectionAttestation } from "./connection-attestation";
import { createWorkloadAttestation } from "./workload-attestation";

const proc: WorkloadProcess = { pid: 4242, uid: 1000, gid: 1000 };
const uidSelector: Selector = { type: "unix", value: "uid:1000" };

async function errorCode(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isMeshidError(err) ? err.code : String(err);
}

/** A fake attestation counting its runs; `next` decides what the next run does. */
function fakeAttestation() {
  const state = {
    runs: 0,
    startTimeTicks: 100,
    fail: undefined as Error | undefined,
    /** Resolves the run under way when set (runs settle at once otherwise). */
    gate: undefined as Promise<void> | undefined,
    checked: [] as number[],
  };
  const attestation: Required<
    Pick<WorkloadAttestation, "attest" | "attestProcess" | "checkProcess">
  > = {
    async attest(p, signal) {
      return (await attestation.attestProcess(p, signal)).selectors;
    },
    async attestProcess(): Promise<AttestedProcess> {
      state.runs += 1;
      if (state.gate !== undefined) await state.gate;
      if (state.fail !== undefined) throw state.fail;
      return { selectors: [uidSelector], startTimeTicks: state.startTimeTicks };
    },
    checkProcess(_pid, ticks) {
      state.checked.push(ticks);
      if (ticks !== state.startTimeTicks) {
        throw new MeshidError("permission_denied", "agent.attestation.pid_reused", "reused");
      }
    },
  };
  return { state, attestation };
}

describe("connection attestation", () => {
  it("connection attestation – one attestation at accept time serves every call on the connection", async () => {
    const { state, attestation } = fakeAttestation();
    const conn = createConnectionAttestation({ process: proc, attestation, nowMs: () => 0 });
    conn.prime();
    conn.prime();
    const results = await Promise.all([conn.attest(), conn.attest(), conn.attest()]);
    expect(await conn.attest()).toEqual([uidSelector]);
    for (const r of results) expect(r).toEqual([uidSelector]);
    expect(state.runs).toBe(1);
    // Each call still checks that the PID names the attested process.
    expect(state.checked.length).toBeGreaterThanOrEqual(4);
  });

  it("connection attestation – after the max age the process is attested again", async () => {
    const { state, attestation } = fakeAttestation();
    let now = 0;
    const conn = createConnectionAttestation({
      process: proc,
      attestation,
      maxAgeMs: 1_000,
      nowMs: () => now,
    });
    await conn.attest();
    now = 1_000;
    await conn.attest();
    expect(state.runs).toBe(1);
    now = 1_001;
    await conn.attest();
    expect(state.runs).toBe(2);
  });

  it("connection attestation – a failed attestation is not kept: the next call attests again", async () => {
    const { state, attestation } = fakeAttestation();
    state.fail = new MeshidError("unavailable", "agent.attestation.kubelet_unavailable", "down");
    const conn = createConnectionAttestation({ process: proc, attestation, nowMs: () => 0 });
    conn.prime();
    expect(await errorCode(conn.attest())).toBe("agent.attestation.kubelet_unavailable");
    state.fail = undefined;
    expect(await conn.attest()).toEqual([uidSelector]);
    expect(state.runs).toBe(2);
  });

  it("connection attestation – a PID that names another process is refused, even after the max age", async () => {
    const { state, attestation } = fakeAttestation();
    let now = 0;
    const conn = createConnectionAttestation({
      process: proc,
      attestation,
      maxAgeMs: 1_000,
      nowMs: () => now,
    });
    await conn.attest();
    state.startTimeTicks = 200;
    expect(await errorCode(conn.attest())).toBe("agent.attestation.pid_reused");
    // A re-attestation would see the newcomer consistently: it must still be refused.
    now = 5_000;
    expect(await errorCode(conn.attest())).toBe("agent.attestation.pid_reused");
    expect(state.runs).toBe(1);
  });

  it("connection attestation – an aborted call leaves the shared attestation running for the others", async () => {
    const { state, attestation } = fakeAttestation();
    let open!: () => void;
    state.gate = new Promise((resolve) => {
      open = resolve;
    });
    const conn = createConnectionAttestation({ process: proc, attestation, nowMs: () => 0 });
    const abort = new AbortController();
    const aborted = conn.attest(abort.signal);
    const other = conn.attest();
    abort.abort(new Error("client went away"));
    await expect(aborted).rejects.toThrow("client went away");
    open();
    expect(await other).toEqual([uidSelector]);
    expect(state.runs).toBe(1);
  });

  it("connection attestation – close aborts the attestation under way; later calls get an aborted one", async () => {
    const signals: AbortSignal[] = [];
    const attestation: WorkloadAttestation = {
      attest: (_p, signal) =>
        new Promise<Selector[]>((resolve, reject) => {
          signals.push(signal!);
          if (signal!.aborted) reject(new Error("aborted"));
          signal!.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
          setTimeout(() => resolve([uidSelector]), 20);
        }),
    };
    const conn = createConnectionAttestation({ process: proc, attestation, nowMs: () => 0 });
    const during = conn.attest();
    conn.close();
    await expect(during).rejects.toThrow("aborted");
    expect(signals[0]?.aborted).toBe(true);
    await expect(conn.attest()).rejects.toThrow("aborted");
    expect(signals[1]?.aborted).toBe(true);
  });

  it("connection attestation – an attestation without start times is reused within the max age", async () => {
    let runs = 0;
    const attestation: WorkloadAttestation = {
      attest: () => {
        runs += 1;
        return Promise.resolve([uidSelector]);
      },
    };
    const conn = createConnectionAttestation({ process: proc, attestation, nowMs: () => 0 });
    await conn.attest();
    await conn.attest();
    expect(runs).toBe(1);
  });

  describe("with the PID-reuse-guarded workload attestation (fake /proc)", () => {
    let dir: TempDir;
    const statLine = (pid: number, state: string, start: number) =>
      `${pid} (a) ${state} 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 0 0 0\n`;

    beforeEach(async () => {
      dir = await createTempDir("agent-conn-attest-");
      mkdirSync(join(dir.path, "4242"));
    });
    afterEach(async () => {
      await dir.cleanup();
    });

    function guarded(): { runs: () => number; attestation: WorkloadAttestation } {
      let runs = 0;
      const attestor: WorkloadAttestor = {
        type: "unix",
        attest: () => {
          runs += 1;
          return Promise.resolve([uidSelector]);
        },
      };
      return {
        runs: () => runs,
        attestation: createWorkloadAttestation({
          attestors: [attestor],
          procRoot: dir.path,
          logger: createNoopLogger(),
        }),
      };
    }

    it("connection attestation – the PID reused after attestation is pid_reused, an exit process_gone", async () => {
      const stat = join(dir.path, "4242", "stat");
      writeFileSync(stat, statLine(4242, "S", 1000));
      const { runs, attestation } = guarded();
      const conn = createConnectionAttestation({ process: proc, attestation, nowMs: () => 0 });
      expect((await conn.attest()).map(formatSelector)).toEqual(["unix:uid:1000"]);
      expect(await conn.attest()).toEqual([uidSelector]);
      expect(runs()).toBe(1);
      writeFileSync(stat, statLine(4242, "S", 2000));
      expect(await errorCode(conn.attest())).toBe("agent.attestation.pid_reused");
      writeFileSync(stat, statLine(4242, "Z", 1000));
      expect(await errorCode(conn.attest())).toBe("agent.attestation.process_gone");
      conn.close();
    });

    it("connection attestation – a real process: its handle refuses calls once it exited, and closes", async () => {
      const child = await spawnManaged(requireBinary("sleep", "coreutils"), ["300"]);
      try {
        const real = createWorkloadAttestation({
          attestors: [{ type: "unix", attest: () => Promise.resolve([uidSelector]) }],
          logger: createNoopLogger(),
        });
        const conn = createConnectionAttestation({
          process: { pid: child.pid, uid: 0, gid: 0 },
          attestation: real,
          nowMs: () => 0,
        });
        /** Our descriptors open on the child's stat file. */
        const handles = (): number =>
          readdirSync("/proc/self/fd").filter((fd) => {
            try {
              return readlinkSync(`/proc/self/fd/${fd}`) === `/proc/${child.pid}/stat`;
            } catch {
              return false;
            }
          }).length;
        expect(await conn.attest()).toEqual([uidSelector]);
        expect(await conn.attest()).toEqual([uidSelector]);
        expect(handles()).toBe(1);
        await child.stop({ signal: "SIGKILL" });
        expect(await errorCode(conn.attest())).toBe("agent.attestation.process_gone");
        conn.close();
        conn.close();
        expect(handles()).toBe(0);
      } finally {
        await child.stop({ signal: "SIGKILL" });
      }
    });
  });
});
