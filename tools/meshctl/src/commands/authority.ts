import { MeshidError } from "@meshid/errors";
import type { meshidTypesV1 } from "@meshid/proto";
import type { Command } from "commander";
import type { ActionBinder, CommandEnv } from "../command-env";
import { usageError } from "../exit-codes";
import { formatTime, renderTable } from "../output";
import { authorityJson, authorityStateName } from "../proto-format";

const AUTHORITY_COLUMNS = [
  { header: "authority id", value: (a: meshidTypesV1.Authority) => a.authorityId },
  { header: "state", value: (a: meshidTypesV1.Authority) => authorityStateName(a.state) },
  { header: "key type", value: (a: meshidTypesV1.Authority) => a.keyType || "-" },
  { header: "not before", value: (a: meshidTypesV1.Authority) => formatTime(a.notBefore) },
  { header: "expires", value: (a: meshidTypesV1.Authority) => formatTime(a.expiresAt) },
  { header: "tainted", value: (a: meshidTypesV1.Authority) => (a.tainted ? "yes" : "no") },
];

/**
 * An authority id argument: the lowercase hex Subject Key Identifier of the CA certificate (as
 * `authority show` prints it).
 * @throws MeshidError `meshctl.usage` otherwise.
 */
function authorityIdArg(value: unknown): string {
  const id = String(value);
  if (!/^[0-9a-f]{2,128}$/i.test(id)) {
    throw usageError(
      `"${id}" is not an authority id (hex, as \`meshctl authority show\` prints it)`,
    );
  }
  return id.toLowerCase();
}

/** Registers `authority show|prepare|activate|taint|revoke`. */
export function registerAuthorityCommands(program: Command, bind: ActionBinder): void {
  const authority = program
    .command("authority")
    .description("the CA's X.509 signing authorities and forced rotation");

  const print = (env: CommandEnv, verb: string, a: meshidTypesV1.Authority): void => {
    if (env.out.json) env.out.printJson(authorityJson(a));
    else env.out.print(`${verb} authority ${a.authorityId} (${authorityStateName(a.state)})`);
  };

  bind<Record<string, never>>(
    authority.command("show").description("show the active, prepared and old authorities"),
    async (env) => {
      const ca = await env.ca();
      const s = await ca.conn.call(ca.authorities.getX509AuthorityState({}));
      const all = [
        ...(s.active === undefined ? [] : [s.active]),
        ...(s.prepared === undefined ? [] : [s.prepared]),
        ...s.old,
      ];
      if (env.out.json) {
        env.out.printJson({
          active: s.active === undefined ? null : authorityJson(s.active),
          prepared: s.prepared === undefined ? null : authorityJson(s.prepared),
          old: s.old.map(authorityJson),
        });
      } else {
        env.out.print(renderTable(AUTHORITY_COLUMNS, all));
      }
    },
  );

  bind<Record<string, never>>(
    authority
      .command("prepare")
      .description("prepare the next authority now (published in the bundle, not yet signing)"),
    async (env) => {
      const ca = await env.ca();
      print(env, "prepared", await ca.conn.call(ca.authorities.prepareX509Authority({})));
    },
  );

  bind<Record<string, never>>(
    authority
      .command("activate")
      .description("activate the prepared authority; the active one becomes old")
      .argument("[authority-id]", "the prepared authority (default: the current prepared one)"),
    async (env, args) => {
      const ca = await env.ca();
      let id = args[0] === undefined ? undefined : authorityIdArg(args[0]);
      if (id === undefined) {
        const state = await ca.conn.call(ca.authorities.getX509AuthorityState({}));
        if (state.prepared === undefined) {
          throw new MeshidError(
            "failed_precondition",
            "meshctl.authority.none_prepared",
            "no prepared authority to activate (run `meshctl authority prepare` first)",
            { details: { grpcStatus: "FAILED_PRECONDITION" } },
          );
        }
        id = state.prepared.authorityId;
      }
      print(
        env,
        "activated",
        await ca.conn.call(ca.authorities.activateX509Authority({ authorityId: id })),
      );
    },
  );

  bind<Record<string, never>>(
    authority
      .command("taint")
      .description("taint an old authority: agents re-mint everything it signed")
      .argument("<authority-id>", "the old authority's id (SKI, hex)"),
    async (env, args) => {
      const ca = await env.ca();
      const authorityId = authorityIdArg(args[0]);
      print(env, "tainted", await ca.conn.call(ca.authorities.taintX509Authority({ authorityId })));
    },
  );

  bind<Record<string, never>>(
    authority
      .command("revoke")
      .description("drop a tainted old authority from the bundle")
      .argument("<authority-id>", "the tainted authority's id (SKI, hex)"),
    async (env, args) => {
      const ca = await env.ca();
      const authorityId = authorityIdArg(args[0]);
      print(
        env,
        "revoked",
        await ca.conn.call(ca.authorities.revokeX509Authority({ authorityId })),
      );
    },
  );
}
