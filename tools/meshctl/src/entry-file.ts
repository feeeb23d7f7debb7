import { readFileSync } from "node:fs";
import { parseDuration } from "@meshid/config";
import { isMeshidError } from "@meshid/errors";
import { meshidTypesV1 } from "@meshid/proto";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { usageError } from "./exit-codes";
import { selectorsFromText, spiffeIdToProto } from "./proto-format";

/** Most entries one `entry create --file` sends (the CA's default batch limit). */
export const MAX_ENTRIES_PER_FILE = 500;

const entrySchema = z
  .object({
    id: z.string().optional(),
    spiffeId: z.string(),
    parentId: z.string(),
    selectors: z.array(z.string()).min(1),
    ttl: z.string().optional(),
    dnsNames: z.array(z.string()).optional(),
    admin: z.boolean().optional(),
    hint: z.string().optional(),
    owner: z.string().optional(),
  })
  .strict();

const fileSchema = z.union([
  z.array(entrySchema),
  z.object({ entries: z.array(entrySchema) }).strict(),
]);

/**
 * Seconds of an entry TTL (`1h`, `90m`): whole seconds from 1 s to 2^31-1 s.
 * @throws MeshidError `meshctl.usage` otherwise (or `config.duration.invalid` for bad syntax).
 */
export function entryTtlSeconds(ttl: string): number {
  const seconds = parseDuration(ttl);
  if (seconds < 1 || !Number.isInteger(seconds) || seconds > 2_147_483_647) {
    throw usageError(`TTL must be a whole number of seconds from 1s (got "${ttl}")`);
  }
  return seconds;
}

/**
 * Parses entries for `entry create --file`: YAML or JSON, a list of entries or
 * `{ entries: [...] }`, each `{ spiffeId, parentId, selectors, ttl?, dnsNames?, admin?, hint?,
 * owner?, id? }`. Every problem of every entry is reported at once, before anything is sent.
 *
 * @throws MeshidError `meshctl.usage` naming each bad field (`entries[2].selectors[0]: …`).
 */
export function parseEntryFile(text: string, source: string): meshidTypesV1.RegistrationEntry[] {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw usageError(`${source} is not valid YAML or JSON: ${(err as Error).message}`, err);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (i) => `  ${i.path.length === 0 ? "(root)" : i.path.join(".")}: ${i.message}`,
    );
    throw usageError(
      `${source} must be a list of entries or { entries: [...] }:\n${problems.join("\n")}`,
    );
  }
  const items = Array.isArray(parsed.data) ? parsed.data : parsed.data.entries;
  if (items.length === 0) throw usageError(`${source} holds no entries`);
  if (items.length > MAX_ENTRIES_PER_FILE) {
    throw usageError(`${source} holds ${items.length} entries; at most ${MAX_ENTRIES_PER_FILE}`);
  }
  const problems: string[] = [];
  const entries = items.map((item, i) => {
    const at = (field: string, f: () => unknown): unknown => {
      try {
        return f();
      } catch (err) {
        if (!isMeshidError(err)) throw err;
        problems.push(`  entries[${i}].${field}: ${err.message}`);
        return undefined;
      }
    };
    return meshidTypesV1.RegistrationEntry.fromPartial({
      id: item.id ?? "",
      spiffeId: at("spiffeId", () => spiffeIdToProto(item.spiffeId)) as meshidTypesV1.SpiffeId,
      parentId: at("parentId", () => spiffeIdToProto(item.parentId)) as meshidTypesV1.SpiffeId,
      selectors: (at("selectors", () => selectorsFromText(item.selectors)) ??
        []) as meshidTypesV1.Selector[],
      x509SvidTtlSeconds:
        item.ttl === undefined ? 0 : ((at("ttl", () => entryTtlSeconds(item.ttl!)) ?? 0) as number),
      dnsNames: item.dnsNames ?? [],
      admin: item.admin ?? false,
      hint: item.hint ?? "",
      owner: item.owner ?? "",
    });
  });
  if (problems.length > 0)
    throw usageError(`${source} has invalid entries:\n${problems.join("\n")}`);
  return entries;
}

/** Reads and parses an entry file (see {@link parseEntryFile}). */
export function readEntryFile(path: string): meshidTypesV1.RegistrationEntry[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw usageError(`cannot read ${path}: ${(err as Error).message}`, err);
  }
  return parseEntryFile(text, path);
}
