import { formatDuration } from "@meshid/config";
import { meshidCaV1, meshidTypesV1 } from "@meshid/proto";
import { formatSelector } from "@meshid/spiffe";
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  batchExitCode,
  itemOk,
  itemStatusJson,
  itemStatusText,
  type BatchItem,
} from "../batch-results";
import type { ActionBinder, CommandEnv } from "../command-env";
import { entryTtlSeconds, readEntryFile } from "../entry-file";
import { usageError, type ExitCodeValue } from "../exit-codes";
import { renderDetails, renderTable, formatTime } from "../output";
import { entryJson, selectorsFromText, spiffeIdText, spiffeIdToProto } from "../proto-format";
import { collect, parsePositiveInt } from "./option-parsers";

/** Most entries `entry list` asks for per page. */
const LIST_PAGE_SIZE = 500;

interface EntryFieldOptions {
  spiffeId?: string;
  parentId?: string;
  selector?: string[];
  ttl?: string;
  dns?: string[];
  admin?: boolean;
  hint?: string;
  owner?: string;
}

interface CreateOptions extends EntryFieldOptions {
  id?: string;
  file?: string;
}

interface ListOptions {
  spiffeId?: string;
  parentId?: string;
  selector: string[];
  match: "exact" | "subset";
  owner?: string;
  limit?: number;
}

/** Seconds of a `--ttl` flag (whole seconds, > 0), or undefined when absent. */
function ttlSeconds(ttl: string | undefined): number | undefined {
  return ttl === undefined ? undefined : entryTtlSeconds(ttl);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An entry id argument: the CA's ids are UUIDs, so anything else is a usage error (exit 2)
 * rather than a round trip that the CA refuses.
 */
function entryId(value: unknown): string {
  const id = String(value);
  if (!UUID.test(id)) throw usageError(`"${id}" is not an entry id (a UUID)`);
  return id.toLowerCase();
}

/** Commander parser of `--id`. */
function entryIdOption(value: string): string {
  if (!UUID.test(value)) throw new InvalidArgumentError("must be a UUID");
  return value.toLowerCase();
}

function ttlText(seconds: number): string {
  return seconds === 0 ? "default" : formatDuration(seconds);
}

const ENTRY_COLUMNS = [
  { header: "id", value: (e: meshidTypesV1.RegistrationEntry) => e.id },
  { header: "spiffe id", value: (e: meshidTypesV1.RegistrationEntry) => spiffeIdText(e.spiffeId) },
  { header: "parent id", value: (e: meshidTypesV1.RegistrationEntry) => spiffeIdText(e.parentId) },
  {
    header: "selectors",
    value: (e: meshidTypesV1.RegistrationEntry) => e.selectors.map(formatSelector).join(","),
  },
  { header: "ttl", value: (e: meshidTypesV1.RegistrationEntry) => ttlText(e.x509SvidTtlSeconds) },
  {
    header: "dns names",
    value: (e: meshidTypesV1.RegistrationEntry) => e.dnsNames.join(",") || "-",
  },
];

/** Human details of one entry (`entry show`). */
function entryDetails(e: meshidTypesV1.RegistrationEntry): string {
  return renderDetails([
    ["id", e.id],
    ["spiffe id", spiffeIdText(e.spiffeId)],
    ["parent id", spiffeIdText(e.parentId)],
    ["selectors", e.selectors.map(formatSelector)],
    ["ttl", ttlText(e.x509SvidTtlSeconds)],
    ["dns names", e.dnsNames],
    ["admin", String(e.admin)],
    ["hint", e.hint],
    ["owner", e.owner],
    ["revision", String(e.revision)],
    ["created", formatTime(e.createdAt)],
    ["updated", formatTime(e.updatedAt)],
  ]);
}

/** Prints the per-item results of a create/update batch and returns the exit code. */
function printEntryResults(
  env: CommandEnv,
  verb: string,
  labels: readonly string[],
  results: readonly meshidCaV1.EntryResult[],
): ExitCodeValue {
  const items: BatchItem[] = results.map((r, i) => ({
    label: r.entry?.id || labels[i] || "",
    status: r.status,
  }));
  if (env.out.json) {
    env.out.printJson({
      results: results.map((r) => ({
        status: itemStatusJson(r.status),
        entry: r.entry === undefined || !itemOk(r.status) ? null : entryJson(r.entry),
      })),
    });
  } else {
    for (const [i, r] of results.entries()) {
      if (itemOk(r.status) && r.entry !== undefined) {
        env.out.print(`${verb} entry ${r.entry.id} (${spiffeIdText(r.entry.spiffeId)})`);
      } else {
        env.io.stderr.write(`error: ${labels[i] ?? ""}: ${itemStatusText(r.status)}\n`);
      }
    }
  }
  return batchExitCode(items);
}

/** Adds the options that set entry fields (create and update). */
function addEntryFieldOptions(cmd: Command, forUpdate: boolean): Command {
  const replaces = forUpdate ? " (replaces all; repeat the flag)" : " (repeat the flag)";
  return cmd
    .option("--spiffe-id <id>", "SPIFFE ID the workloads get, e.g. spiffe://example.org/ns/a/sa/b")
    .option("--parent-id <id>", "SPIFFE ID of the parent (an agent, or another entry)")
    .option(
      "-s, --selector <type:value>",
      `selector, e.g. k8s:ns:default or unix:uid:1000${replaces}`,
      collect,
    )
    .option("--ttl <duration>", "X509-SVID lifetime, e.g. 1h or 90m (default: the mesh svidTTL)")
    .option("--dns <name>", `DNS name to put in the SVID${replaces}`, collect)
    .option("--hint <text>", "hint passed to workloads that get several SVIDs")
    .option("--owner <name>", "owner tag (reconcilers only touch their own entries)");
}

/** Registers `entry create|list|show|update|delete`. */
export function registerEntryCommands(program: Command, bind: ActionBinder): void {
  const entry = program
    .command("entry")
    .description("manage registration entries (which workloads get which SPIFFE ID)");

  bind<CreateOptions>(
    addEntryFieldOptions(
      entry
        .command("create")
        .description("create a registration entry (or many from a YAML/JSON file)")
        .option("--id <uuid>", "entry id to use (default: assigned by the CA)", entryIdOption)
        .option(
          "-f, --file <path>",
          "create every entry of a YAML/JSON file in one batch (instead of the flags)",
        ),
      false,
    )
      .option("--admin", "SVIDs of this entry may call the CA's admin APIs")
      .addHelpText(
        "after",
        "\nExample:\n  meshctl entry create --spiffe-id spiffe://example.org/ns/default/sa/web \\\n" +
          "    --parent-id spiffe://example.org/spire/agent/join_token/abc \\\n" +
          "    --selector k8s:ns:default --selector k8s:sa:web --ttl 1h --dns web.default.svc\n" +
          "  meshctl entry create --file entries.yaml   # [{ spiffeId, parentId, selectors, ttl, dnsNames }]",
      ),
    async (env, _args, o) => {
      if (o.file !== undefined) {
        const flags = [
          "id",
          "spiffeId",
          "parentId",
          "selector",
          "ttl",
          "dns",
          "admin",
          "hint",
          "owner",
        ];
        if (flags.some((f) => (o as Record<string, unknown>)[f] !== undefined)) {
          throw usageError("--file cannot be combined with entry field flags");
        }
        const entries = readEntryFile(o.file);
        const ca = await env.ca();
        const res = await ca.conn.call(ca.entries.batchCreateEntry({ entries }));
        return printEntryResults(
          env,
          "created",
          entries.map((e) => spiffeIdText(e.spiffeId)),
          res.results,
        );
      }
      if (o.spiffeId === undefined) throw usageError("--spiffe-id is required");
      if (o.parentId === undefined) throw usageError("--parent-id is required");
      if (o.selector === undefined || o.selector.length === 0) {
        throw usageError("at least one --selector is required");
      }
      const request = meshidTypesV1.RegistrationEntry.fromPartial({
        id: o.id ?? "",
        spiffeId: spiffeIdToProto(o.spiffeId),
        parentId: spiffeIdToProto(o.parentId),
        selectors: selectorsFromText(o.selector),
        x509SvidTtlSeconds: ttlSeconds(o.ttl) ?? 0,
        dnsNames: o.dns ?? [],
        admin: o.admin === true,
        hint: o.hint ?? "",
        owner: o.owner ?? "",
      });
      const ca = await env.ca();
      const res = await ca.conn.call(ca.entries.batchCreateEntry({ entries: [request] }));
      return printEntryResults(env, "created", [o.spiffeId], res.results);
    },
  );

  bind<ListOptions>(
    entry
      .command("list")
      .description("list registration entries (filters combine with AND)")
      .option("--spiffe-id <id>", "only entries with this SPIFFE ID")
      .option("--parent-id <id>", "only entries with this parent")
      .option("-s, --selector <type:value>", "only entries matching these selectors", collect, [])
      .addOption(
        new Option("--match <how>", "how --selector compares: exact set or subset")
          .choices(["exact", "subset"])
          .default("exact"),
      )
      .option("--owner <name>", "only entries with this owner tag")
      .option("--limit <n>", "stop after n entries", parsePositiveInt),
    async (env, _args, o) => {
      const base: meshidCaV1.ListEntriesRequest = meshidCaV1.ListEntriesRequest.fromPartial({
        pageSize: Math.min(o.limit ?? LIST_PAGE_SIZE, LIST_PAGE_SIZE),
        ...(o.spiffeId === undefined ? {} : { bySpiffeId: spiffeIdToProto(o.spiffeId) }),
        ...(o.parentId === undefined ? {} : { byParentId: spiffeIdToProto(o.parentId) }),
        bySelectors: selectorsFromText(o.selector),
        selectorMatch:
          o.selector.length === 0
            ? meshidCaV1.SelectorMatch.SELECTOR_MATCH_UNSPECIFIED
            : o.match === "subset"
              ? meshidCaV1.SelectorMatch.SELECTOR_MATCH_SUBSET
              : meshidCaV1.SelectorMatch.SELECTOR_MATCH_EXACT,
        byOwner: o.owner ?? "",
      });
      const ca = await env.ca();
      const entries: meshidTypesV1.RegistrationEntry[] = [];
      let pageToken = "";
      do {
        const page = await ca.conn.call(ca.entries.listEntries({ ...base, pageToken }));
        entries.push(...page.entries);
        pageToken = page.nextPageToken;
      } while (pageToken !== "" && (o.limit === undefined || entries.length < o.limit));
      const shown = o.limit === undefined ? entries : entries.slice(0, o.limit);
      if (env.out.json) env.out.printJson({ entries: shown.map(entryJson) });
      else env.out.print(renderTable(ENTRY_COLUMNS, shown));
    },
  );

  bind<Record<string, never>>(
    entry.command("show").description("show one registration entry").argument("<id>", "entry id"),
    async (env, args) => {
      const id = entryId(args[0]);
      const ca = await env.ca();
      const e = await ca.conn.call(ca.entries.getEntry({ id }));
      if (env.out.json) env.out.printJson(entryJson(e));
      else env.out.print(entryDetails(e));
    },
  );

  bind<EntryFieldOptions>(
    addEntryFieldOptions(
      entry
        .command("update")
        .description("change fields of a registration entry (unset flags keep their value)")
        .argument("<id>", "entry id"),
      true,
    )
      .option("--admin", "SVIDs of this entry may call the CA's admin APIs")
      .option("--no-admin", "SVIDs of this entry may not call the admin APIs"),
    async (env, args, o) => {
      const id = entryId(args[0]);
      // Validate everything before the first call so bad input changes nothing.
      const spiffeId = o.spiffeId === undefined ? undefined : spiffeIdToProto(o.spiffeId);
      const parentId = o.parentId === undefined ? undefined : spiffeIdToProto(o.parentId);
      const selectors = o.selector === undefined ? undefined : selectorsFromText(o.selector);
      const ttl = ttlSeconds(o.ttl);
      const ca = await env.ca();
      const current = await ca.conn.call(ca.entries.getEntry({ id }));
      const updated: meshidTypesV1.RegistrationEntry = {
        ...current,
        ...(spiffeId === undefined ? {} : { spiffeId }),
        ...(parentId === undefined ? {} : { parentId }),
        ...(selectors === undefined ? {} : { selectors }),
        ...(ttl === undefined ? {} : { x509SvidTtlSeconds: ttl }),
        ...(o.dns === undefined ? {} : { dnsNames: o.dns }),
        ...(o.admin === undefined ? {} : { admin: o.admin }),
        ...(o.hint === undefined ? {} : { hint: o.hint }),
        ...(o.owner === undefined ? {} : { owner: o.owner }),
      };
      const res = await ca.conn.call(ca.entries.batchUpdateEntry({ entries: [updated] }));
      return printEntryResults(env, "updated", [id], res.results);
    },
  );

  bind<Record<string, never>>(
    entry
      .command("delete")
      .description("delete registration entries")
      .argument("<id...>", "entry ids"),
    async (env, args) => {
      const ids = (args[0] as unknown[]).map(entryId);
      const ca = await env.ca();
      const res = await ca.conn.call(ca.entries.batchDeleteEntry({ ids }));
      const items = res.results.map((r, i) => ({ label: r.id || ids[i] || "", status: r.status }));
      if (env.out.json) {
        env.out.printJson({
          results: items.map((item) => ({ id: item.label, status: itemStatusJson(item.status) })),
        });
      } else {
        for (const item of items) {
          if (itemOk(item.status)) env.out.print(`deleted entry ${item.label}`);
          else env.io.stderr.write(`error: ${item.label}: ${itemStatusText(item.status)}\n`);
        }
      }
      return batchExitCode(items);
    },
  );
}
