// Test helpers for the AuthorityManager: an in-memory store of the journal and bundle, an
// EventSink that records what was published, an UpstreamAuthority on a real test CA, and a
// converter from BundleRecord to a @meshid/spiffe Bundle.
import type { EventType } from "@meshid/events";
import { createIntermediateCa, parseCsr, verifyCsr } from "@meshid/pki";
import { createBundle, type Bundle } from "@meshid/spiffe";
import type { TestCa, TestIntermediateCa } from "@meshid/testkit";
import type { AuthorityRecord, BundleRecord } from "../domain/types";
import type { Clock, Datastore, EventSink, UpstreamAuthority } from "../ports";

/** The four store methods the AuthorityManager uses, kept in memory, plus what tests inspect. */
export interface MemoryAuthorityStore extends Pick<
  Datastore,
  "listAuthorities" | "saveAuthorities" | "getBundle" | "saveBundle"
> {
  /** The journal as last saved. */
  readonly authorities: readonly AuthorityRecord[];
  /** The bundle as last saved. */
  readonly savedBundle: BundleRecord | undefined;
  /** Makes the next saveAuthorities call fail with `err`. */
  failNextSaveAuthorities(err: Error): void;
}

/** Creates a {@link MemoryAuthorityStore} (empty). */
export function createMemoryAuthorityStore(): MemoryAuthorityStore {
  let authorities: readonly AuthorityRecord[] = [];
  let savedBundle: BundleRecord | undefined;
  let failure: Error | undefined;
  return {
    get authorities() {
      return authorities;
    },
    get savedBundle() {
      return savedBundle;
    },
    failNextSaveAuthorities(err: Error): void {
      failure = err;
    },
    listAuthorities: () => Promise.resolve(authorities.map((a) => ({ ...a }))),
    saveAuthorities(records: readonly AuthorityRecord[]): Promise<void> {
      if (failure !== undefined) {
        const err = failure;
        failure = undefined;
        return Promise.reject(err);
      }
      authorities = records.map((a) => ({ ...a }));
      return Promise.resolve();
    },
    getBundle: () => Promise.resolve(savedBundle),
    saveBundle(bundle: BundleRecord): Promise<void> {
      savedBundle = bundle;
      return Promise.resolve();
    },
  };
}

/** One event seen by a {@link RecordingEventSink}, with the store state at publish time. */
export interface RecordedEvent {
  readonly type: EventType;
  readonly payload: Record<string, unknown>;
  readonly subject: string | undefined;
  /** Sequence number of the stored bundle when the event was published. */
  readonly storedSequenceNumber: number | undefined;
  /** Authority ids (and states) of the stored journal when the event was published. */
  readonly storedJournal: readonly string[];
}

/** An EventSink that records every publish (and can be made to fail). */
export interface RecordingEventSink extends EventSink {
  readonly events: RecordedEvent[];
  /** Event types, in order. */
  types(): EventType[];
  /** Forgets what was recorded. */
  clear(): void;
  /** While set, every publish is recorded and then rejects with this error. */
  failWith: Error | undefined;
}

/** Creates a {@link RecordingEventSink}; `store` (optional) is snapshotted at each publish. */
export function createRecordingEventSink(store?: MemoryAuthorityStore): RecordingEventSink {
  const sink: RecordingEventSink = {
    events: [],
    failWith: undefined,
    types: () => sink.events.map((e) => e.type),
    clear: () => {
      sink.events.length = 0;
    },
    publish(type, payload, options) {
      sink.events.push({
        type,
        payload: payload as unknown as Record<string, unknown>,
        subject: options?.subject,
        storedSequenceNumber: store?.savedBundle?.sequenceNumber,
        storedJournal: (store?.authorities ?? []).map((a) => `${a.authorityId}:${a.state}`),
      });
      return sink.failWith === undefined ? Promise.resolve("id") : Promise.reject(sink.failWith);
    },
  };
  return sink;
}

/** The @meshid/spiffe Bundle of a stored BundleRecord. */
export function toSpiffeBundle(record: BundleRecord): Bundle {
  return createBundle({
    trustDomain: record.trustDomain,
    x509Authorities: record.x509Authorities.map((a) => a.certDer),
    sequenceNumber: record.sequenceNumber,
    refreshHintSeconds: record.refreshHintSeconds,
  });
}

/**
 * An UpstreamAuthority on a real test CA: it verifies the CSR and signs an intermediate with
 * `signer` (the test root, or an intermediate under it) at the clock's time; the minted chain
 * holds the new CA and `signer` when it is an intermediate; the roots are the test root.
 */
export function createTestCaUpstreamAuthority(params: {
  readonly testCa: TestCa;
  readonly signer?: TestIntermediateCa;
  readonly clock: Clock;
  /** More roots returned next to the test root (e.g. another CA's during a root rotation). */
  readonly extraRoots?: readonly Uint8Array[];
}): UpstreamAuthority & { readonly mintCount: () => number } {
  const { testCa, signer, clock } = params;
  let count = 0;
  return {
    mintCount: () => count,
    async mintX509Ca({ csrDer, ttlSeconds }) {
      const csr = parseCsr(csrDer);
      verifyCsr(csr);
      const ca = await createIntermediateCa({
        issuer:
          signer === undefined
            ? { certDer: testCa.rootCertDer, privateKey: testCa.rootPrivateKey }
            : { certDer: signer.certDer, privateKey: signer.privateKey },
        publicKey: csr.publicKey,
        trustDomain: testCa.trustDomain,
        ttlSeconds,
        now: clock.now(),
      });
      count++;
      return {
        x509CaChain: [ca.certDer, ...(signer?.chainDer ?? [])],
        upstreamX509Roots: [testCa.rootCertDer, ...(params.extraRoots ?? [])],
      };
    },
    close: () => Promise.resolve(),
  };
}
