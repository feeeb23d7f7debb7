import type { Command } from "commander";
import type { ActionBinder } from "../command-env";
import { ExitCode, usageError } from "../exit-codes";
import { renderTable } from "../output";
import { collect } from "./option-parsers";

/** Result of probing one service's ops endpoints. */
export interface ServiceStatus {
  readonly service: string;
  readonly url: string;
  /** True when `/readyz` answered 200. */
  readonly ready: boolean;
  /** True when `/healthz` answered 200. */
  readonly healthy: boolean;
  /** What went wrong, or "ok". */
  readonly details: string;
}

/** GETs `url` and returns the status code, or the error message. */
async function probe(url: string, timeoutMs: number): Promise<{ status?: number; error?: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return { status: res.status };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { error: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

/** Probes `/healthz` and `/readyz` under `baseUrl`. */
export async function serviceStatus(
  service: string,
  baseUrl: string,
  timeoutMs: number,
): Promise<ServiceStatus> {
  const base = baseUrl.replace(/\/+$/, "");
  if (!/^https?:\/\/[^/\s]+/.test(base)) {
    return {
      service,
      url: base === "" ? "-" : base,
      healthy: false,
      ready: false,
      details: base === "" ? "no ops URL configured" : "not an http(s) URL",
    };
  }
  const [health, ready] = await Promise.all([
    probe(`${base}/healthz`, timeoutMs),
    probe(`${base}/readyz`, timeoutMs),
  ]);
  const problems: string[] = [];
  if (health.error !== undefined) problems.push(`unreachable: ${health.error}`);
  else if (health.status !== 200) problems.push(`/healthz ${health.status}`);
  if (ready.error === undefined && ready.status !== 200) problems.push(`/readyz ${ready.status}`);
  else if (ready.error !== undefined && health.error === undefined) {
    problems.push(`/readyz ${ready.error}`);
  }
  return {
    service,
    url: base,
    healthy: health.status === 200,
    ready: ready.status === 200,
    details: problems.length === 0 ? "ok" : problems.join(", "),
  };
}

interface StatusOptions {
  service: string[];
}

/** Parses `name=url` of `--service`. */
function parseServiceFlag(text: string): [string, string] {
  const eq = text.indexOf("=");
  const name = text.slice(0, eq);
  const url = text.slice(eq + 1);
  if (eq <= 0 || !/^https?:\/\//.test(url)) {
    throw usageError(`--service "${text}": expected name=http://host:port`);
  }
  return [name, url];
}

/** Registers `status`. */
export function registerStatusCommand(program: Command, bind: ActionBinder): void {
  bind<StatusOptions>(
    program
      .command("status")
      .description(
        "health of every service (GET /healthz and /readyz of each ops URL); exit 1 when one is not ready",
      )
      .option(
        "--service <name=url>",
        "probe this service instead of the context's services (repeat the flag)",
        collect,
        [],
      )
      .addHelpText("after", "\nExample:\n  meshctl status --service ca=http://127.0.0.1:9090"),
    async (env, _args, o) => {
      const services: [string, string][] =
        o.service.length > 0
          ? o.service.map(parseServiceFlag)
          : Object.entries(env.context().services);
      if (services.length === 0) {
        throw usageError(
          "no services to check: add `services:` to the context file (npm start writes it) " +
            "or pass --service name=url",
        );
      }
      const results = await Promise.all(
        services.map(([name, url]) => serviceStatus(name, url, env.timeoutMs)),
      );
      if (env.out.json) {
        env.out.printJson({ services: results, ready: results.every((r) => r.ready) });
      } else {
        env.out.print(
          renderTable(
            [
              { header: "service", value: (r: ServiceStatus) => r.service },
              { header: "url", value: (r: ServiceStatus) => r.url },
              { header: "ready", value: (r: ServiceStatus) => (r.ready ? "yes" : "no") },
              { header: "details", value: (r: ServiceStatus) => r.details },
            ],
            results,
          ),
        );
      }
      return results.every((r) => r.ready) ? ExitCode.ok : ExitCode.failed;
    },
  );
}
