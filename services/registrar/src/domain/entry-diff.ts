// Pure comparison of the entries the registrar wants with the ones it owns at the CA.
import { POD_UID_SELECTOR_PREFIX, type CurrentEntry, type DesiredEntry } from "./types";

/** An owned entry to rewrite in place (same SPIFFE ID and pod, other fields changed). */
export interface EntryUpdate {
  readonly id: string;
  readonly desired: DesiredEntry;
}

/** What to do at the CA so the owned entries become exactly the desired ones. */
export interface EntryDiff {
  readonly create: readonly DesiredEntry[];
  readonly update: readonly EntryUpdate[];
  readonly delete: readonly CurrentEntry[];
}

/** The identity of an entry across restarts: its SPIFFE ID and its pod. */
export function entryKey(spiffeId: string, podUid: string): string {
  return `${spiffeId}|${podUid}`;
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** True when a current entry already is what `desired` asks for. */
export function entryMatches(current: CurrentEntry, desired: DesiredEntry): boolean {
  return (
    current.parentId === desired.parentId &&
    current.ttlSeconds === desired.ttlSeconds &&
    current.hint === desired.hint &&
    sameStrings(current.selectors, [POD_UID_SELECTOR_PREFIX + desired.podUid]) &&
    sameStrings([...current.dnsNames].sort(), desired.dnsNames)
  );
}

/**
 * Diffs `desired` against `current` (the registrar's own entries, all of them or those of some
 * pods): desired entries without a current one of the same {@link entryKey} are created;
 * current ones that differ are updated; the rest of `current` (deleted pods, removed templates,
 * duplicates, entries without a pod-UID selector) is deleted. Deterministic: of duplicates the
 * lowest id is kept.
 */
export function diffEntries(
  desired: readonly DesiredEntry[],
  current: readonly CurrentEntry[],
): EntryDiff {
  const byKey = new Map<string, CurrentEntry>();
  const remove: CurrentEntry[] = [];
  for (const entry of [...current].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    if (entry.podUid === undefined) {
      remove.push(entry);
      continue;
    }
    const key = entryKey(entry.spiffeId, entry.podUid);
    if (byKey.has(key)) remove.push(entry);
    else byKey.set(key, entry);
  }
  const create: DesiredEntry[] = [];
  const update: EntryUpdate[] = [];
  for (const want of desired) {
    const key = entryKey(want.spiffeId, want.podUid);
    const have = byKey.get(key);
    if (have === undefined) {
      create.push(want);
      continue;
    }
    byKey.delete(key);
    if (!entryMatches(have, want)) update.push({ id: have.id, desired: want });
  }
  remove.push(...byKey.values());
  return { create, update, delete: remove };
}
