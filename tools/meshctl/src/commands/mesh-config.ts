import { parseDuration } from "@meshid/config";
import { meshidProxyconfigV1 } from "@meshid/proto";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { ActionBinder, CommandEnv } from "../command-env";
import { usageError } from "../exit-codes";
import { formatTime, renderDetails } from "../output";

/** CA key types MeshConfig accepts. */
export const CA_KEY_TYPES = ["ec-p256", "ec-p384", "rsa-2048", "rsa-4096"] as const;

/** mTLS modes by their command-line names. */
const MTLS_MODES = {
  off: meshidProxyconfigV1.MtlsMode.MTLS_MODE_OFF,
  permissive: meshidProxyconfigV1.MtlsMode.MTLS_MODE_PERMISSIVE,
  strict: meshidProxyconfigV1.MtlsMode.MTLS_MODE_STRICT,
} as const;

type MtlsModeName = keyof typeof MTLS_MODES;

function mtlsModeName(mode: meshidProxyconfigV1.MtlsMode): string {
  const found = (Object.entries(MTLS_MODES) as [MtlsModeName, meshidProxyconfigV1.MtlsMode][]).find(
    ([, v]) => v === mode,
  );
  return found?.[0] ?? "unspecified";
}

/** The `--json` shape of a MeshConfig. */
export function configJson(c: meshidProxyconfigV1.MeshConfig | undefined): Record<string, unknown> {
  return {
    mtlsMode: c === undefined ? "unspecified" : mtlsModeName(c.mtlsMode),
    caTTL: c?.caTtl ?? "",
    svidTTL: c?.svidTtl ?? "",
    caKeyType: c?.caKeyType ?? "",
    generation: c?.generation ?? 0,
    updatedAt: c?.updatedAt?.toISOString() ?? null,
  };
}

function printConfig(
  env: CommandEnv,
  c: meshidProxyconfigV1.MeshConfig | undefined,
  warnings: readonly string[],
): void {
  for (const w of warnings) env.out.warn(w);
  if (env.out.json) {
    env.out.printJson({ config: configJson(c), warnings });
    return;
  }
  env.out.print(
    renderDetails([
      ["mtls mode", c === undefined ? "unspecified" : mtlsModeName(c.mtlsMode)],
      ["ca ttl", c?.caTtl ?? ""],
      ["svid ttl", c?.svidTtl ?? ""],
      ["ca key type", c?.caKeyType ?? ""],
      ["generation", String(c?.generation ?? 0)],
      ["updated", formatTime(c?.updatedAt)],
    ]),
  );
}

/** Checks a duration flag's syntax (the server checks the bounds). */
function duration(flag: string): (value: string) => string {
  return (value) => {
    try {
      parseDuration(value);
    } catch (err) {
      throw new InvalidArgumentError(`${(err as Error).message} (${flag})`);
    }
    return value;
  };
}

function parseGeneration(value: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value)) {
    throw new InvalidArgumentError("must be a whole number");
  }
  return Number(value);
}

/** Options of `mesh-config set` as commander parsed them. */
export interface SetOptions {
  mtlsMode?: MtlsModeName;
  caTtl?: string;
  svidTtl?: string;
  caKeyType?: string;
  rotateNow?: boolean;
  expectedGeneration?: number;
}

/**
 * Builds the UpdateMeshConfigRequest of `mesh-config set`: only the given fields are set, so
 * the server keeps the others.
 * @throws MeshidError `meshctl.usage` when nothing would change.
 */
export function updateRequestFromOptions(
  o: SetOptions,
): meshidProxyconfigV1.UpdateMeshConfigRequest {
  const request: meshidProxyconfigV1.UpdateMeshConfigRequest = {
    rotateNow: o.rotateNow === true,
    ...(o.mtlsMode === undefined ? {} : { mtlsMode: MTLS_MODES[o.mtlsMode] }),
    ...(o.caTtl === undefined ? {} : { caTtl: o.caTtl }),
    ...(o.svidTtl === undefined ? {} : { svidTtl: o.svidTtl }),
    ...(o.caKeyType === undefined ? {} : { caKeyType: o.caKeyType }),
    ...(o.expectedGeneration === undefined ? {} : { expectedGeneration: o.expectedGeneration }),
  };
  const changes = Object.keys(request).filter(
    (k) => k !== "rotateNow" && k !== "expectedGeneration",
  );
  if (changes.length === 0 && !request.rotateNow) {
    throw usageError(
      "nothing to change: give --mtls-mode, --ca-ttl, --svid-ttl, --ca-key-type or --rotate-now",
    );
  }
  return request;
}

/** Registers `mesh-config get|set`. */
export function registerMeshConfigCommands(program: Command, bind: ActionBinder): void {
  const meshConfig = program
    .command("mesh-config")
    .description("the mesh-wide mTLS settings (MeshConfig, served by proxy-config)");

  bind<Record<string, never>>(
    meshConfig.command("get").description("show the mesh configuration"),
    async (env) => {
      const { conn, meshConfig: client } = await env.meshConfig();
      const res = await conn.call(client.getMeshConfig({}));
      printConfig(env, res.config, []);
    },
  );

  bind<SetOptions>(
    meshConfig
      .command("set")
      .description("change mesh settings (unset flags keep their value); prints server warnings")
      .addOption(
        new Option("--mtls-mode <mode>", "mesh mTLS mode").choices(Object.keys(MTLS_MODES)),
      )
      .option(
        "--ca-ttl <duration>",
        "lifetime of CA authorities, e.g. 720h (min 24h)",
        duration("--ca-ttl"),
      )
      .option(
        "--svid-ttl <duration>",
        "lifetime of workload SVIDs, e.g. 1h",
        duration("--svid-ttl"),
      )
      .addOption(
        new Option("--ca-key-type <type>", "key type of new authorities").choices(CA_KEY_TYPES),
      )
      .option("--rotate-now", "prepare and activate a new CA authority at once")
      .option(
        "--expected-generation <n>",
        "fail (ABORTED) when the config changed since this generation",
        parseGeneration,
      )
      .addHelpText(
        "after",
        "\nExample:\n  meshctl mesh-config set --mtls-mode strict --svid-ttl 1h --ca-ttl 720h --rotate-now",
      ),
    async (env, _args, o) => {
      const request = updateRequestFromOptions(o);
      const { conn, meshConfig: client } = await env.meshConfig();
      const res = await conn.call(client.updateMeshConfig(request));
      printConfig(env, res.config, res.warnings);
    },
  );
}
