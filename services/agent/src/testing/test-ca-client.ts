// A real signing CA behind the agent's CaClient.batchNewX509Svid, for agent tests.
import type { KeyObject } from "node:crypto";
import { MeshidError, isMeshidError } from "@meshid/errors";
import { createX509SvidIssuer, parseCsr, verifyCsr, type X509SvidIssuer } from "@meshid/pki";
import { TEST_SVID_TTL_SECONDS, type TestCa } from "@meshid/testkit";
import type { AgentEntry } from "../domain/types";
import type { CaClient, SignedSvidResult } from "../ports";

/** An authority that signs SVIDs: the test root or an intermediate. */
export interface TestCaAuthority {
  /** The authority certificate, DER. */
  readonly certDer: Uint8Array;
  readonly privateKey: KeyObject;
  /** The chain sent after the leaf (intermediates, root excluded); [] for the root. */
  readonly chainDer: readonly Uint8Array[];
}

/** Parameters of {@link createTestCaClient}. */
export interface CreateTestCaClientParams {
  /** The test CA; its root signs until {@link TestCaClient.useAuthority} says otherwise. */
  readonly ca: TestCa;
  /** Looks up the entry of a request (the CA builds the SVID from the entry, not the CSR). */
  readonly getEntry: (entryId: string) => AgentEntry | undefined;
  /** Issuance time (the test's fake clock). Default: real time. */
  readonly now?: () => Date;
  /** TTL for entries with x509SvidTtlSeconds 0. Default TEST_SVID_TTL_SECONDS (1 h). */
  readonly defaultTtlSeconds?: number;
}

/** One batchNewX509Svid call as the client saw it. */
export interface TestCaCall {
  readonly entryIds: readonly string[];
  /** Whether the whole call was failed by injection. */
  readonly failed: boolean;
}

/** A `Pick<CaClient, "batchNewX509Svid">` backed by a real in-memory CA, with failure injection. */
export interface TestCaClient extends Pick<CaClient, "batchNewX509Svid"> {
  /** Every call so far, in order. */
  readonly calls: readonly TestCaCall[];
  /** Makes the next `count` calls reject with MeshidError unavailable `ca.test.unavailable`. */
  failNextCalls(count: number): void;
  /** Makes the next `count` items for `entryId` fail with `ca.test.item_failed`. */
  failItem(entryId: string, count: number): void;
  /** Signs from now on with `authority` (e.g. an intermediate from `ca.issueIntermediate()`). */
  useAuthority(authority: TestCaAuthority): void;
  /** SVIDs signed so far. */
  signedCount(): number;
}

/**
 * Creates a {@link TestCaClient}: each item's CSR is parsed and its proof of possession
 * checked (parseCsr + verifyCsr), then an X509-SVID for the entry's SPIFFE ID, DNS names and
 * TTL is issued with @meshid/pki's issuer, exactly like the real CA. An unknown entry id is a
 * per-item `ca.entry.not_found`; a bad CSR a per-item `pki.csr.*` failure.
 */
export function createTestCaClient(params: CreateTestCaClientParams): TestCaClient {
  const now = params.now ?? (() => new Date());
  const calls: TestCaCall[] = [];
  const itemFailures = new Map<string, number>();
  let callFailures = 0;
  let signed = 0;
  let chainDer: readonly Uint8Array[] = [];
  let issuer: X509SvidIssuer = createX509SvidIssuer({
    issuerCertDer: params.ca.rootCertDer,
    issuerPrivateKey: params.ca.rootPrivateKey,
  });

  function signOne(entryId: string, csrDer: Uint8Array): SignedSvidResult {
    const remaining = itemFailures.get(entryId) ?? 0;
    if (remaining > 0) {
      itemFailures.set(entryId, remaining - 1);
      return { ok: false, entryId, code: "ca.test.item_failed", message: "injected item failure" };
    }
    const entry = params.getEntry(entryId);
    if (entry === undefined) {
      return { ok: false, entryId, code: "ca.entry.not_found", message: "no such entry" };
    }
    try {
      const csr = parseCsr(csrDer);
      verifyCsr(csr);
      const svid = issuer.issue({
        spiffeId: entry.spiffeId,
        publicKey: csr.publicKey,
        dnsNames: entry.dnsNames,
        ttlSeconds: entry.x509SvidTtlSeconds || (params.defaultTtlSeconds ?? TEST_SVID_TTL_SECONDS),
        now: now(),
      });
      signed++;
      return {
        ok: true,
        entryId,
        certChainDer: [svid.certDer, ...chainDer],
        serialHex: svid.serialHex,
        expiresAt: svid.notAfter,
      };
    } catch (err) {
      if (!isMeshidError(err)) throw err;
      return { ok: false, entryId, code: err.code, message: err.message };
    }
  }

  return {
    calls,
    batchNewX509Svid(items) {
      const entryIds = items.map((i) => i.entryId);
      if (callFailures > 0) {
        callFailures--;
        calls.push({ entryIds, failed: true });
        return Promise.reject(
          new MeshidError("unavailable", "ca.test.unavailable", "injected CA outage"),
        );
      }
      calls.push({ entryIds, failed: false });
      return Promise.resolve(items.map((i) => signOne(i.entryId, i.csrDer)));
    },
    failNextCalls(count) {
      callFailures = count;
    },
    failItem(entryId, count) {
      itemFailures.set(entryId, count);
    },
    useAuthority(authority) {
      issuer = createX509SvidIssuer({
        issuerCertDer: authority.certDer,
        issuerPrivateKey: authority.privateKey,
      });
      chainDer = authority.chainDer;
    },
    signedCount: () => signed,
  };
}
