// Each service's own configuration schema, imported from its sources (the test depends on
// the services as devDependencies), so a rendered config is checked by the very code that
// reads it: unknown keys, bad values and cross-field rules fail here as they would at start-up.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentConfigSchema } from "@meshid/agent/src/config";
import { bundleNotifierConfigSchema } from "@meshid/bundle-notifier/src/config";
import { caConfigSchema } from "@meshid/ca/src/config";
import { ConfigError, type ConfigProblem, loadConfig } from "@meshid/config";
import { controlPlaneConfigSchema } from "@meshid/control-plane/src/config";
import { proxyConfigConfigSchema } from "@meshid/proxy-config/src/config";
import { registrarConfigSchema } from "@meshid/registrar/src/config";
import type { z } from "zod";

/** The services a chart runs with a `--config` file. */
export const SERVICE_SCHEMAS: Readonly<Record<string, z.ZodType>> = Object.freeze({
  ca: caConfigSchema,
  agent: agentConfigSchema,
  registrar: registrarConfigSchema,
  "bundle-notifier": bundleNotifierConfigSchema,
  "proxy-config": proxyConfigConfigSchema,
  // Its own file only (which services it hosts, ops, logLevel); each hosted service's file is
  // loaded with that service's schema (rendered-configs.ts).
  "control-plane": controlPlaneConfigSchema,
});

/** Outcome of {@link loadServiceConfig}. */
export type LoadedServiceConfig =
  | { readonly ok: true; readonly config: Record<string, unknown> }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/**
 * Loads a rendered configuration file plus environment exactly as the service does
 * (`loadConfig` from @meshid/config with the service's schema: env > file > defaults).
 * @throws Error for a service without a known schema.
 */
export function loadServiceConfig(
  service: string,
  fileText: string,
  env: Readonly<Record<string, string>>,
): LoadedServiceConfig {
  const schema = SERVICE_SCHEMAS[service];
  if (schema === undefined) throw new Error(`no configuration schema known for ${service}`);
  const dir = mkdtempSync(join(tmpdir(), "meshid-deploy-"));
  try {
    const file = join(dir, `${service}.yaml`);
    writeFileSync(file, fileText, { mode: 0o600 });
    const config = loadConfig({ service, schema, env, file }) as Record<string, unknown>;
    return { ok: true, config };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, problems: err.problems };
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
