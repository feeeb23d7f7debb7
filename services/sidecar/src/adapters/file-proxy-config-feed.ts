// A static nginx.conf template on disk as the configuration source (runs without
// proxy-config): rendered with the sidecar's paths, re-read when it changes.
import { readFile } from "node:fs/promises";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { renderConfigTemplate, type TemplateValues } from "../domain/config-template";
import type { Clock, ProxyConfigUpdate } from "../ports";

/** Parameters of {@link watchConfigFile}. */
export interface WatchConfigFileParams {
  readonly file: string;
  readonly pollIntervalMs: number;
  readonly values: TemplateValues;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * Yields the rendered template at once and again whenever its rendering changes (checked every
 * `pollIntervalMs`); generations count from 1. An unreadable file or a template with unknown
 * placeholders is logged and skipped (the previous rendering stays). Finishes when `signal`
 * aborts.
 */
export async function* watchConfigFile(
  params: WatchConfigFileParams,
): AsyncGenerator<ProxyConfigUpdate, void, undefined> {
  const { signal, logger } = params;
  let generation = 0;
  let last: string | undefined;
  let lastProblem: string | undefined;
  while (!signal.aborted) {
    let rendered: string | undefined;
    try {
      rendered = renderConfigTemplate(await readFile(params.file, "utf8"), params.values);
      lastProblem = undefined;
    } catch (err) {
      const problem = (err as Error).message;
      // Log a persisting problem once, not at every poll.
      if (problem !== lastProblem) {
        logger.error(
          { [LogKeys.path]: params.file, [LogKeys.err]: problem },
          "config template unusable",
        );
      }
      lastProblem = problem;
    }
    if (rendered !== undefined && rendered !== last) {
      last = rendered;
      generation += 1;
      yield { generation, nginxConf: rendered, effectiveMode: "static", modeSource: "" };
    }
    await params.clock.sleep(params.pollIntervalMs, signal);
  }
}
