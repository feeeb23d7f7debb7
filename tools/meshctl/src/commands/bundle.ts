import { X509Certificate } from "node:crypto";
import { type Command, Option } from "commander";
import type { ActionBinder } from "../command-env";

interface ShowOptions {
  format: "pem" | "jwks";
}

/** Registers `bundle show`. */
export function registerBundleCommands(program: Command, bind: ActionBinder): void {
  const bundle = program.command("bundle").description("the trust bundle of the trust domain");
  bind<ShowOptions>(
    bundle
      .command("show")
      .description("print the trust bundle (PEM certificates, or SPIFFE JWKS)")
      .addOption(
        new Option("--format <format>", "output format").choices(["pem", "jwks"]).default("pem"),
      )
      .addHelpText("after", "\nExample:\n  meshctl bundle show --format pem > bundle.pem"),
    async (env, _args, o) => {
      const ca = await env.ca();
      const res = await ca.conn.call(ca.bundle.getBundle({}));
      const b = res.bundle;
      if (env.out.json) {
        env.out.printJson({
          trustDomain: b?.trustDomain ?? "",
          sequenceNumber: b?.sequenceNumber ?? 0,
          refreshHintSeconds: b?.refreshHintSeconds ?? 0,
          x509Authorities: (b?.x509Authorities ?? []).map((a) => {
            const cert = new X509Certificate(Buffer.from(a.asn1));
            return {
              subject: cert.subject,
              notAfter: new Date(cert.validTo).toISOString(),
              tainted: a.tainted,
            };
          }),
          ...(o.format === "jwks"
            ? { jwks: JSON.parse(res.spiffeJwks) as unknown }
            : { pem: res.pem }),
        });
        return;
      }
      env.out.print(o.format === "jwks" ? res.spiffeJwks : res.pem);
    },
  );
}
