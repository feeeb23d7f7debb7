import { MeshidError } from "@meshid/errors";
import { type meshidCaV1 } from "@meshid/proto";
import { formatSelector } from "@meshid/spiffe";
import type { Command } from "commander";
import type { ActionBinder, CommandEnv } from "../command-env";
import { formatTime, renderDetails, renderTable } from "../output";
import { agentJson, spiffeIdText, spiffeIdToProto } from "../proto-format";

const AGENT_COLUMNS = [
  { header: "spiffe id", value: (a: meshidCaV1.Agent) => spiffeIdText(a.id) },
  { header: "attestation", value: (a: meshidCaV1.Agent) => a.attestationType },
  { header: "svid serial", value: (a: meshidCaV1.Agent) => a.x509SvidSerial || "-" },
  { header: "svid expires", value: (a: meshidCaV1.Agent) => formatTime(a.x509SvidExpiresAt) },
  { header: "banned", value: (a: meshidCaV1.Agent) => (a.banned ? "yes" : "no") },
];

function agentDetails(a: meshidCaV1.Agent): string {
  return renderDetails([
    ["spiffe id", spiffeIdText(a.id)],
    ["attestation", a.attestationType],
    ["selectors", a.selectors.map(formatSelector)],
    ["svid serial", a.x509SvidSerial],
    ["svid expires", formatTime(a.x509SvidExpiresAt)],
    ["banned", a.banned ? "yes" : "no"],
    ["created", formatTime(a.createdAt)],
    ["updated", formatTime(a.updatedAt)],
  ]);
}

interface ListOptions {
  attestationType?: string;
  banned?: boolean;
}

/** Every agent matching the filters, all pages. */
async function listAgents(env: CommandEnv, o: ListOptions): Promise<meshidCaV1.Agent[]> {
  const ca = await env.ca();
  const agents: meshidCaV1.Agent[] = [];
  let pageToken = "";
  do {
    const page = await ca.conn.call(
      ca.agents.listAgents({
        pageSize: 500,
        pageToken,
        byAttestationType: o.attestationType ?? "",
        onlyBanned: o.banned === true,
      }),
    );
    agents.push(...page.agents);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return agents;
}

/** Registers `agent list|show|ban|delete`. */
export function registerAgentCommands(program: Command, bind: ActionBinder): void {
  const agent = program.command("agent").description("inspect and manage attested agents (nodes)");

  bind<ListOptions>(
    agent
      .command("list")
      .description("list attested agents")
      .option("--attestation-type <type>", "only agents attested this way (join_token, k8s_psat)")
      .option("--banned", "only banned agents"),
    async (env, _args, o) => {
      const agents = await listAgents(env, o);
      if (env.out.json) env.out.printJson({ agents: agents.map(agentJson) });
      else env.out.print(renderTable(AGENT_COLUMNS, agents));
    },
  );

  bind<Record<string, never>>(
    agent
      .command("show")
      .description("show one agent")
      .argument("<spiffe-id>", "the agent's SPIFFE ID"),
    async (env, args) => {
      const id = spiffeIdToProto(String(args[0]));
      const text = spiffeIdText(id);
      const found = (await listAgents(env, {})).find((a) => spiffeIdText(a.id) === text);
      if (found === undefined) {
        throw new MeshidError("not_found", "meshctl.agent.not_found", `agent ${text} not found`, {
          details: { grpcStatus: "NOT_FOUND" },
        });
      }
      if (env.out.json) env.out.printJson(agentJson(found));
      else env.out.print(agentDetails(found));
    },
  );

  bind<Record<string, never>>(
    agent
      .command("ban")
      .description("ban an agent: it can no longer renew or sign (delete it to let it re-attest)")
      .argument("<spiffe-id>", "the agent's SPIFFE ID"),
    async (env, args) => {
      const id = spiffeIdToProto(String(args[0]));
      const ca = await env.ca();
      const banned = await ca.conn.call(ca.agents.banAgent({ id }));
      if (env.out.json) env.out.printJson(agentJson(banned));
      else env.out.print(`banned agent ${spiffeIdText(banned.id)}`);
    },
  );

  bind<Record<string, never>>(
    agent
      .command("delete")
      .description("delete an agent; its node may attest again")
      .argument("<spiffe-id>", "the agent's SPIFFE ID"),
    async (env, args) => {
      const id = spiffeIdToProto(String(args[0]));
      const ca = await env.ca();
      await ca.conn.call(ca.agents.deleteAgent({ id }));
      if (env.out.json) env.out.printJson({ deleted: spiffeIdText(id) });
      else env.out.print(`deleted agent ${spiffeIdText(id)}`);
    },
  );
}
