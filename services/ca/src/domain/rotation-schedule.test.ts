import {
  DEFAULT_OLD_AUTHORITY_GRACE_SECONDS,
  planRotation,
  rotationTimes,
  type RotationAction,
} from "./rotation-schedule";
import type { AuthorityRecord, AuthorityState } from "./types";

const H = 3_600_000;
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (hours: number): Date => new Date(T0 + hours * H);

function authority(
  authorityId: string,
  state: AuthorityState,
  fromHours: number,
  toHours: number,
): AuthorityRecord {
  return {
    authorityId,
    state,
    certDer: new Uint8Array(),
    upstreamChainDer: [],
    keyId: `x509-ca-${authorityId}`,
    keyType: "ec-p256",
    notBefore: at(fromHours),
    notAfter: at(toHours),
    tainted: false,
    upstreamAuthorityId: "",
  };
}

// Active authority "a" lives 0 h → 120 h: prepare at 60 h, activate at 100 h.
const A = authority("a", "active", 0, 120);
const B_PREPARED = authority("b", "prepared", 60, 180);
const GRACE = 1; // hour, in these cases

interface Case {
  readonly name: string;
  readonly journal: readonly AuthorityRecord[];
  readonly nowHours: number;
  /** caTTL of the next authority in hours; default 120 (the same as "a"). */
  readonly nextCaTtlHours?: number;
  readonly actions: readonly RotationAction[];
  readonly nextHours: number | undefined;
}

const cases: readonly Case[] = [
  {
    name: "empty journal – prepare and activate at once",
    journal: [],
    nowHours: 0,
    actions: [{ kind: "prepare" }, { kind: "activate" }],
    nextHours: undefined,
  },
  {
    name: "young active – nothing due, next decision at ½ of its life",
    journal: [A],
    nowHours: 10,
    actions: [],
    nextHours: 60,
  },
  {
    name: "just before ½ – nothing due yet",
    journal: [A],
    nowHours: 59.99,
    actions: [],
    nextHours: 60,
  },
  {
    name: "at ½ – prepare",
    journal: [A],
    nowHours: 60,
    actions: [{ kind: "prepare" }],
    nextHours: 100,
  },
  {
    name: "caTTL lowered to 24 h – not prepared at ½ (it would expire before ⅚)",
    journal: [A],
    nowHours: 60,
    nextCaTtlHours: 24,
    actions: [],
    nextHours: 92,
  },
  {
    name: "caTTL lowered to 24 h – prepared 8 h (a third of 24 h) before ⅚",
    journal: [A],
    nowHours: 92,
    nextCaTtlHours: 24,
    actions: [{ kind: "prepare" }],
    nextHours: 100,
  },
  {
    name: "caTTL raised – still prepared at ½",
    journal: [A],
    nowHours: 60,
    nextCaTtlHours: 720,
    actions: [{ kind: "prepare" }],
    nextHours: 100,
  },
  {
    name: "prepared before ⅚ – wait for the activation time",
    journal: [A, B_PREPARED],
    nowHours: 70,
    actions: [],
    nextHours: 100,
  },
  {
    name: "manually prepared early – still activated at ⅚, nothing else due",
    journal: [A, authority("b", "prepared", 5, 125)],
    nowHours: 6,
    actions: [],
    nextHours: 100,
  },
  {
    name: "at ⅚ with a prepared one – activate",
    journal: [A, B_PREPARED],
    nowHours: 100,
    actions: [{ kind: "activate" }],
    nextHours: undefined,
  },
  {
    name: "past ⅚ without a prepared one (CA was down) – prepare and activate",
    journal: [A],
    nowHours: 110,
    actions: [{ kind: "prepare" }, { kind: "activate" }],
    nextHours: undefined,
  },
  {
    name: "active expired, usable prepared – activate it",
    journal: [A, B_PREPARED],
    nowHours: 150,
    actions: [{ kind: "activate" }],
    nextHours: undefined,
  },
  {
    name: "active expired, prepared expired too – prepare a new one and activate it",
    journal: [A, authority("b", "prepared", 60, 130)],
    nowHours: 140,
    actions: [{ kind: "prepare" }, { kind: "activate" }],
    nextHours: undefined,
  },
  {
    name: "no active but a prepared one – activate it",
    journal: [B_PREPARED],
    nowHours: 70,
    actions: [{ kind: "activate" }],
    nextHours: undefined,
  },
  {
    name: "prepared one that expires before ⅚ – next decision at its expiry",
    journal: [A, authority("b", "prepared", 60, 84)],
    nowHours: 61,
    actions: [],
    nextHours: 84,
  },
  {
    name: "prepared one expired before ⅚ – prepare a replacement",
    journal: [A, authority("b", "prepared", 60, 84)],
    nowHours: 84,
    actions: [{ kind: "prepare" }],
    nextHours: 100,
  },
  {
    name: "old authority not yet past notAfter + grace – kept, next decision at its prune time",
    journal: [authority("o", "old", -100, 20), A],
    nowHours: 20.5,
    actions: [],
    nextHours: 21,
  },
  {
    name: "old authority at notAfter + grace – pruned",
    journal: [authority("o", "old", -100, 20), A],
    nowHours: 21,
    actions: [{ kind: "prune", authorityId: "o" }],
    nextHours: 60,
  },
  {
    name: "tainted old authority past grace – pruned like any other",
    journal: [{ ...authority("t", "old", -100, 5), tainted: true }, A],
    nowHours: 30,
    actions: [{ kind: "prune", authorityId: "t" }],
    nextHours: 60,
  },
  {
    name: "several steps due together – rotation first, then pruning in journal order",
    journal: [authority("o1", "old", -200, -50), A, authority("o2", "old", -100, 10)],
    nowHours: 105,
    actions: [
      { kind: "prepare" },
      { kind: "activate" },
      { kind: "prune", authorityId: "o1" },
      { kind: "prune", authorityId: "o2" },
    ],
    nextHours: undefined,
  },
];

describe("rotation schedule", () => {
  test.each(cases)("rotation schedule – $name", (c) => {
    const plan = planRotation({
      authorities: c.journal,
      now: at(c.nowHours),
      caTtlSeconds: (c.nextCaTtlHours ?? 120) * 3_600,
      oldAuthorityGraceSeconds: GRACE * 3_600,
    });
    expect(plan.actions).toEqual(c.actions);
    expect(plan.nextDecisionAt?.toISOString()).toBe(
      c.nextHours === undefined ? undefined : at(c.nextHours).toISOString(),
    );
  });

  test("rotation schedule – times are ½ and ⅚ of the authority's lifetime", () => {
    const t = rotationTimes({ notBefore: at(0), notAfter: at(720) });
    expect(t.prepareAt.toISOString()).toBe(at(360).toISOString());
    expect(t.activateAt.toISOString()).toBe(at(600).toISOString());
    const same = rotationTimes({ notBefore: at(0), notAfter: at(720) }, 720 * 3_600);
    expect(same).toEqual(t);
    const shorter = rotationTimes({ notBefore: at(0), notAfter: at(720) }, 24 * 3_600);
    expect(shorter.prepareAt.toISOString()).toBe(at(592).toISOString());
    expect(shorter.activateAt.toISOString()).toBe(at(600).toISOString());
  });

  test("rotation schedule – default grace is SPIRE's 24 h safety threshold", () => {
    expect(DEFAULT_OLD_AUTHORITY_GRACE_SECONDS).toBe(86_400);
  });

  test("rotation schedule – a full life cycle advances prepared → active → old → pruned", () => {
    // Simulate the manager applying each plan, checking the state only moves forwards.
    let journal: AuthorityRecord[] = [A];
    let n = 0;
    const seen: string[] = [];
    for (let hours = 0; hours <= 400; hours += 0.5) {
      const now = at(hours);
      const plan = planRotation({
        authorities: journal,
        now,
        caTtlSeconds: 120 * 3_600,
        oldAuthorityGraceSeconds: 3_600,
      });
      for (const action of plan.actions) {
        seen.push(`${hours}:${action.kind}`);
        if (action.kind === "prepare") {
          journal = journal.filter((a) => a.state !== "prepared");
          journal.push(authority(`n${++n}`, "prepared", hours, hours + 120));
        } else if (action.kind === "activate") {
          journal = journal.map((a) =>
            a.state === "active"
              ? { ...a, state: "old" }
              : a.state === "prepared"
                ? { ...a, state: "active" }
                : a,
          );
        } else {
          journal = journal.filter((a) => a.authorityId !== action.authorityId);
        }
      }
    }
    // a: prepare at 60, activate at 100; n1 (60 → 180): prepare at 120, activate at 160; …
    expect(seen.slice(0, 6)).toEqual([
      "60:prepare",
      "100:activate",
      "120:prepare",
      "121:prune",
      "160:activate",
      "180:prepare",
    ]);
    expect(journal.filter((a) => a.state === "active")).toHaveLength(1);
  });
});
