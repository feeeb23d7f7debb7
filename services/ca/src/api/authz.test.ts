import { MeshidError } from "@meshid/errors";
import { parseSpiffeId } from "@meshid/spiffe";
import type { RegistrationEntry } from "../domain/types";
import { createAuthorizer, policyForMethod, requireRole } from "./authz";

const AGENT = parseSpiffeId("spiffe://example.org/meshid/agent/join_token/a");
const BANNED = parseSpiffeId("spiffe://example.org/meshid/agent/join_token/banned");
const ADMIN = parseSpiffeId("spiffe://example.org/meshctl");
const ENTRY_ADMIN = parseSpiffeId("spiffe://example.org/registrar");
const NOBODY = parseSpiffeId("spiffe://example.org/workload");

function setup() {
  let now = 0;
  let listCalls = 0;
  const authorizer = createAuthorizer({
    adminIds: [ADMIN.toString()],
    entries: {
      list: (params) => {
        listCalls += 1;
        const admin = params.bySpiffeId === ENTRY_ADMIN.toString();
        return Promise.resolve({
          items: admin ? [{ admin: true } as RegistrationEntry] : [],
          nextPageToken: "",
        });
      },
    },
    agents: {
      checkAgent: (id, serial) =>
        Promise.resolve(
          id.equals(BANNED) ? "banned" : id.equals(AGENT) && serial === "0a" ? "ok" : "unknown",
        ),
    },
    clock: { now: () => new Date(now) },
    adminCacheMs: 1000,
  });
  return {
    authorizer,
    advance: (ms: number) => (now += ms),
    listCalls: () => listCalls,
  };
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return err instanceof MeshidError ? `${err.kind}/${err.code}` : "not-meshid";
  }
}

const M = (s: string, m: string) => `/meshid.ca.v1.${s}/${m}`;

describe("authz", () => {
  it("authz – policy table", () => {
    expect(policyForMethod(M("AgentService", "AttestAgent"))).toBe("anyone");
    expect(policyForMethod("/grpc.health.v1.Health/Check")).toBe("anyone");
    expect(policyForMethod(M("EntryService", "SyncAuthorizedEntries"))).toEqual(["agent"]);
    expect(policyForMethod(M("SvidService", "BatchNewX509SVID"))).toEqual(["agent"]);
    expect(policyForMethod(M("AgentService", "RenewAgent"))).toEqual(["agent"]);
    expect(policyForMethod(M("BundleService", "WatchBundle"))).toEqual(["agent", "admin"]);
    expect(policyForMethod(M("EntryService", "BatchCreateEntry"))).toEqual(["admin"]);
    expect(policyForMethod(M("Unknown", "Thing"))).toEqual(["admin"]);
  });

  it("authz – anyone may attest without a certificate", async () => {
    const { authorizer } = setup();
    await expect(
      authorizer.authorize(M("AgentService", "AttestAgent"), undefined, undefined),
    ).resolves.toEqual({ role: "anyone", spiffeId: undefined });
  });

  it("authz – no certificate is UNAUTHENTICATED", async () => {
    const { authorizer } = setup();
    expect(
      await errorOf(
        authorizer.authorize(M("EntryService", "SyncAuthorizedEntries"), undefined, undefined),
      ),
    ).toBe("unauthenticated/ca.authz.unauthenticated");
  });

  it("authz – agents: current serial ok, stale serial or banned denied", async () => {
    const { authorizer } = setup();
    const sync = M("EntryService", "SyncAuthorizedEntries");
    await expect(authorizer.authorize(sync, AGENT, "0a")).resolves.toMatchObject({ role: "agent" });
    expect(await errorOf(authorizer.authorize(sync, AGENT, "ff"))).toBe(
      "permission_denied/ca.authz.agent_unknown",
    );
    expect(await errorOf(authorizer.authorize(sync, BANNED, "0a"))).toBe(
      "permission_denied/ca.agent.banned",
    );
    expect(await errorOf(authorizer.authorize(sync, NOBODY, "0a"))).toBe(
      "permission_denied/ca.authz.denied",
    );
  });

  it("authz – agents may not call admin methods; admins may not call agent methods", async () => {
    const { authorizer } = setup();
    expect(
      await errorOf(authorizer.authorize(M("EntryService", "BatchCreateEntry"), AGENT, "0a")),
    ).toBe("permission_denied/ca.authz.denied");
    expect(
      await errorOf(authorizer.authorize(M("SvidService", "BatchNewX509SVID"), ADMIN, "1")),
    ).toBe("permission_denied/ca.authz.denied");
    await expect(
      authorizer.authorize(M("BundleService", "GetBundle"), AGENT, "0a"),
    ).resolves.toMatchObject({ role: "agent" });
    await expect(
      authorizer.authorize(M("BundleService", "GetBundle"), ADMIN, "1"),
    ).resolves.toMatchObject({ role: "admin" });
  });

  it("authz – admins by adminIds or by an admin entry, cached briefly", async () => {
    const { authorizer, advance, listCalls } = setup();
    const create = M("EntryService", "BatchCreateEntry");
    await expect(authorizer.authorize(create, ADMIN, "1")).resolves.toMatchObject({
      role: "admin",
    });
    await expect(authorizer.authorize(create, ENTRY_ADMIN, "1")).resolves.toMatchObject({
      role: "admin",
    });
    const calls = listCalls();
    await authorizer.authorize(create, ENTRY_ADMIN, "1");
    expect(listCalls()).toBe(calls);
    advance(2000);
    await authorizer.authorize(create, ENTRY_ADMIN, "1");
    expect(listCalls()).toBe(calls + 1);
    authorizer.invalidate();
    await authorizer.authorize(create, ENTRY_ADMIN, "1");
    expect(listCalls()).toBe(calls + 2);
  });

  it("authz – requireRole", () => {
    expect(() => requireRole({ role: "anyone", spiffeId: undefined }, "admin")).toThrow(
      MeshidError,
    );
    expect(requireRole({ role: "agent", spiffeId: AGENT }, "agent").spiffeId).toBe(AGENT);
  });
});
