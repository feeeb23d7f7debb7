import { parseDuration } from "@meshid/config";
import type { Command } from "commander";
import type { ActionBinder } from "../command-env";
import { usageError } from "../exit-codes";
import { formatTime } from "../output";

/** Default lifetime of a join token made by `token create`. */
export const DEFAULT_TOKEN_TTL = "10m";

interface CreateOptions {
  ttl: string;
  token?: string;
}

/** Registers `token create`. */
export function registerTokenCommands(program: Command, bind: ActionBinder): void {
  const token = program.command("token").description("join tokens for node attestation");
  bind<CreateOptions>(
    token
      .command("create")
      .description("create a single-use join token (prints the token)")
      .option("--ttl <duration>", "how long the token is valid", DEFAULT_TOKEN_TTL)
      .option("--token <value>", "the token value (default: 128 random bits)")
      .addHelpText(
        "after",
        "\nExample:\n  meshid-agent --join-token $(meshctl token create --ttl 5m)",
      ),
    async (env, _args, o) => {
      const seconds = parseDuration(o.ttl);
      if (seconds < 1 || !Number.isInteger(seconds) || seconds > 2_147_483_647) {
        throw usageError(`--ttl must be a whole number of seconds, at least 1s (got "${o.ttl}")`);
      }
      const ca = await env.ca();
      const created = await ca.conn.call(
        ca.agents.createJoinToken({ ttlSeconds: seconds, token: o.token ?? "" }),
      );
      if (env.out.json) {
        env.out.printJson({
          token: created.token,
          expiresAt: created.expiresAt?.toISOString() ?? null,
        });
      } else {
        env.out.print(created.token);
        env.out.note(`expires ${formatTime(created.expiresAt)}`);
      }
    },
  );
}
