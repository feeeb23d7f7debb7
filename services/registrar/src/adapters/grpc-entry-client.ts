// The registrar's client of the CA's EntryService: over the CA's local admin Unix socket
// (every caller there is admin) or over mTLS with the registrar's own SVID.
import {
  createGrpcChannel,
  createGrpcClient,
  meshidErrorFromClientError,
  type ChannelTlsOptions,
} from "@meshid/grpc-kit";
import { meshidCaV1, type meshidTypesV1 } from "@meshid/proto";
import { parseSpiffeId } from "@meshid/spiffe";
import { POD_UID_SELECTOR_PREFIX, type CurrentEntry } from "../domain/types";
import type { DeleteItemResult, EntryClient, EntryItemResult, EntryWrite } from "../ports";

/** Default deadline of each call to the CA, in milliseconds. */
export const DEFAULT_CA_CALL_DEADLINE_MS = 30_000;
/** Page size of ListEntries (the CA's maximum). */
export const LIST_PAGE_SIZE = 1000;

/** Parameters of {@link createGrpcEntryClient}. */
export interface CreateGrpcEntryClientParams {
  /** `unix:///path/admin.sock`, or `host:port` with `tls`. */
  readonly target: string;
  /** mTLS with the registrar's SVID; absent for the admin Unix socket. */
  readonly tls?: ChannelTlsOptions;
  /** Default {@link DEFAULT_CA_CALL_DEADLINE_MS}. */
  readonly deadlineMs?: number;
}

function idToString(id: meshidTypesV1.SpiffeId | undefined): string {
  if (id === undefined || id.trustDomain === "") return "";
  return `spiffe://${id.trustDomain}${id.path}`;
}

function idToProto(id: string): meshidTypesV1.SpiffeId {
  const parsed = parseSpiffeId(id);
  return { trustDomain: parsed.trustDomain.name, path: parsed.path };
}

/** Converts a stored entry to the registrar's {@link CurrentEntry}. */
export function currentEntryFromProto(e: meshidTypesV1.RegistrationEntry): CurrentEntry {
  const selectors = e.selectors.map((s) => `${s.type}:${s.value}`).sort();
  const podSelectors = selectors.filter((s) => s.startsWith(POD_UID_SELECTOR_PREFIX));
  const only = podSelectors.length === 1 ? podSelectors[0] : undefined;
  return {
    id: e.id,
    spiffeId: idToString(e.spiffeId),
    parentId: idToString(e.parentId),
    podUid: only === undefined ? undefined : only.slice(POD_UID_SELECTOR_PREFIX.length),
    selectors,
    dnsNames: [...e.dnsNames],
    ttlSeconds: e.x509SvidTtlSeconds,
    hint: e.hint,
  };
}

/** Converts an entry to write to its proto form, tagged with `owner`. */
export function entryWriteToProto(w: EntryWrite, owner: string): meshidTypesV1.RegistrationEntry {
  return {
    id: w.id,
    spiffeId: idToProto(w.spiffeId),
    parentId: idToProto(w.parentId),
    selectors: [{ type: "k8s", value: `pod-uid:${w.podUid}` }],
    x509SvidTtlSeconds: w.ttlSeconds,
    dnsNames: [...w.dnsNames],
    admin: false,
    hint: w.hint,
    revision: 0,
    owner,
  } as meshidTypesV1.RegistrationEntry;
}

function entryResults(results: readonly meshidCaV1.EntryResult[]): EntryItemResult[] {
  return results.map((r) => {
    const code = r.status?.code ?? 0;
    if (code === 0 && r.entry !== undefined)
      return { ok: true, entry: currentEntryFromProto(r.entry) };
    return {
      ok: false,
      code: code === 0 ? 13 : code,
      message: r.status?.message ?? "no entry in the result",
      errorCode: r.status?.errorCode ?? "",
    };
  });
}

/**
 * Creates the {@link EntryClient} over one gRPC channel. Failed calls reject with the CA's
 * MeshidError (kind from the gRPC status, e.g. `unavailable` when the CA is unreachable).
 */
export function createGrpcEntryClient(params: CreateGrpcEntryClientParams): EntryClient {
  const channel = createGrpcChannel({
    target: params.target,
    ...(params.tls === undefined ? {} : { tls: params.tls }),
    // Our own subchannels: the reconnect backoff of this channel never delays other clients
    // of the same address in the process (and theirs never delays ours).
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  const client = createGrpcClient(meshidCaV1.EntryServiceDefinition, channel, {
    deadlineMs: params.deadlineMs ?? DEFAULT_CA_CALL_DEADLINE_MS,
  });
  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      throw meshidErrorFromClientError(err);
    }
  };
  return {
    async listOwnedEntries(owner, signal) {
      const out: CurrentEntry[] = [];
      let pageToken = "";
      do {
        const page = await call(() =>
          client.listEntries(
            {
              pageSize: LIST_PAGE_SIZE,
              pageToken,
              byOwner: owner,
            },
            signal === undefined ? {} : { signal },
          ),
        );
        for (const e of page.entries) out.push(currentEntryFromProto(e));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return out;
    },
    async createEntries(entries, owner, signal) {
      const res = await call(() =>
        client.batchCreateEntry(
          { entries: entries.map((e) => entryWriteToProto(e, owner)) },
          signal === undefined ? {} : { signal },
        ),
      );
      return entryResults(res.results);
    },
    async updateEntries(entries, owner, signal) {
      const res = await call(() =>
        client.batchUpdateEntry(
          { entries: entries.map((e) => entryWriteToProto(e, owner)) },
          signal === undefined ? {} : { signal },
        ),
      );
      return entryResults(res.results);
    },
    async deleteEntries(ids, signal) {
      const res = await call(() =>
        client.batchDeleteEntry({ ids: [...ids] }, signal === undefined ? {} : { signal }),
      );
      return res.results.map((r, i): DeleteItemResult => {
        const code = r.status?.code ?? 0;
        const id = r.id === "" ? (ids[i] ?? "") : r.id;
        return code === 0
          ? { ok: true, id }
          : { ok: false, id, code, message: r.status?.message ?? "" };
      });
    },
    close: () => channel.close(),
  };
}
