// EntryService: registration entries (admins) and the per-agent delta sync (agents).
import type { meshidCaV1 } from "@meshid/proto";
import type { Logger } from "@meshid/telemetry";
import { requireRole, type Authorizer, type CaCallContext } from "./authz";
import { applyBatch, checkBatchSize, checkTrustDomain } from "./batch";
import {
  entryIdFromProto,
  entryToProto,
  entryUpdateFromProto,
  itemStatusFromResult,
  listEntriesParamsFromProto,
  newEntryFromProto,
} from "./converters";
import type { EntryManager } from "./deps";
import type { NewRegistrationEntry, RegistrationEntryUpdate } from "../domain/types";

/** Dependencies of {@link createEntryService}. */
export interface EntryServiceDeps {
  readonly trustDomain: string;
  readonly entries: EntryManager;
  /** Its admin-entry cache is dropped after every change. */
  readonly authorizer?: Pick<Authorizer, "invalidate">;
  readonly maxBatchSize: number;
  readonly logger: Logger;
}

/** Creates the EntryService implementation. */
export function createEntryService(
  deps: EntryServiceDeps,
): meshidCaV1.EntryServiceImplementation<CaCallContext> {
  const { entries, trustDomain } = deps;
  const checkFields = <T extends NewRegistrationEntry | RegistrationEntryUpdate>(e: T): T => {
    checkTrustDomain(e.spiffeId, trustDomain, "spiffe_id");
    checkTrustDomain(e.parentId, trustDomain, "parent_id");
    return e;
  };
  return {
    async batchCreateEntry(req, ctx) {
      requireRole(ctx.caller, "admin");
      checkBatchSize(req.entries.length, deps.maxBatchSize);
      const results = await applyBatch(
        req.entries,
        (p) => checkFields(newEntryFromProto(p)),
        (valid) => entries.batchCreate(valid),
      );
      deps.authorizer?.invalidate();
      return {
        results: results.map((r) => ({
          status: itemStatusFromResult(r),
          ...(r.ok ? { entry: entryToProto(r.value) } : {}),
        })),
      };
    },
    async batchUpdateEntry(req, ctx) {
      requireRole(ctx.caller, "admin");
      checkBatchSize(req.entries.length, deps.maxBatchSize);
      const results = await applyBatch(
        req.entries,
        (p) => checkFields(entryUpdateFromProto(p)),
        (valid) => entries.batchUpdate(valid),
      );
      deps.authorizer?.invalidate();
      return {
        results: results.map((r) => ({
          status: itemStatusFromResult(r),
          ...(r.ok ? { entry: entryToProto(r.value) } : {}),
        })),
      };
    },
    async batchDeleteEntry(req, ctx) {
      requireRole(ctx.caller, "admin");
      checkBatchSize(req.ids.length, deps.maxBatchSize);
      const results = await applyBatch(
        req.ids,
        (id) => entryIdFromProto(id, "id"),
        (valid) => entries.batchDelete(valid),
      );
      deps.authorizer?.invalidate();
      return {
        results: results.map((r, i) => ({ status: itemStatusFromResult(r), id: req.ids[i] ?? "" })),
      };
    },
    async getEntry(req, ctx) {
      requireRole(ctx.caller, "admin");
      return entryToProto(await entries.get(entryIdFromProto(req.id, "id")));
    },
    async listEntries(req, ctx) {
      requireRole(ctx.caller, "admin");
      const page = await entries.list(listEntriesParamsFromProto(req));
      return { entries: page.items.map(entryToProto), nextPageToken: page.nextPageToken };
    },
    async *syncAuthorizedEntries(req, ctx) {
      const caller = requireRole(ctx.caller, "agent");
      const since = Math.max(0, req.sinceRevision);
      const options = { omitUnchangedIds: req.omitUnchangedIds };
      for await (const page of entries.syncAuthorized(caller.spiffeId, since, undefined, options)) {
        if (ctx.signal.aborted) return;
        yield {
          entries: page.entries.map(entryToProto),
          done: page.done,
          revision: page.revision,
          authorizedEntryIds: [...page.authorizedEntryIds],
          authorizedIdsOmitted: page.authorizedIdsOmitted,
        };
      }
    },
  };
}
